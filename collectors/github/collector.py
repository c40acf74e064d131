"""Facts from GitHub (or GitHub Enterprise Server): one repository per service.

```yaml
collectors:
  github:
    base_url: https://api.github.com     # GHES: https://github.example.com/api/v3
    org: acme                            # repository acme/<service> when no annotation
    token_env: GITHUB_TOKEN              # or token_file: /run/secrets/github-token
    batch_size: 50                       # repositories per GraphQL query
    cache_path: /var/lib/levelset/github-etags.json   # optional; the database by default
    max_wait_seconds: 60                 # longest sleep for a rate limit, else fail fast
    timeout_seconds: 15
```

The repository is the ``github.com/project-slug`` annotation, else ``<org>/<service name>``.
A run is planned as units (:meth:`GitHubCollector.plan`): the repositories in batched GraphQL
queries (:mod:`collectors.github.graphql`, 2 rate-limit points for 50 repositories), then for
each organisation one sweep of its open alerts per kind over REST
(:mod:`collectors.github.alerts`), with conditional requests: an unchanged organisation
answers 304, which GitHub does not count. An owner with one repository in the run (a single
repository's refresh) has its alerts read for that repository instead of swept. The ETag cache is kept in the
engine's database (shared by every process, kept across runs), in ``cache_path`` when set,
or in memory when the collector runs alone. The GraphQL budget is kept from the cost GitHub
reports with every query (:mod:`collectors.github.budget`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from github import Github

from collectors.base import (
    CollectionPlan,
    CollectionResult,
    CollectionUnit,
    Collector,
    UnitResult,
    combine_results,
    utcnow,
)
from collectors.github import REPOSITORY, SOURCE
from collectors.github.alerts import KINDS, read_alerts
from collectors.github.budget import Budget
from collectors.github.cache import ETagCache, JsonFileETagCache, MemoryETagCache
from collectors.github.client import RepositoryFailed, RestReader, SourceFailed, open_client
from collectors.github.graphql import GraphQLReader, RepositoryRead
from collectors.github.settings import GitHubConfig
from collectors.http import RequestCounter
from core.service import Service

log = logging.getLogger(__name__)

BATCH = "graphql-batch"
SWEEP = "alert-sweep"  # one organisation, one kind of alert
REPOSITORY_ALERTS = "repository-alerts"  # the alerts of one repository, every kind
NO_REPOSITORY = "no github.com/project-slug annotation and no collectors.github.org"


def plan_units(repositories: dict[str, tuple[str, list[str]]], batch_size: int,
               source: str = SOURCE.name) -> tuple[CollectionUnit, ...]:
    """The units that read ``repositories`` (lower-case slug -> (slug, its services)): GraphQL
    batches of ``batch_size``, then per owner either one sweep per kind of alert, or, for an
    owner with a single repository, that repository's alerts. Decided without I/O."""
    keys = list(repositories)
    units: list[CollectionUnit] = []
    batch_of: dict[str, str] = {}
    for number, start in enumerate(range(0, len(keys), batch_size)):
        batch = keys[start:start + batch_size]
        unit = CollectionUnit(source, BATCH, str(number),
                              tuple(n for k in batch for n in repositories[k][1]),
                              tuple(repositories[k][0] for k in batch))
        batch_of.update(dict.fromkeys(batch, unit.id))
        units.append(unit)
    by_owner: dict[str, list[str]] = {}
    for key in keys:
        by_owner.setdefault(key.partition("/")[0], []).append(key)
    for owner, owned in by_owner.items():
        services = tuple(n for k in owned for n in repositories[k][1])
        targets = tuple(repositories[k][0] for k in owned)
        after = tuple(dict.fromkeys(batch_of[k] for k in owned))
        if len(owned) == 1:
            units.append(CollectionUnit(source, REPOSITORY_ALERTS, targets[0], services,
                                        targets, after))
            continue
        units += [CollectionUnit(source, SWEEP, f"{owner}/{kind}", services, targets, after)
                  for kind in KINDS]
    return tuple(units)


@dataclass
class GitHubRun:
    """What the units of one run share: the client, its counters and the rate-limit budget,
    and whether GraphQL or the alert listings stopped for the rest of the run."""

    client: Github
    counter: RequestCounter
    budget: Budget
    rest: RestReader
    started_at: datetime
    graphql_stopped: str | None = None
    alerts_stopped: bool = False
    _taken: tuple[int, int, int, int] = (0, 0, 0, 0)
    _calls_taken: dict[str, int] = field(default_factory=dict)

    def take_counts(self, result: CollectionResult) -> None:
        """The requests, 304s, calls and cost since the last unit took them."""
        now = (self.counter.requests, self.counter.not_modified, self.budget.queries,
               self.budget.points)
        requests, not_modified, queries, points = (a - b for a, b in zip(now, self._taken,
                                                                          strict=True))
        self._taken = now
        result.requests, result.not_modified = requests, not_modified
        calls = {what: count - self._calls_taken.get(what, 0)
                 for what, count in self.rest.calls.items()}
        self._calls_taken = dict(self.rest.calls)
        result.calls = {**{k: v for k, v in calls.items() if v}, "GraphQL queries": queries}
        result.cost = points + max(requests - not_modified - queries, 0)


class GitHubCollector(Collector):
    source = SOURCE

    config: GitHubConfig

    def __init__(self, config: Any = None, *, cache: ETagCache | None = None) -> None:
        super().__init__(config)
        self._cache_given = cache is not None or self.config.cache_path is not None
        if cache is None:
            path = self.config.cache_path
            cache = JsonFileETagCache(path) if path is not None else MemoryETagCache()
        self.cache = cache

    def use_shared_cache(self, make: Callable[[str], Any]) -> None:
        """Keep the ETag cache in the engine's store (``make(source name)``), unless the
        settings name a ``cache_path`` or a cache was given."""
        if not self._cache_given:
            self.cache = make(self.name)
            self._cache_given = True

    def repository_of(self, service: Service) -> str | None:
        annotated = REPOSITORY.value(service)
        if annotated:
            return annotated
        if self.config.org:
            return f"{self.config.org}/{service.name.rpartition('/')[2]}"
        return None

    def open_client(self, counter: RequestCounter) -> Github:
        """A PyGithub client whose requests are counted and conditional."""
        return open_client(self.config, counter, self.cache)

    def plan(self, services: Sequence[Service]) -> CollectionPlan:
        repositories: dict[str, tuple[str, list[str]]] = {}  # lower slug -> (slug, services)
        failures: dict[str, str] = {}
        for service in services:
            slug = self.repository_of(service)
            if slug is None:
                failures[service.name] = NO_REPOSITORY
            else:
                repositories.setdefault(slug.lower(), (slug, []))[1].append(service.name)
        return CollectionPlan(self.name, plan_units(repositories, self.config.batch_size),
                              failures)

    @contextmanager
    def open_run(self) -> Iterator[GitHubRun]:
        counter = RequestCounter()
        client = self.open_client(counter)  # CollectorError: a token that cannot be read
        run = GitHubRun(client, counter, Budget(self.config.max_wait_seconds),
                        RestReader(client.requester, self.config), utcnow())
        try:
            yield run
        finally:
            client.close()
            self.cache.save()

    def collect_unit(self, unit: CollectionUnit, services: Sequence[Service],
                     inputs: Sequence[UnitResult], run: GitHubRun) -> UnitResult:
        result = CollectionResult(source=self.name, started_at=utcnow())
        passed: dict[str, Any] = {}
        try:
            if unit.kind == BATCH:
                passed = self._read_batch(unit, services, run, result)
            elif unit.kind in (SWEEP, REPOSITORY_ALERTS):
                self._read_alerts(unit, services, inputs, run, result)
            else:
                raise ValueError(f"not a unit of the GitHub collector: {unit.id}")
        finally:
            run.take_counts(result)
            result.finished_at = utcnow()
        return UnitResult(unit, result, passed)

    def _read_alerts(self, unit: CollectionUnit, services: Sequence[Service],
                     inputs: Sequence[UnitResult], run: GitHubRun,
                     result: CollectionResult) -> None:
        """The alerts of the repositories of ``unit`` that its batches read (``inputs``),
        as ``alerts`` facts of their services; nothing is sent when none was read."""
        targets = {slug.lower() for slug in unit.targets}
        read = {key: info for part in inputs for key, info in part.passed.get("read", {}).items()
                if key in targets}
        if not read or run.alerts_stopped:
            return
        kinds = list(KINDS) if unit.kind == REPOSITORY_ALERTS else [unit.key.rpartition("/")[2]]
        alerts, notes, run.alerts_stopped = read_alerts(run.rest, read, kinds,
                                                        per_repository=unit.kind != SWEEP)
        result.errors += notes
        for service in services:
            found = alerts.get((self.repository_of(service) or "").lower())
            if found:
                result.facts[service.name] = {"alerts": found}

    def _read_batch(self, unit: CollectionUnit, services: Sequence[Service], run: GitHubRun,
                    result: CollectionResult) -> dict[str, Any]:
        """Read one batch; the services of its repositories get their facts (alerts unknown
        until a sweep fills them) or the reason. Passes on what the alert units need."""
        batch = list(unit.targets)
        read: dict[str, RepositoryRead | str]
        if run.graphql_stopped is not None:
            read = dict.fromkeys(batch, run.graphql_stopped)
        else:
            reader = GraphQLReader(run.client.requester, self.config, run.budget, run.started_at)
            try:
                read = reader.read_batch(batch)
            except RepositoryFailed as error:
                read = {slug: f"{slug}: {error}" for slug in batch}
            except SourceFailed as error:
                run.graphql_stopped = str(error)
                read = dict.fromkeys(batch, str(error))
            except (KeyError, TypeError, AttributeError, ValueError) as error:
                log.exception("unexpected GraphQL answer")
                read = {slug: f"{slug}: unexpected answer ({type(error).__name__})"
                        for slug in batch}
        outcomes = {slug.lower(): outcome for slug, outcome in read.items()}
        first: dict[str, str] = {}  # lower slug -> the first service that uses it
        for service in services:
            slug = self.repository_of(service)
            outcome = outcomes.get(slug.lower()) if slug else None
            if isinstance(outcome, RepositoryRead):
                first.setdefault(outcome.slug.lower(), service.name)
                result.facts[service.name] = {
                    **outcome.facts, "alerts": {kind: None for kind in KINDS}}
            elif isinstance(outcome, str):
                result.failures[service.name] = outcome
        passed: dict[str, Any] = {"read": {}}
        for key, outcome in outcomes.items():
            if isinstance(outcome, RepositoryRead) and key in first:
                name = first[key]
                result.errors += [f"{name}: {note}" for note in outcome.notes]
                passed["read"][key] = {"slug": outcome.slug, "service": name,
                                       "dependabot_enabled": outcome.dependabot_enabled}
        return passed

    def combine(self, plan: CollectionPlan, results: Sequence[UnitResult],
                started_at: datetime) -> CollectionResult:
        combined = combine_results(plan, results, started_at)
        combined.calls.setdefault("GraphQL queries", 0)
        if combined.cost is None:
            combined.cost = 0
        return combined
