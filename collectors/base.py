"""The one interface every collector implements, and what a collection run returns.

A source of facts registers once (:class:`FactSource`): its name, the model of its section
of the settings file, the facts it provides and the catalog annotation it reads. Its
:class:`Collector` collects them for many services in one run. It never raises for a single
service: a service it could not read is listed in :attr:`CollectionResult.failures` with the
reason, and the others still get their facts.
"""

from __future__ import annotations

import copy
import importlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import CollectorError, InputError, Problem, SettingsError
from core.inputfiles import SECRET_FILE, read_text
from core.redaction import redact
from core.registry import Registry
from core.schema import FactSchema
from core.service import Service, ServiceLink

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CollectionResult:
    """The outcome of one collector over many services.

    ``facts`` holds only the services that were read (values may be ``None`` or missing: that
    is "unknown", never false); ``failures`` names each service that was not, with the reason.
    ``errors`` notes problems that cost some facts but no whole service (a failed query).
    ``requests`` counts the requests that really went out, retries included; ``not_modified``
    how many of them were answered 304 from a conditional request; ``calls`` API calls by
    operation (``eu-west-1 tagging:GetResources``), to see where a request budget goes;
    ``cost`` the rate-limit points the run spent where the source counts them (GitHub: the
    GraphQL points it reports plus the REST requests it counts).
    """

    source: str
    started_at: datetime
    finished_at: datetime | None = None
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    not_modified: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    cost: int | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def redact_secrets(self) -> None:
        """No URL's user info in a failure or an error: done where every collector's result
        is handed on (``collect_all``), before it is shown, stored or logged."""
        self.failures = {name: redact(why) for name, why in self.failures.items()}
        self.errors = [redact(error) for error in self.errors]

    def fail_all(self, services: Sequence[Service], reason: str) -> None:
        """The whole source is unusable: every service not yet read fails with ``reason``."""
        for service in services:
            if service.name not in self.facts:
                self.failures[service.name] = reason


class CollectorConfig(BaseModel):
    """Base of every collector's settings section: unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class FactSource:
    """A source of facts: the one registration that adds a collector.

    Declared in the collector package's ``__init__``, which imports no client library, so
    that listing sources, checking settings and building the fact vocabulary stay fast
    (boto3 is slow to import); the collector class is imported only when one is built.

    ```python
    SOURCE = register(FactSource(
        name="aws", title="AWS", settings=AwsConfig, schema=SCHEMA,
        link=ServiceLink("levelset.dev/aws-service-tag", example="payments"),
        collector="collectors.aws.collector:AwsCollector",
    ))
    ```
    """

    name: str  # the settings section (collectors.<name>) and the fact namespace
    title: str  # for people: "GitHub"
    settings: type[CollectorConfig]
    schema: FactSchema  # the facts with default settings
    collector: str  # "module:Class" of its Collector
    link: ServiceLink | None = None  # the catalog annotation that says where a service's data is
    # The facts as configured, when they depend on the settings (Prometheus: one per query).
    configured_schema: Callable[[Any], FactSchema] | None = None
    # "module:Class" of its SourceDoctor (see below): what `levelset doctor` checks.
    doctor: str | None = None

    def __post_init__(self) -> None:
        if self.schema.namespace != self.name:
            raise ValueError(f"collector {self.name!r} declares facts of namespace "
                             f"{self.schema.namespace!r}; they must be its own")

    def parse_settings(self, section: Mapping[str, Any] | CollectorConfig | None) -> Any:
        """The typed settings of a section (``None``: all defaults); SettingsError if invalid."""
        if isinstance(section, self.settings):
            return section
        try:
            return self.settings.model_validate(dict(section or {}))
        except ValidationError as error:
            raise SettingsError(
                Problem("settings", None, f"collectors.{self.name}.{_loc(e['loc'])}: {e['msg']}")
                for e in error.errors()
            ) from None

    def fact_schema(self, settings: CollectorConfig | None = None) -> FactSchema:
        """The facts it provides with ``settings`` (default settings when None)."""
        if settings is None or self.configured_schema is None:
            return self.schema
        return self.configured_schema(settings)

    def collector_class(self) -> type[Collector]:
        module, _, attribute = self.collector.partition(":")
        cls = getattr(importlib.import_module(module), attribute)
        if not (isinstance(cls, type) and issubclass(cls, Collector) and cls.source is self):
            raise TypeError(f"{self.collector} is not the Collector of source {self.name!r}")
        return cls

    def build(self, section: Mapping[str, Any] | CollectorConfig | None) -> Collector:
        return self.collector_class()(section)

    def source_doctor(self) -> SourceDoctor | None:
        """Its checks for ``levelset doctor`` (None: it declares none), imported only now."""
        return None if self.doctor is None else load_doctor(self.doctor, self)


class Collector(ABC):
    """Collects the facts of one source (``github``, ``prometheus``, ``aws``) for many services.

    ``source`` is its registration, which holds its name, settings model and schema.
    """

    source: ClassVar[FactSource]

    def __init__(self, config: Mapping[str, Any] | CollectorConfig | None = None) -> None:
        self.config = self.source.parse_settings(config)

    @property
    def name(self) -> str:
        return self.source.name

    def fact_schema(self) -> FactSchema:
        """The facts this collector provides, as configured."""
        return self.source.fact_schema(self.config)

    def collect(self, services: Sequence[Service]) -> CollectionResult:
        """Facts for every service it can read; the others in ``failures``.

        By default its units (:meth:`plan`) collected one after another in one run; a
        collector without units overrides this instead.
        """
        return collect_in_units(self, services)

    # -- Collection in units (see CollectionUnit at the end of this module) ---------------

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.collect is Collector.collect and cls.collect_unit is Collector.collect_unit:
            raise TypeError(f"{cls.__name__} must define collect or collect_unit")

    def plan(self, services: Sequence[Service]) -> CollectionPlan:
        """The units that collect ``services``, decided without I/O. By default one unit
        for every service (a collector that only defines ``collect``)."""
        return CollectionPlan(self.name, (CollectionUnit(
            self.name, "all", "all", tuple(s.name for s in services)),))

    def open_run(self) -> AbstractContextManager[Any]:
        """What units collected in one process share (a client, its counters, a cache),
        handed to :meth:`collect_unit`. Raises CollectorError when nothing can be read."""
        return nullcontext()

    def collect_unit(self, unit: CollectionUnit, services: Sequence[Service],
                     inputs: Sequence[UnitResult], run: Any) -> UnitResult:
        """Collect one unit of :meth:`plan` for its ``services``; ``inputs`` are the results
        of the units it comes ``after``. Never raises for one service or one call."""
        return UnitResult(unit, self.collect(services))

    def combine(self, plan: CollectionPlan, results: Sequence[UnitResult],
                started_at: datetime) -> CollectionResult:
        """The collection of a plan from its units' results, without I/O; by default each
        service's facts merged over the units in plan order."""
        return combine_results(plan, results, started_at)

    def __repr__(self) -> str:
        # The config holds no secret values (only where to read them), but keep repr short.
        return f"<{type(self).__name__} {self.name}>"


# -- Collection in units ------------------------------------------------------------------
# A source plans its work for a set of services as units (a GraphQL batch of repositories, an
# organisation's alert sweep, a Prometheus query set, an AWS region) and collects one unit at
# a time. A unit and its result hold plain values only (names, facts, counts), so that a
# unit can be collected in another process and its result passed on or stored; combining the
# results of a plan reads nothing but them.


@dataclass(frozen=True)
class CollectionUnit:
    """One piece of a source's collection: what it reads, for which services, after what.

    ``kind`` says what it is (``graphql-batch``, ``alert-sweep``, ``region``) and ``key`` which
    one (``acme/dependabot``); ``services`` names the services whose facts it yields;
    ``targets`` what it reads (repositories, an organisation, a region); ``after`` the ids
    of the units whose results it reads.
    """

    source: str
    kind: str
    key: str
    services: tuple[str, ...]
    targets: tuple[str, ...] = ()
    after: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.source}:{self.kind}:{self.key}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "key": self.key,
                "services": list(self.services), "targets": list(self.targets),
                "after": list(self.after)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CollectionUnit:
        return cls(str(data["source"]), str(data["kind"]), str(data["key"]),
                   tuple(data["services"]), tuple(data.get("targets", ())),
                   tuple(data.get("after", ())))


@dataclass(frozen=True)
class CollectionPlan:
    """The units of one source for a set of services, in the order to collect them (a unit
    comes after those it reads), and the services no unit can read, with the reason."""

    source: str
    units: tuple[CollectionUnit, ...]
    failures: Mapping[str, str] = field(default_factory=dict)

    def kinds(self) -> dict[str, int]:
        """How many units of each kind: ``{"graphql-batch": 3, "alert-sweep": 2}``."""
        counted: dict[str, int] = {}
        for unit in self.units:
            counted[unit.kind] = counted.get(unit.kind, 0) + 1
        return counted


@dataclass
class UnitResult:
    """What one unit got: the facts, failures and counts of its services (``result``), and
    ``passed``, plain values that later units and :meth:`Collector.combine` read (GitHub: the
    repositories a batch read, for the alert sweep)."""

    unit: CollectionUnit
    result: CollectionResult
    passed: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        r = self.result
        return {"unit": self.unit.to_dict(), "passed": self.passed, "result": {
            "source": r.source, "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "facts": r.facts, "failures": r.failures, "errors": r.errors,
            "requests": r.requests, "not_modified": r.not_modified, "calls": r.calls,
            "cost": r.cost}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnitResult:
        r = data["result"]
        finished = r.get("finished_at")
        result = CollectionResult(
            source=r["source"], started_at=datetime.fromisoformat(r["started_at"]),
            finished_at=datetime.fromisoformat(finished) if finished else None,
            facts=dict(r["facts"]), failures=dict(r["failures"]), errors=list(r["errors"]),
            requests=int(r["requests"]), not_modified=int(r["not_modified"]),
            calls=dict(r["calls"]), cost=r.get("cost"))
        return cls(CollectionUnit.from_dict(data["unit"]), result, dict(data.get("passed", {})))


def collect_in_units(collector: Collector, services: Sequence[Service],
                     plan: CollectionPlan | None = None) -> CollectionResult:
    """Plan (unless given), collect each unit in one run, and combine: one source's collection
    in one process. A source that cannot be used at all fails every service."""
    started = utcnow()
    plan = plan if plan is not None else collector.plan(services)
    by_name = {service.name: service for service in services}
    results: dict[str, UnitResult] = {}
    try:
        with collector.open_run() as run:
            for unit in plan.units:
                inputs = [results[before] for before in unit.after if before in results]
                results[unit.id] = collect_unit_guarded(
                    collector, unit, [by_name[name] for name in unit.services], inputs, run)
    except CollectorError as error:
        failed = CollectionResult(source=collector.name, started_at=started)
        failed.fail_all(services, str(error))
        failed.finished_at = utcnow()
        return failed
    return collector.combine(plan, [results[u.id] for u in plan.units if u.id in results],
                             started)


def collect_unit_guarded(collector: Collector, unit: CollectionUnit,
                         services: Sequence[Service], inputs: Sequence[UnitResult],
                         run: Any) -> UnitResult:
    """``collect_unit``, where a bug or an unexpected library error fails that unit's
    services, not the run."""
    started = utcnow()
    try:
        return collector.collect_unit(unit, services, inputs, run)
    except Exception as error:
        log.exception("collector %s failed on unit %s", collector.name, unit.id)
        failed = CollectionResult(source=collector.name, started_at=started)
        failed.fail_all(services, f"{collector.name} collector error: {type(error).__name__}")
        failed.finished_at = utcnow()
        return UnitResult(unit, failed)


def combine_results(plan: CollectionPlan, results: Sequence[UnitResult],
                    started_at: datetime) -> CollectionResult:
    """Facts merged per service over the units (later units fill in nested facts), failures
    and notes gathered, counts added up; a service failed by any unit has no facts. A plan
    of one unit that failed no service in advance is that unit's collection."""
    if len(results) == 1 and not plan.failures:
        return results[0].result
    combined = CollectionResult(source=plan.source, started_at=started_at,
                                failures=dict(plan.failures))
    costs = [r.result.cost for r in results if r.result.cost is not None]
    for part in results:
        for name, facts in part.result.facts.items():
            merge_facts(combined.facts.setdefault(name, {}), facts)
        combined.failures.update(part.result.failures)
        combined.errors += part.result.errors
        combined.requests += part.result.requests
        combined.not_modified += part.result.not_modified
        add_calls(combined.calls, part.result.calls)
    for name in combined.failures:
        combined.facts.pop(name, None)
    combined.cost = sum(costs) if costs else None
    combined.finished_at = max((r.result.finished_at for r in results
                                if r.result.finished_at is not None), default=utcnow())
    return combined


def merge_facts(into: dict[str, Any], facts: Mapping[str, Any]) -> None:
    """``facts`` over ``into``: nested objects merged key by key, other values replaced."""
    for key, value in facts.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            merge_facts(into[key], value)
        else:
            into[key] = copy.deepcopy(value)


def add_calls(into: dict[str, int], calls: Mapping[str, int]) -> None:
    for operation, count in calls.items():
        into[operation] = into.get(operation, 0) + count


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(section)"


registry: Registry[FactSource] = Registry("collector")


def register(source: FactSource) -> FactSource:
    """Add a source to the registry under its name."""
    return registry.register(source.name)(source)


def read_secret(*, env: str | None, file: Path | None, what: str) -> str | None:
    """A credential from an environment variable or a secret file (never from settings).

    Returns None when neither is configured; raises when one is configured but empty or
    missing, so a typo does not silently turn into anonymous access.
    """
    if file is not None:
        try:  # bounded: a secret file is small and regular (not /dev/zero)
            value = read_text(file, SECRET_FILE).strip()
        except InputError as error:
            why = "; ".join(p.message for p in error.problems)
            raise CollectorError(f"{what}: cannot read secret file {file}: {why}") from None
        if not value:
            raise CollectorError(f"{what}: secret file {file} is empty")
        return value
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise CollectorError(f"{what}: environment variable {env} is not set")
        return value
    return None


# ----------------------------------------------------------------------------- doctor
# What a source knows about its own readiness: whether its credentials and endpoint work and
# what each fact needs them to allow. `levelset doctor` loops over the registry and asks each
# configured source; nothing outside the source's package knows its checks.


@dataclass(frozen=True)
class Finding:
    """One line of ``levelset doctor``: a problem with its fix, or (``fix`` None) all is well."""

    where: str
    what: str
    fix: str | None = None

    def line(self) -> str:
        """Shown to people: endpoints are named without their user info."""
        return redact(f"error: {self.where}: {self.what}; fix: {self.fix}" if self.fix
                      else f"ok: {self.where}: {self.what}")


# fact path within the source's namespace ("branch_protection.enabled") -> the rules reading
# it ("security/branch-protection")
FactsRead = Mapping[str, Sequence[str]]


class SourceDoctor(ABC):
    """The checks of one source, and what its credentials must allow.

    ```python
    SOURCE = register(FactSource(..., doctor="collectors.github.doctor:GitHubDoctor"))
    ```
    """

    def __init__(self, source: FactSource) -> None:
        self.source = source

    @abstractmethod
    def check(self, settings: Any, facts_read: FactsRead) -> list[Finding]:
        """Whether collecting with ``settings`` (parsed) can read the facts the rules read.
        Never raises for a problem of the source: each is a finding with its fix."""

    def credentials(self) -> list[str]:
        """Markdown lines for docs/facts.md: what the credentials must allow (none: empty)."""
        return []


def load_doctor(target: str, source: FactSource) -> SourceDoctor:
    module, _, attribute = target.partition(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, SourceDoctor)):
        raise TypeError(f"{target} is not the SourceDoctor of source {source.name!r}")
    return cls(source)
