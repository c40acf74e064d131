"""Job functions: collection results, run keys after a failure, and history as a whole."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import event

from collectors import FactSource, register, registry
from collectors.base import CollectionResult as CollectorResult
from collectors.base import Collector, CollectorConfig
from core.errors import NotFoundError, SettingsError
from core.schema import FactSchema
from core.service import Service
from engine import gate
from engine.jobs import (
    EvaluationFailed,
    run_collection,
    run_evaluation,
    store_collection_result,
)
from engine.settings import Settings
from engine.storage import facts as fact_store
from engine.storage import runs as run_store
from engine.storage.database import engine_for, session_scope
from engine.storage.history import timeline

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class CollectionResult:
    """The shape a collector returns."""

    source: str
    started_at: datetime
    finished_at: datetime
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    requests: int = 0


RECORDED = FactSource(
    name="recorded", title="Recorded", settings=CollectorConfig,
    schema=FactSchema("recorded", "what a test recorded", free_form=True),
    collector=f"{__name__}:RecordedCollector",
)


class RecordedCollector(Collector):
    """A collector of our own interface that returns given facts (a test fake)."""

    source = RECORDED

    def collect(self, services: Sequence[Service]) -> CollectorResult:
        result = CollectorResult(source="github", started_at=T0, finished_at=T0, requests=7)
        for service in services:
            if service.name == "payments":
                result.facts["payments"] = {"has_readme": True}
            elif service.name == "search":
                result.failures["search"] = "HTTP 403: rate limited"
        return result


@pytest.fixture
def recorded_collector() -> Iterator[None]:
    register(RECORDED)
    yield
    registry.unregister(RECORDED.name)


def test_collection_results_are_stored_and_evaluated(settings: Settings, recorded_collector: None) -> None:
    settings = settings.model_copy(update={"facts": None, "collectors": {"recorded": {}}})
    seen: list[str] = []

    stored = run_collection(settings, progress=lambda name, result: seen.append(
        f"{name}:{'done' if result else 'start'}"))
    assert [(s.source, s.services, s.failures, s.requests) for _, s in stored] == [
        ("github", 1, 1, 7)]
    assert seen == ["recorded:start", "recorded:done"]
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=1))
    with session_scope(engine_for(settings.database_url)) as session:
        search = gate.service_scorecard(session, service="search", scorecard="readiness")
        assert "rate limited" in search.rules[0].message
        facts = fact_store.latest_snapshots(session, service="search", now=T0 + timedelta(hours=1))
        assert [(f.source, f.status, f.age_seconds) for f in facts] == [
            ("github", "failed", 3600.0)]


def test_run_collection_of_an_unconfigured_source_says_so(settings: Settings) -> None:
    with pytest.raises(SettingsError, match="no settings for collector 'github'"):
        run_collection(settings, sources=["github"])


def test_run_collection_of_an_unknown_service_says_so(settings: Settings, recorded_collector: None) -> None:
    settings = settings.model_copy(update={"collectors": {"recorded": {}}})
    with pytest.raises(NotFoundError, match="nope"):
        run_collection(settings, services=["nope"])


def test_store_collection_result_takes_the_collector_dataclass(settings: Settings) -> None:
    result = CollectionResult("aws", T0, T0 + timedelta(seconds=3),
                              {"ledger": {"resource_count": 2}})
    assert store_collection_result(settings, result).services == 1


def test_failed_run_is_retried_under_the_same_key(settings: Settings) -> None:
    engine = engine_for(settings.database_url)

    def explode(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO SCORECARD_STATE"):
            raise RuntimeError("connection reset")

    event.listen(engine, "before_cursor_execute", explode)
    try:
        with pytest.raises(EvaluationFailed) as failure:
            run_evaluation(settings, trigger="schedule", now=T0, run_key="schedule:1")
    finally:
        event.remove(engine, "before_cursor_execute", explode)
    retried = run_evaluation(settings, trigger="schedule", now=T0, run_key="schedule:1").run_id
    assert retried == failure.value.run_id
    with session_scope(engine) as session:
        assert run_store.get_run(session, run_id=retried).status == "complete"
        assert run_store.list_runs(session)[0] == 1


def _set_github(sample: Path, service: str, values: dict[str, bool]) -> None:
    path = sample / "facts.json"
    data = json.loads(path.read_text())
    data[service]["github"] = values
    path.write_text(json.dumps(data))


FLAGS = st.fixed_dictionaries({
    "has_readme": st.booleans(), "has_codeowners": st.booleans(),
    "has_security_policy": st.booleans(), "archived": st.booleans(),
})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@hsettings(max_examples=12, deadline=None, database=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=st.lists(FLAGS, min_size=1, max_size=5))
def test_history_replays_every_run_as_it_was(
    settings: Settings, sample: Path, history: list[dict[str, bool]]
) -> None:
    """Whatever the sequence of changes, "as of run N" returns what run N computed."""
    # Examples share the database; each continues the clock where the previous one stopped.
    seen = []
    with session_scope(engine_for(settings.database_url)) as session:
        start = len(run_store.list_runs(session)[1])
    for index, flags in enumerate(history):
        _set_github(sample, "payments", flags)
        now = T0 + timedelta(hours=4 * (start + index))
        run_evaluation(settings, trigger="cli", now=now)
        with session_scope(engine_for(settings.database_url)) as session:
            card = gate.service_scorecard(session, service="payments", scorecard="readiness")
            seen.append((now, card.level, card.score))
    with session_scope(engine_for(settings.database_url)) as session:
        for now, level, score in seen:
            point = timeline.level_as_of(session, service="payments", scorecard="readiness",
                                      at=now + timedelta(minutes=1))
            assert point is not None and (point.level, point.score) == (level, score)
        points = timeline.history(session, service="payments", scorecard="readiness",
                               since=seen[0][0])
        assert all(a.end == b.start for a, b in pairwise(points))
        assert all((a.level, a.score) != (b.level, b.score)
                   for a, b in pairwise(points))
