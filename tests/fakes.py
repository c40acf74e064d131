"""Fakes of our own interfaces. Fixtures register them (tests/conftest.py); nothing is patched."""

from __future__ import annotations

from collections.abc import Sequence

from collectors import CollectionResult, Collector, CollectorConfig, FactSource
from collectors.base import utcnow
from core.schema import Fact, FactSchema, FactType, facts
from core.service import Service, ServiceLink


class FixedConfig(CollectorConfig):
    value: int = 1
    extra: list[str] = []  # more facts, each with the same value


def fixed_schema(settings: FixedConfig) -> FactSchema:
    extra = tuple(Fact(name, FactType.INT, "an extra number") for name in settings.extra)
    return FactSchema("fixed", "test facts", (*FIXED_FACTS, *extra))


FIXED_FACTS = facts(("value", FactType.INT, "a number", ""))

FIXED = FactSource(
    name="fixed", title="Fixed", settings=FixedConfig,
    schema=FactSchema("fixed", "test facts", FIXED_FACTS),
    link=ServiceLink("levelset.dev/fixed-key", example="payments"),
    configured_schema=fixed_schema,
    collector="tests.fakes:FixedCollector",
)


class FixedCollector(Collector):
    """A collector of our own interface that returns given facts (or breaks)."""

    source = FIXED

    config: FixedConfig

    def collect(self, services: Sequence[Service]) -> CollectionResult:
        if self.config.value < 0:
            raise RuntimeError("broken on purpose")
        result = CollectionResult(source=self.name, started_at=utcnow())
        names = ["value", *self.config.extra]
        result.facts = {s.name: dict.fromkeys(names, self.config.value) for s in services}
        return result
