"""The one interface every collector implements, and what a collection run returns.

A collector reads its own section of the settings file, declares the facts it provides
(:meth:`Collector.fact_schema`) and collects them for many services in one run. It never
raises for a single service: a service it could not read is listed in
:attr:`CollectionResult.failures` with the reason, and the others still get their facts.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from core.errors import CollectorError, Problem, SettingsError
from core.registry import Registry
from core.schema import FactSchema
from core.service import Service


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
    operation (``eu-west-1 tagging:GetResources``), to see where a request budget goes.
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

    @property
    def ok(self) -> bool:
        return not self.failures and not self.errors

    def fail_all(self, services: Sequence[Service], reason: str) -> None:
        """The whole source is unusable: every service not yet read fails with ``reason``."""
        for service in services:
            if service.name not in self.facts:
                self.failures[service.name] = reason


class CollectorConfig(BaseModel):
    """Base of every collector's settings section: unknown keys are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Collector(ABC):
    """A source of facts for one namespace (``github``, ``prometheus``, ``aws``)."""

    name: ClassVar[str]
    # The pydantic model of its settings section (none by default: any key is an error).
    config_model: ClassVar[type[CollectorConfig]] = CollectorConfig

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = self.parse_config(config or {})

    @classmethod
    def parse_config(cls, config: Mapping[str, Any]) -> Any:
        try:
            return cls.config_model.model_validate(dict(config))
        except ValidationError as error:
            raise SettingsError(
                Problem("settings", None, f"collectors.{cls.name}.{_loc(e['loc'])}: {e['msg']}")
                for e in error.errors()
            ) from None

    @classmethod
    @abstractmethod
    def default_fact_schema(cls) -> FactSchema:
        """The facts it provides with default settings (for the reference documentation)."""

    def fact_schema(self) -> FactSchema:
        """The facts this collector provides, as configured."""
        return self.default_fact_schema()

    @abstractmethod
    def collect(self, services: Sequence[Service]) -> CollectionResult:
        """Facts for every service it can read; the others in ``failures``."""

    def __repr__(self) -> str:
        # The config holds no secret values (only where to read them), but keep repr short.
        return f"<{type(self).__name__} {self.name}>"


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(section)"


registry: Registry[type[Collector]] = Registry("collector")


def read_secret(*, env: str | None, file: Path | None, what: str) -> str | None:
    """A credential from an environment variable or a secret file (never from settings).

    Returns None when neither is configured; raises when one is configured but empty or
    missing, so a typo does not silently turn into anonymous access.
    """
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except OSError as error:
            message = f"{what}: cannot read secret file {file}: {error.strerror}"
            raise CollectorError(message) from None
        if not value:
            raise CollectorError(f"{what}: secret file {file} is empty")
        return value
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise CollectorError(f"{what}: environment variable {env} is not set")
        return value
    return None
