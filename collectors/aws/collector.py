"""Facts from AWS: resources tagged with the service, and the settings that matter on them.

```yaml
collectors:
  aws:
    regions: [eu-west-1, us-east-1]
    tag_key: service                  # resources tagged service=<tag value> belong to it
    assume_role_arn: null             # e.g. arn:aws:iam::123456789012:role/levelset-read
    endpoint_url: null                # for an AWS-compatible endpoint
```

Per region, one paginated sweep of the Resource Groups Tagging API finds every resource with
the tag key (whatever its value), so the cost does not grow with the number of services. Then
one call per resource setting (S3, DynamoDB) or one listing per region (RDS, Lambda).
Credentials come from boto3's usual chain (environment, shared files, instance role).

Each region is a unit (:meth:`AwsCollector.plan`): its sweep and the settings of what it
found. A service's facts are combined from every region's resources (an ARN two regions
list counts once, for the first region of the settings).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from collectors.aws import SOURCE, TAG_VALUE
from collectors.aws.runtimes import is_deprecated
from collectors.aws.settings import AwsConfig
from collectors.base import (
    CollectionPlan,
    CollectionResult,
    CollectionUnit,
    Collector,
    UnitResult,
    add_calls,
    utcnow,
)
from collectors.http import RequestCounter
from core.service import Service


@dataclass(frozen=True)
class Resource:
    arn: str
    region: str
    kind: str  # the ARN's service: s3, rds, lambda, dynamodb, cloudwatch, sqs, ...
    name: str  # bucket, DB instance id, function, table or alarm name ("" for others)


def parse_arn(arn: str, region: str) -> Resource:
    """``arn:aws:rds:eu-west-1:123:db:orders`` -> Resource(kind="rds", name="orders")."""
    parts = arn.split(":", 5)
    kind = parts[2] if len(parts) > 2 else "unknown"
    rest = parts[5] if len(parts) > 5 else ""
    name = ""
    if kind == "s3":
        name = rest if "/" not in rest else ""
    elif kind == "rds" and rest.startswith("db:"):
        name = rest.removeprefix("db:")
    elif kind == "lambda" and rest.startswith("function:"):
        name = rest.removeprefix("function:").split(":", 1)[0]
    elif kind == "dynamodb" and rest.startswith("table/") and "/" not in rest[6:]:
        name = rest.removeprefix("table/")
    elif kind == "cloudwatch" and rest.startswith("alarm:"):
        name = rest.removeprefix("alarm:")
    return Resource(arn=arn, region=parts[3] if len(parts) > 3 and parts[3] else region,
                    kind=kind, name=name)


class _SourceFailed(Exception):
    """A call every service depends on failed (the tagging sweep of one region)."""


@dataclass
class _Run:
    """State of one collection: clients per region, counters and notes."""

    session: Any
    config: AwsConfig
    counter: RequestCounter = field(default_factory=RequestCounter)
    calls: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    failed: str | None = None  # why nothing more can be read in this run
    _taken: int = 0
    _calls_taken: Counter[str] = field(default_factory=Counter)
    _errors_taken: int = 0

    def take_counts(self, result: CollectionResult) -> None:
        """The requests, calls and notes since the last unit took them."""
        result.requests, self._taken = self.counter.requests - self._taken, self.counter.requests
        result.calls = dict(self.calls - self._calls_taken)
        self._calls_taken = Counter(self.calls)
        result.errors = self.errors[self._errors_taken:]
        self._errors_taken = len(self.errors)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            config = Config(
                connect_timeout=self.config.timeout_seconds,
                read_timeout=self.config.timeout_seconds,
                retries={"max_attempts": self.config.max_attempts, "mode": "standard"},
            )
            client = self.session.client(service, region_name=region, config=config,
                                         endpoint_url=self.config.endpoint_url)
            self.watch(client, region)
            self._clients[key] = client
        return self._clients[key]

    def watch(self, client: Any, region: str) -> None:
        """Count wire requests (each retry too) and API calls by operation."""
        events = client.meta.events
        events.register("before-send", lambda **_: self.counter.sent())
        prefix = client.meta.service_model.service_name

        def on_call(model: Any, **_: Any) -> None:
            self.calls[f"{region} {prefix}:{model.name}"] += 1

        events.register("before-call", on_call)

    def call(self, what: str, action: Callable[[], Any],
             expected: dict[str, Any] | None = None) -> Any:
        """The answer of one setting call, or None (unknown) with a note when it fails.

        ``expected`` maps error codes that are answers, not failures (an unencrypted
        bucket answers ``ServerSideEncryptionConfigurationNotFoundError``), to a value.
        """
        try:
            return action()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if expected and code in expected:
                return expected[code]
            self.errors.append(f"{what}: {code or 'error'}")
        except BotoCoreError as error:
            self.errors.append(f"{what}: {type(error).__name__}")
        return None


class AwsCollector(Collector):
    source = SOURCE

    config: AwsConfig

    def tag_value_of(self, service: Service) -> str:
        """The value of the ``tag_key`` tag that marks the resources of ``service``."""
        return TAG_VALUE.value(service, service.name)

    def plan(self, services: Sequence[Service]) -> CollectionPlan:
        """One unit per region, each for every service (their resources may be anywhere)."""
        names = tuple(s.name for s in services)
        units: list[CollectionUnit] = []
        for region in self.config.regions:
            # After the region before: an ARN it listed (S3 buckets may be listed in every
            # region) is read there, not again.
            after = (units[-1].id,) if units else ()
            units.append(CollectionUnit(self.name, "region", region, names, (region,), after))
        return CollectionPlan(self.name, tuple(units))

    @contextmanager
    def open_run(self) -> Iterator[_Run]:
        run = _Run(session=None, config=self.config)
        try:
            run.session = self._session(run)
        except _SourceFailed as error:
            run.failed = str(error)
        yield run

    def collect_unit(self, unit: CollectionUnit, services: Sequence[Service],
                     inputs: Sequence[UnitResult], run: _Run) -> UnitResult:
        result = CollectionResult(source=self.name, started_at=utcnow())
        passed: dict[str, Any] = {}
        try:
            failed = next((p.passed["failed"] for p in inputs if "failed" in p.passed), None)
            run.failed = run.failed or failed
            if run.failed is None:
                [region] = unit.targets
                seen = {arn for p in inputs for arn in p.passed.get("seen", ())}
                tagged = self._sweep(run, region, seen)
                # Only the resources of the services asked for are read in detail.
                mine = {s.name: tagged.get(self.tag_value_of(s), []) for s in services}
                passed = {"tagged": {name: [asdict(r) for r in resources]
                                     for name, resources in mine.items() if resources},
                          "details": read_details(run, mine).to_dict(),
                          "seen": sorted(seen)}
        except _SourceFailed as error:
            run.failed = str(error)
        finally:
            if run.failed is not None:
                passed = {"failed": run.failed}
            run.take_counts(result)
            result.finished_at = utcnow()
        return UnitResult(unit, result, passed)

    def combine(self, plan: CollectionPlan, results: Sequence[UnitResult],
                started_at: datetime) -> CollectionResult:
        """Every region's resources of each service, read as one (an ARN once)."""
        result = CollectionResult(source=self.name, started_at=started_at)
        services = plan.units[0].services if plan.units else ()
        tagged: dict[str, list[Resource]] = defaultdict(list)
        seen: set[tuple[str, str]] = set()
        details = Details()
        failed = None
        for part in results:
            result.requests += part.result.requests
            result.errors += part.result.errors
            add_calls(result.calls, part.result.calls)
            failed = failed or part.passed.get("failed")
            for name, resources in part.passed.get("tagged", {}).items():
                for resource in resources:
                    if (name, resource["arn"]) not in seen:
                        seen.add((name, resource["arn"]))
                        tagged[name].append(Resource(**resource))
            details.update(Details.from_dict(part.passed.get("details", {})))
        if failed is not None:
            result.failures = dict.fromkeys(services, failed)
        else:
            today = started_at.date()
            extra = frozenset(self.config.deprecated_runtimes)
            result.facts = {name: details.facts_for(tagged.get(name, []), today, extra)
                            for name in services}
        result.finished_at = max((r.result.finished_at for r in results
                                  if r.result.finished_at is not None), default=utcnow())
        return result

    def _session(self, run: _Run) -> Any:
        session = boto3.Session()
        arn = self.config.assume_role_arn
        if not arn:
            return session
        try:
            region = self.config.regions[0]
            sts = session.client("sts", endpoint_url=self.config.endpoint_url, region_name=region)
            run.watch(sts, region)
            credentials = sts.assume_role(RoleArn=arn,
                                          RoleSessionName=self.config.role_session_name)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise _SourceFailed(f"cannot assume role {arn}: {code}") from None
        except BotoCoreError as error:
            raise _SourceFailed(f"cannot assume role {arn}: {type(error).__name__}") from None
        creds = credentials["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    def _sweep(self, run: _Run, region: str, seen: set[str]) -> dict[str, list[Resource]]:
        """Tag value -> its resources in ``region``, but those ``seen`` already in another
        region (added to ``seen``)."""
        found: dict[str, list[Resource]] = defaultdict(list)
        key = self.config.tag_key
        client = run.client("resourcegroupstaggingapi", region)
        try:
            pages = client.get_paginator("get_resources").paginate(
                TagFilters=[{"Key": key}], ResourcesPerPage=self.config.page_size)
            for page in pages:
                for mapping in page.get("ResourceTagMappingList", []):
                    arn = mapping["ResourceARN"]
                    value = next((t["Value"] for t in mapping.get("Tags", [])
                                  if t["Key"] == key), None)
                    if value is None or arn in seen:
                        continue
                    seen.add(arn)
                    found[value].append(parse_arn(arn, region))
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "error")
            raise _SourceFailed(f"AWS {region}: tagging:GetResources failed: {code}") from None
        except BotoCoreError as error:
            raise _SourceFailed(
                f"AWS {region}: tagging:GetResources failed: {type(error).__name__}") from None
        return found


def read_details(run: _Run, tagged: dict[str, list[Resource]]) -> Details:
    """Settings of the tagged resources, read once per resource (or once per region)."""
    reader = _DetailReader(run)
    everything = list({r.arn: r for resources in tagged.values() for r in resources}.values())
    details = Details(
        buckets={r.arn: reader._bucket(r) for r in everything if r.kind == "s3" and r.name},
        tables={r.arn: reader._table(r) for r in everything
                if r.kind == "dynamodb" and r.name})
    details.instances = reader._listing(everything, "rds", reader._rds_instances)
    details.functions = reader._listing(everything, "lambda", reader._lambda_functions)
    details.unread = reader.unread
    return details


@dataclass
class Details:
    """The settings read of tagged resources, by ARN (plain values, passed between units)."""

    buckets: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    unread: set[str] = field(default_factory=set)  # ARNs whose listing failed: unknown

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unread": sorted(self.unread)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Details:
        return cls(dict(data.get("buckets", {})), dict(data.get("tables", {})),
                   dict(data.get("instances", {})), dict(data.get("functions", {})),
                   set(data.get("unread", ())))

    def update(self, other: Details) -> None:
        """Add another region's settings; what this one has already read stays."""
        for mine, theirs in ((self.buckets, other.buckets), (self.tables, other.tables),
                             (self.instances, other.instances),
                             (self.functions, other.functions)):
            for arn, value in theirs.items():
                mine.setdefault(arn, value)
        self.unread |= other.unread

    def facts_for(self, resources: Sequence[Resource], today: Any,
                  extra: frozenset[str]) -> dict[str, Any]:
        buckets = [self.buckets[r.arn] for r in resources if r.arn in self.buckets]
        tables = [self.tables[r.arn] for r in resources if r.arn in self.tables]
        instances = [i for r in resources if (i := self.instances.get(r.arn)) is not None]
        functions = []
        for r in resources:
            function = self.functions.get(r.arn)
            if function is not None:
                runtime = function["runtime"]
                deprecated = None if runtime is None else is_deprecated(runtime, today, extra)
                functions.append({**function, "runtime_deprecated": deprecated})
        unread = {r.kind for r in resources if r.arn in self.unread}
        retention = [i["backup_retention_days"] for i in instances]
        if "rds" in unread:  # some instances could not be read: no summary is known
            retention = []
            instances_known: list[bool | None] = [None]
        else:
            instances_known = []
        deprecated_count = [f["runtime_deprecated"] for f in functions]
        if "lambda" in unread:
            deprecated_count.append(None)
        return {
            "resource_count": len(resources),
            "resource_types": sorted({r.kind for r in resources}),
            "s3": {
                "buckets": buckets,
                "all_encrypted": all_of(b["encrypted"] for b in buckets),
                "all_versioned": all_of(b["versioning"] for b in buckets),
                "all_public_access_blocked": all_of(b["public_access_blocked"] for b in buckets),
            },
            "rds": {
                "instances": instances,
                "min_backup_retention_days": min(retention) if retention else None,
                "all_multi_az": all_of([*(i["multi_az"] for i in instances), *instances_known]),
                "all_encrypted": all_of([*(i["encrypted"] for i in instances),
                                         *instances_known]),
            },
            "lambda": {
                "functions": functions,
                "deprecated_runtimes": None if None in deprecated_count
                else sum(1 for d in deprecated_count if d),
            },
            "dynamodb": {
                "tables": tables,
                "all_point_in_time_recovery": all_of(t["point_in_time_recovery"] for t in tables),
            },
            "cloudwatch": {"alarms": sum(1 for r in resources if r.kind == "cloudwatch")},
        }



class _DetailReader:
    """Reads the settings of resources, counted and noted through the run."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.unread: set[str] = set()

    def _bucket(self, bucket: Resource) -> dict[str, Any]:
        s3 = self.run.client("s3", bucket.region)
        name = bucket.name

        def encrypted() -> bool:
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
            return any(rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
                       for rule in rules.get("Rules", []))

        def public_access_blocked() -> bool:
            block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
            keys = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                    "RestrictPublicBuckets")
            return all(block.get(k) is True for k in keys)

        # No region: S3 ARNs carry none, and the tagging API may list a bucket in any region.
        return {
            "name": name,
            # Older buckets without default encryption answer this error; since 2023 AWS
            # applies SSE-S3 to every bucket and answers with AES256 instead.
            "encrypted": self.run.call(
                f"s3:GetBucketEncryption {name}", encrypted,
                {"ServerSideEncryptionConfigurationNotFoundError": False}),
            "versioning": self.run.call(
                f"s3:GetBucketVersioning {name}",
                lambda: s3.get_bucket_versioning(Bucket=name).get("Status") == "Enabled"),
            "public_access_blocked": self.run.call(
                f"s3:GetPublicAccessBlock {name}", public_access_blocked,
                {"NoSuchPublicAccessBlockConfiguration": False}),
        }

    def _table(self, table: Resource) -> dict[str, Any]:
        dynamodb = self.run.client("dynamodb", table.region)

        def pitr() -> bool:
            description = dynamodb.describe_continuous_backups(TableName=table.name)
            status = description["ContinuousBackupsDescription"].get(
                "PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
            return bool(status == "ENABLED")

        return {
            "name": table.name,
            "region": table.region,
            "point_in_time_recovery": self.run.call(
                f"dynamodb:DescribeContinuousBackups {table.name}", pitr),
        }

    def _listing(self, resources: Iterable[Resource], kind: str,
                 read: Callable[[str], dict[str, dict[str, Any]] | None],
                 ) -> dict[str, dict[str, Any]]:
        """One listing per region that has tagged resources of ``kind``; ARN -> settings.

        A failed listing puts its resources in ``unread`` (unknown); the run notes why.
        """
        wanted: dict[str, set[str]] = defaultdict(set)
        for r in resources:
            if r.kind == kind and r.name:
                wanted[r.region].add(r.arn)
        found: dict[str, dict[str, Any]] = {}
        for region, arns in wanted.items():
            listing = read(region)
            if listing is None:
                self.unread.update(arns)
                continue
            for arn in arns:
                if arn in listing:  # else deleted since the sweep: gone, not unknown
                    found[arn] = listing[arn]
        return found

    def _rds_instances(self, region: str) -> dict[str, dict[str, Any]] | None:
        rds = self.run.client("rds", region)

        def read() -> dict[str, dict[str, Any]]:
            instances = {}
            for page in rds.get_paginator("describe_db_instances").paginate():
                for db in page["DBInstances"]:
                    instances[db["DBInstanceArn"]] = {
                        "id": db["DBInstanceIdentifier"],
                        "region": region,
                        "engine": db.get("Engine"),
                        "backup_retention_days": db.get("BackupRetentionPeriod"),
                        "multi_az": db.get("MultiAZ"),
                        "encrypted": db.get("StorageEncrypted"),
                    }
            return instances

        result: dict[str, dict[str, Any]] | None = self.run.call(
            f"rds:DescribeDBInstances {region}", read)
        return result

    def _lambda_functions(self, region: str) -> dict[str, dict[str, Any]] | None:
        client = self.run.client("lambda", region)

        def read() -> dict[str, dict[str, Any]]:
            functions = {}
            for page in client.get_paginator("list_functions").paginate():
                for function in page["Functions"]:
                    functions[function["FunctionArn"]] = {
                        "name": function["FunctionName"],
                        "region": region,
                        # container-image functions have no runtime: unknown, not deprecated
                        "runtime": function.get("Runtime"),
                    }
            return functions

        result: dict[str, dict[str, Any]] | None = self.run.call(
            f"lambda:ListFunctions {region}", read)
        return result


def all_of(values: Iterable[bool | None]) -> bool | None:
    """Three-valued "all": False if any is False, unknown if any is unknown, else True.

    With no values at all it is True: a service without buckets has no unencrypted bucket.
    """
    seen_unknown = False
    for value in values:
        if value is False:
            return False
        if value is None:
            seen_unknown = True
    return None if seen_unknown else True
