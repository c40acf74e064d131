"""The one interface every collector implements, and what a collection run returns.

A source of facts registers once (:class:`FactSource`): its name, the model of its section
of the settings file, the facts it provides and the catalog annotation it reads. Its
:class:`Collector` collects them for many services in one run. It never raises for a single
service: a service it could not read is listed in :attr:`CollectionResult.failures` with the
reason, and the others still get their facts.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
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

    @abstractmethod
    def collect(self, services: Sequence[Service]) -> CollectionResult:
        """Facts for every service it can read; the others in ``failures``."""

    def __repr__(self) -> str:
        # The config holds no secret values (only where to read them), but keep repr short.
        return f"<{type(self).__name__} {self.name}>"


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
