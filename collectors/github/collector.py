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
A run reads the repositories in batched GraphQL queries (:mod:`collectors.github.graphql`,
2 rate-limit points for 50 repositories), then sweeps the open alerts of each organisation
once over REST (:mod:`collectors.github.alerts`), with conditional requests: an unchanged
organisation answers 304, which GitHub does not count. The ETag cache is kept in the
engine's database (shared by every process, kept across runs), in ``cache_path`` when set,
or in memory when the collector runs alone. The GraphQL budget is kept from the cost GitHub
reports with every query (:mod:`collectors.github.budget`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from github import Github

from collectors.base import CollectionResult, Collector, utcnow
from collectors.github import REPOSITORY, SOURCE
from collectors.github.alerts import AlertSweep
from collectors.github.budget import Budget
from collectors.github.cache import ETagCache, JsonFileETagCache, MemoryETagCache
from collectors.github.client import RepositoryFailed, RestReader, SourceFailed, open_client
from collectors.github.graphql import GraphQLReader, RepositoryRead
from collectors.github.settings import GitHubConfig
from collectors.http import RequestCounter
from core.errors import CollectorError
from core.service import Service

log = logging.getLogger(__name__)


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

    def collect(self, services: Sequence[Service]) -> CollectionResult:
        result = CollectionResult(source=self.name, started_at=utcnow())
        counter = RequestCounter()
        try:
            client = self.open_client(counter)
        except CollectorError as error:
            result.fail_all(services, str(error))
            result.finished_at = utcnow()
            return result
        repositories: dict[str, tuple[str, str]] = {}  # lower slug -> (slug, first service)
        for service in services:
            slug = self.repository_of(service)
            if slug is None:
                result.failures[service.name] = (
                    "no github.com/project-slug annotation and no collectors.github.org")
            else:
                repositories.setdefault(slug.lower(), (slug, service.name))
        budget = Budget(self.config.max_wait_seconds)
        rest = RestReader(client.requester, self.config)
        outcomes: dict[str, RepositoryRead | str] = {}
        try:
            self._read_all(client, budget, rest, repositories, outcomes, result)
        finally:
            client.close()
            self.cache.save()
            result.requests = counter.requests
            result.not_modified = counter.not_modified
            result.calls = {**rest.calls, "GraphQL queries": budget.queries}
            counted_rest = counter.requests - counter.not_modified - budget.queries
            result.cost = budget.points + max(counted_rest, 0)
            result.finished_at = utcnow()
        for service in services:
            slug = self.repository_of(service)
            outcome = outcomes.get(slug.lower()) if slug else None
            if isinstance(outcome, RepositoryRead):
                result.facts[service.name] = dict(outcome.facts)
            elif isinstance(outcome, str):
                result.failures[service.name] = outcome
        return result

    def _read_all(self, client: Github, budget: Budget, rest: RestReader,
                  repositories: dict[str, tuple[str, str]],
                  outcomes: dict[str, RepositoryRead | str], result: CollectionResult) -> None:
        reader = GraphQLReader(client.requester, self.config, budget, result.started_at)
        keys = list(repositories)
        size = self.config.batch_size
        try:
            for start in range(0, len(keys), size):
                batch = [repositories[k][0] for k in keys[start:start + size]]
                read: dict[str, RepositoryRead | str]
                try:
                    read = reader.read_batch(batch)
                except RepositoryFailed as error:
                    read = {slug: f"{slug}: {error}" for slug in batch}
                except (KeyError, TypeError, AttributeError, ValueError) as error:
                    log.exception("unexpected GraphQL answer")
                    read = {slug: f"{slug}: unexpected answer ({type(error).__name__})"
                            for slug in batch}
                outcomes.update((slug.lower(), outcome) for slug, outcome in read.items())
        except SourceFailed as error:
            for key in keys:
                outcomes.setdefault(key, str(error))
        done = {key: (outcome, repositories[key][1]) for key, outcome in outcomes.items()
                if isinstance(outcome, RepositoryRead)}
        for repository, service in done.values():
            result.errors += [f"{service}: {note}" for note in repository.notes]
        sweep = AlertSweep(rest)
        sweep.fill(done)
        result.errors += sweep.notes
