"""Facts jobs: the configured facts file stored as snapshots, the latest facts a run reads,
and custom facts pushed through the API."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core.errors import InputError, NotFoundError, Problem
from core.schema import FactSchema
from engine.evaluation import ServiceFacts
from engine.facts import load_facts
from engine.settings import Settings, has_type
from engine.storage import facts as fact_store
from engine.storage.codec import json_path, repair_json
from engine.storage.database import engine_for, write_scope
from engine.storage.models import SnapshotStatus
from engine.storage.public import FactSnapshotPublic

log = logging.getLogger("levelset.jobs")

CUSTOM_SOURCE = "custom"
# Pushed facts have no collector to refresh them; they hold until replaced.
NEVER_STALE = frozenset({CUSTOM_SOURCE})


def latest_facts(
    session: Session, *, now: datetime, max_age: timedelta, service: str | None = None,
    services: Collection[str] | None = None,
) -> tuple[dict[str, ServiceFacts], list[str]]:
    """The latest snapshot per (service, source) of one ``service``, of ``services``, or of
    all; stale or failed ones count as absent."""
    facts: dict[str, ServiceFacts] = {}
    stale = 0
    snapshots = (fact_store.latest(session, service=service) if services is None
                 else fact_store.latest_of(session, services=services))
    for snapshot in snapshots:
        entry = facts.setdefault(snapshot.service, ServiceFacts())
        if _stale(snapshot.source, snapshot.confirmed_at, now, max_age):
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


def _stale(source: str, confirmed_at: datetime, now: datetime, max_age: timedelta) -> bool:
    return source not in NEVER_STALE and now - confirmed_at > max_age


def fact_states(
    session: Session, *, now: datetime, max_age: timedelta
) -> dict[str, dict[str, str]]:
    """What each service's facts are, per source, without reading them: the snapshot's
    digest, or why they count as absent (what ``latest_facts`` would make of them)."""
    states: dict[str, dict[str, str]] = {}
    for row in fact_store.latest_states(session):
        if _stale(row.source, row.confirmed_at, now, max_age):
            state = f"stale {row.confirmed_at.isoformat()}"
        elif row.status == SnapshotStatus.FAILED:
            state = f"failed {row.error}"
        else:
            state = f"ok {row.digest}"
        states.setdefault(row.service, {})[row.source] = state
    return states


def store_file_facts(
    settings: Settings,
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
    values: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, dict[str, str]] = {}
    for name, found in by_service.items():
        if name in known:
            for namespace, facts in found.values.items():
                values.setdefault(namespace, {})[name] = facts
            for namespace, why in found.failures.items():
                failures.setdefault(namespace, {})[name] = why
    with write_scope(engine_for(settings.database_url)) as session:
        for namespace in sorted(values.keys() | failures.keys()):
            fact_store.store_snapshots(session, source=namespace, collected_at=now,
                                       facts=values.get(namespace), failures=failures.get(namespace))
    unknown = sorted(set(by_service) - known)
    if not unknown:
        return []
    return [f"{path}: facts for services not in the catalog: {', '.join(unknown)}"]


def push_custom_facts(
    settings: Settings, *, service: str, facts: Mapping[str, Any], now: datetime | None = None
) -> FactSnapshotPublic:
    """Merge pushed facts into the service's ``custom`` namespace (a new snapshot if changed);
    returns the namespace's snapshot as stored. Refuses (InputError) values that could not be
    written back as JSON: NaN, infinities, unpaired surrogates, nesting too deep."""
    _, flaws = repair_json(dict(facts))
    if flaws:
        raise InputError([Problem(f"facts.{json_path(path)}", None, problem)
                          for path, problem in flaws])
    declared = settings.custom_facts or {}
    wrong = [Problem(f"facts.{key}", None, f"declared in custom_facts as {declared[key].type.value}, "
                     f"got {type(value).__name__} {value!r:.100}")
             for key, value in facts.items()
             if key in declared and value is not None and not has_type(value, declared[key].type)]
    if wrong:
        raise InputError(wrong)
    now = now or datetime.now(UTC)
    with write_scope(engine_for(settings.database_url)) as session:
        merged = fact_store.latest_ok_facts(session, service=service, source=CUSTOM_SOURCE)
        merged.update(facts)
        return _store_custom(session, service, merged, now)


def delete_custom_fact(
    settings: Settings, *, service: str, key: str, now: datetime | None = None
) -> FactSnapshotPublic:
    """Remove a pushed key from the service's ``custom`` namespace: a new snapshot without it
    (history is appended). ``key`` may be the key as shown, with unpaired surrogates as
    U+FFFD, so that a value stored before pushes were checked can be removed.
    NotFoundError if the namespace has no such key."""
    now = now or datetime.now(UTC)
    with write_scope(engine_for(settings.database_url)) as session:
        kept = fact_store.latest_ok_facts(session, service=service, source=CUSTOM_SOURCE)
        matching = [key] if key in kept else [
            name for name in kept if repair_json({name: None})[0] == {key: None}]
        if not matching:
            raise NotFoundError(f'service "{service}" has no pushed fact "{key}"')
        for name in matching:
            del kept[name]
        return _store_custom(session, service, kept, now)


def _store_custom(
    session: Session, service: str, facts: dict[str, Any], now: datetime
) -> FactSnapshotPublic:
    fact_store.store_snapshots(session, source=CUSTOM_SOURCE, collected_at=now,
                               facts={service: facts})
    [snapshot] = fact_store.latest_snapshots(session, service=service, source=CUSTOM_SOURCE,
                                             now=now)
    return snapshot
