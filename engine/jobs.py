"""Job functions: what a schedule, a worker, an API request or a command actually runs.

Each loads its inputs, calls the pure engine and stores the outcome. The Celery tasks,
APScheduler jobs, API handlers and CLI commands are thin wrappers over these.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from collectors import build_collectors, collect_all
from collectors.base import CollectionResult
from core.errors import InputError, NotFoundError, Problem, SettingsError, StorageError
from core.schema import FactSchema
from core.service import Service
from engine.catalog import load_catalog
from engine.evaluation import Evaluation, ServiceFacts, evaluate
from engine.facts import load_facts
from engine.loading import load_scorecards, parse_scorecard
from engine.scorecard import Scorecard
from engine.settings import Settings
from engine.storage.database import engine_for, migrate, session_scope
from engine.storage.models import EvaluationRun, FactSnapshot, RunStatus, SnapshotStatus
from engine.storage.writes import (
    begin_run,
    last_good_versions,
    lock_history,
    prune,
    record_results,
    store_snapshot,
    sync_scorecards,
    sync_services,
)
from engine.vocabulary import vocabulary

log = logging.getLogger("levelset.jobs")

CUSTOM_SOURCE = "custom"
# Pushed facts have no collector to refresh them; they hold until replaced.
NEVER_STALE = frozenset({CUSTOM_SOURCE})


class EvaluationFailed(StorageError):
    """A run could not complete; history is as it was before it."""

    def __init__(self, run_id: int, message: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} failed: {message}")


def schemas_for(settings: Settings) -> dict[str, FactSchema]:
    queries = settings.collectors.get("prometheus", {}).get("queries")
    return vocabulary(queries if isinstance(queries, Mapping) else None)


def prepare_database(settings: Settings) -> None:
    migrate(engine_for(settings.database_url))


# --- scorecards: a broken file never replaces a working version --------------------------------


@dataclass
class ScorecardInputs:
    scorecards: dict[str, Scorecard]
    problems: list[str]
    retired: list[str]


def resolve_scorecards(
    session: Session, path: Path, schemas: Mapping[str, FactSchema]
) -> ScorecardInputs:
    """The scorecards to evaluate: those that load, else the last stored good version."""
    loaded = load_scorecards(path, schemas)
    problems = [str(p) for p in loaded.problems]
    cards = dict(loaded.scorecards)
    broken_files = {p.file for p in loaded.problems}
    retired = []
    for version in last_good_versions(session):
        card, found = parse_scorecard(version.source_text, version.path, schemas)
        if card is None:
            problems.extend(f"stored version {version.content_hash[:12]}: {p}" for p in found)
            continue
        if card.name in cards:
            continue
        if version.path in broken_files or Path(version.path).exists():
            cards[card.name] = card
            problems.append(
                f'{version.path}: scorecard "{card.name}" does not load; '
                f"evaluated with its last good version {version.content_hash[:12]}"
            )
        else:
            retired.append(card.name)
    return ScorecardInputs(cards, problems, retired)


# --- facts ---------------------------------------------------------------------------------


def latest_facts(
    session: Session, *, now: datetime, max_age: timedelta, service: str | None = None
) -> tuple[dict[str, ServiceFacts], list[str]]:
    """The latest snapshot per (service, source); stale or failed ones count as absent."""
    latest = select(func.max(col(FactSnapshot.id))).group_by(
        col(FactSnapshot.service), col(FactSnapshot.source)
    )
    if service is not None:
        latest = latest.where(col(FactSnapshot.service) == service)
    facts: dict[str, ServiceFacts] = {}
    stale = 0
    rows = session.execute(select(FactSnapshot).where(col(FactSnapshot.id).in_(latest)))
    for snapshot in rows.scalars():
        entry = facts.setdefault(snapshot.service, ServiceFacts())
        if snapshot.source not in NEVER_STALE and now - snapshot.confirmed_at > max_age:
            stale += 1
            entry.failures[snapshot.source] = (
                f"facts are stale (last collected {snapshot.confirmed_at.isoformat()})"
            )
        elif snapshot.status == SnapshotStatus.FAILED:
            entry.failures[snapshot.source] = snapshot.error or "collection failed"
        else:
            entry.values[snapshot.source] = dict(snapshot.facts)
    notes = [f"{stale} fact snapshot(s) older than {max_age} were ignored"] if stale else []
    return facts, notes


def store_file_facts(
    session: Session,
    *,
    path: Path,
    schemas: Mapping[str, FactSchema],
    services: Iterable[str],
    now: datetime,
) -> list[str]:
    """The configured facts file, stored as snapshots of each namespace it holds."""
    known = set(services)
    try:
        by_service = load_facts(path, schemas)
    except InputError as error:
        return [str(p) for p in error.problems]
    unknown = sorted(set(by_service) - known)
    for name, facts in by_service.items():
        if name not in known:
            continue
        for namespace, values in facts.values.items():
            store_snapshot(session, service=name, source=namespace, facts=values, collected_at=now)
        for namespace, why in facts.failures.items():
            store_snapshot(session, service=name, source=namespace, error=why, collected_at=now)
    if not unknown:
        return []
    return [f"{path}: facts for services not in the catalog: {', '.join(unknown)}"]


# --- evaluation ----------------------------------------------------------------------------


def create_run(
    settings: Settings,
    *,
    trigger: str,
    service: str | None = None,
    now: datetime | None = None,
    run_key: str | None = None,
) -> tuple[int, bool]:
    """A run row to report progress on; (id, already complete) when ``run_key`` was seen."""
    now = now or datetime.now(UTC)
    with session_scope(engine_for(settings.database_url)) as session:
        if run_key is not None:
            existing = (
                session.execute(select(EvaluationRun).where(col(EvaluationRun.run_key) == run_key))
                .scalars()
                .first()
            )
            if existing is not None and existing.id is not None:
                if existing.status in (RunStatus.COMPLETE, RunStatus.SUPERSEDED):
                    return existing.id, True
                existing.status = RunStatus.RUNNING
                existing.error = None
                return existing.id, False
        run = begin_run(session, trigger=trigger, service=service, now=now, run_key=run_key)
        assert run.id is not None
        return run.id, False


def run_evaluation(
    settings: Settings,
    *,
    trigger: str,
    service: str | None = None,
    now: datetime | None = None,
    run_key: str | None = None,
    run_id: int | None = None,
    on_evaluated: Callable[[Evaluation], None] | None = None,
) -> int:
    """Load catalog, scorecards and facts; evaluate; store what changed. Returns the run id.

    ``on_evaluated`` receives the evaluation before it is stored (the CLI prints it).

    The run's history writes and its completion are one transaction: a run that dies
    half-way leaves history as it was and is marked failed. The same ``run_key`` twice
    stores once.
    """
    now = now or datetime.now(UTC)
    if run_id is None:
        run_id, done = create_run(
            settings, trigger=trigger, service=service, now=now, run_key=run_key
        )
        if done:
            return run_id
    started = time.monotonic()
    engine = engine_for(settings.database_url)
    try:
        with session_scope(engine) as session:
            evaluation = _evaluate_and_store(
                session, settings, run_id=run_id, service=service, now=now, started=started
            )
    except Exception as error:
        message = (
            str(error)
            if isinstance(error, InputError | NotFoundError)
            else (f"{type(error).__name__}: {error}")
        )
        with session_scope(engine) as session:
            run = session.get(EvaluationRun, run_id)
            if run is not None:
                run.status = RunStatus.FAILED
                run.error = message
                run.finished_at = datetime.now(UTC)
                run.duration_ms = int((time.monotonic() - started) * 1000)
        log.warning("evaluation run %s failed: %s", run_id, message)
        raise EvaluationFailed(run_id, message) from error
    if on_evaluated is not None:
        on_evaluated(evaluation)
    return run_id


def _evaluate_and_store(
    session: Session,
    settings: Settings,
    *,
    run_id: int,
    service: str | None,
    now: datetime,
    started: float,
) -> Evaluation:
    # Runs are serialized (PostgreSQL): two at once would race on new services and versions.
    lock_history(session)
    run = session.get(EvaluationRun, run_id)
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist")
    schemas = schemas_for(settings)
    catalog = load_catalog(settings.catalog)
    problems = [str(p) for p in catalog.problems]
    if not catalog.services:
        raise InputError(
            [Problem(str(settings.catalog), None, "no services in the catalog"), *catalog.problems]
        )
    selected: list[Service] = list(catalog)
    if service is not None:
        if service not in catalog.services:
            raise NotFoundError(f'unknown service "{service}"')
        selected = [catalog.services[service]]
    service_ids = sync_services(session, services=catalog, now=now, complete=True)
    inputs = resolve_scorecards(session, settings.scorecards, schemas)
    problems += inputs.problems
    if not inputs.scorecards:
        raise InputError(
            [
                Problem(
                    str(settings.scorecards),
                    None,
                    "no usable scorecards: " + "; ".join(inputs.problems),
                )
            ]
        )
    stored = sync_scorecards(session, scorecards=inputs.scorecards, now=now, retired=inputs.retired)
    if settings.facts is not None:
        problems += store_file_facts(
            session, path=settings.facts, schemas=schemas, services=catalog.services, now=now
        )
    facts, notes = latest_facts(
        session, now=now, max_age=timedelta(hours=settings.facts_max_age_hours), service=service
    )
    problems += notes
    evaluation = evaluate(selected, facts, inputs.scorecards.values(), schemas, now)
    problems += [
        f'scorecard "{card}" filter on "{svc}": {why}'
        for (svc, card), why in sorted(evaluation.filter_errors.items())
    ]
    scope = None if service is None else [service_ids[service]]
    outcome = record_results(
        session,
        run=run,
        results=evaluation.results,
        service_ids=service_ids,
        scorecards=stored,
        scope=scope,
    )
    counts: dict[str, int] = {}
    levels: dict[str, dict[str, int]] = {}
    for result in evaluation.results:
        for status, count in result.counts().items():
            counts[status] = counts.get(status, 0) + count
        by_level = levels.setdefault(result.scorecard, {})
        by_level[result.level or "none"] = by_level.get(result.level or "none", 0) + 1
    run.status = RunStatus.SUPERSEDED if outcome.superseded else RunStatus.COMPLETE
    run.evaluated_at = now
    run.services = len(selected)
    run.results = len(evaluation.results)
    run.rule_results = evaluation.rule_evaluations
    run.changed_results = outcome.changed_results
    run.counts = counts
    run.levels = levels
    run.problems = problems
    run.finished_at = datetime.now(UTC)
    run.duration_ms = int((time.monotonic() - started) * 1000)
    session.add(run)
    return evaluation


# --- collection ----------------------------------------------------------------------------


@dataclass
class CollectionStored:
    source: str
    services: int
    failures: int
    requests: int


def store_collection(
    settings: Settings,
    *,
    source: str,
    started_at: datetime,
    finished_at: datetime,
    facts: Mapping[str, Mapping[str, Any]],
    failures: Mapping[str, str],
    requests: int = 0,
) -> CollectionStored:
    """Store one collector's facts (and per-service failures) as snapshots, in one transaction."""
    with session_scope(engine_for(settings.database_url)) as session:
        for service, values in facts.items():
            store_snapshot(
                session, service=service, source=source, facts=values, collected_at=finished_at
            )
        for service, error in failures.items():
            store_snapshot(
                session, service=service, source=source, error=error, collected_at=finished_at
            )
    log.info(
        "stored %s facts: %d services, %d failures, %d requests in %.1fs",
        source,
        len(facts),
        len(failures),
        requests,
        (finished_at - started_at).total_seconds(),
    )
    return CollectionStored(source, len(facts), len(failures), requests)


def store_collection_result(settings: Settings, result: CollectionResult) -> CollectionStored:
    return store_collection(
        settings,
        source=result.source,
        started_at=result.started_at,
        finished_at=result.finished_at or datetime.now(UTC),
        facts=result.facts,
        failures=result.failures,
        requests=result.requests,
    )


Progress = Callable[[str, CollectionResult | None], None]

# Collectors live as long as the process, so a server or worker keeps each collector's state
# (the GitHub ETag cache) from run to run; keyed by the collector's settings section.
_COLLECTORS: dict[tuple[str, str], Any] = {}


def configured_collectors(settings: Settings, sources: Sequence[str] | None = None) -> list[Any]:
    """The collectors of the settings file (optionally only ``sources``), reused across runs."""
    wanted = settings.collectors if sources is None else {
        name: section for name, section in settings.collectors.items() if name in sources
    }
    missing = sorted(set(sources or ()) - set(settings.collectors))
    if missing:
        raise SettingsError([Problem("collectors", None, f"no settings for collector {name!r} "
                                     f"(configured: {', '.join(settings.collectors) or 'none'})")
                             for name in missing])
    built = []
    for name, section in wanted.items():
        key = (name, json.dumps(section, sort_keys=True, default=str))
        if key not in _COLLECTORS:
            try:
                [_COLLECTORS[key]] = build_collectors({name: section})
            except KeyError as error:
                raise SettingsError([Problem("collectors", None, str(error.args[0]))]) from None
        built.append(_COLLECTORS[key])
    return built


def run_collection(
    settings: Settings,
    *,
    sources: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[tuple[CollectionResult, CollectionStored]]:
    """Collect facts for the catalog's services from each configured source, and store them.

    Each source is stored as soon as it finishes; a source that breaks fails its services
    (their rules become unknown) and the others still run.
    """
    collectors = configured_collectors(settings, sources)
    catalog = load_catalog(settings.catalog)
    selected = list(catalog)
    if services:
        unknown = sorted(set(services) - set(catalog.services))
        if unknown:
            raise NotFoundError(f"unknown service(s): {', '.join(unknown)}")
        selected = [catalog.services[name] for name in services]
    stored = []
    for collector in collectors:
        if progress is not None:
            progress(collector.name, None)
        [result] = collect_all([collector], selected)
        stored.append((result, store_collection_result(settings, result)))
        if progress is not None:
            progress(collector.name, result)
    return stored


def push_custom_facts(
    settings: Settings, *, service: str, facts: Mapping[str, Any], now: datetime | None = None
) -> FactSnapshot:
    """Merge pushed facts into the service's ``custom`` namespace (a new snapshot if changed)."""
    now = now or datetime.now(UTC)
    with session_scope(engine_for(settings.database_url)) as session:
        latest = (
            session.execute(
                select(FactSnapshot)
                .where(
                    col(FactSnapshot.service) == service, col(FactSnapshot.source) == CUSTOM_SOURCE
                )
                .order_by(col(FactSnapshot.id).desc())
                .limit(1)
            )
            .scalars()
            .first()
        )
        merged = dict(latest.facts) if latest is not None and latest.status == "ok" else {}
        merged.update(facts)
        return store_snapshot(
            session, service=service, source=CUSTOM_SOURCE, facts=merged, collected_at=now
        )


def prune_history(settings: Settings, *, now: datetime | None = None) -> dict[str, int]:
    """Delete history older than ``retention_days``."""
    now = now or datetime.now(UTC)
    with session_scope(engine_for(settings.database_url)) as session:
        return prune(session, before=now - timedelta(days=settings.retention_days))
