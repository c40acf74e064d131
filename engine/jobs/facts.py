"""Facts jobs: the configured facts file stored (snapshots per namespace, custom facts per
key), the latest facts a run reads, and custom facts pushed through the API."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session

from core.errors import InputError, NotFoundError, Problem
from core.schema import FactSchema
from engine.custom_facts import (
    CustomValue,
    apply,
    check_push,
    check_service,
    coerce_declared,
    plan_file,
    plan_push,
    resolve,
)
from engine.evaluation import ServiceFacts
from engine.facts import load_facts
from engine.settings import Settings
from engine.storage import facts as fact_store
from engine.storage.codec import json_path, jsonable, repair_json
from engine.storage.database import engine_for, write_scope
from engine.storage.models import FactOrigin, SnapshotStatus
from engine.storage.public import FactSnapshotPublic
from engine.storage.services import get_service
from engine.vocabulary import custom_schema

log = logging.getLogger("levelset.jobs")

CUSTOM_SOURCE = fact_store.CUSTOM
# Pushed facts have no collector to refresh them; they hold until replaced.
NEVER_STALE = frozenset({CUSTOM_SOURCE})


def latest_facts(
    session: Session, *, now: datetime, max_age: timedelta, service: str | None = None,
    services: Collection[str] | None = None,
) -> tuple[dict[str, ServiceFacts], list[str]]:
    """The latest snapshot per (service, source) of one ``service``, of ``services``, or of
    all (stale or failed ones count as absent), and each one's ``custom`` namespace: the
    more recent of the file's and the pushed value of each key."""
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
    wanted = services if services is not None else ([service] if service is not None else None)
    for name, entries in fact_store.custom_entries(session, services=wanted).items():
        facts.setdefault(name, ServiceFacts()).values[CUSTOM_SOURCE] = {
            key: value.value for key, value in resolve(entries).items()}
    notes = [f"{stale} fact snapshot(s) older than {max_age} were ignored"] if stale else []
    return facts, notes


def _stale(source: str, confirmed_at: datetime, now: datetime, max_age: timedelta) -> bool:
    return source not in NEVER_STALE and now - confirmed_at > max_age


def fact_states(
    session: Session, *, now: datetime, max_age: timedelta
) -> dict[str, dict[str, str]]:
    """What each service's facts are, per source, without reading them: the snapshot's
    digest, or why they count as absent (what ``latest_facts`` would make of them); for
    ``custom``, the latest change of any of its keys."""
    states: dict[str, dict[str, str]] = {}
    for row in fact_store.latest_states(session):
        if _stale(row.source, row.confirmed_at, now, max_age):
            state = f"stale {row.confirmed_at.isoformat()}"
        elif row.status == SnapshotStatus.FAILED:
            state = f"failed {row.error}"
        else:
            state = f"ok {row.digest}"
        states.setdefault(row.service, {})[row.source] = state
    for service, change in fact_store.custom_states(session).items():
        states.setdefault(service, {})[CUSTOM_SOURCE] = f"ok change {change}"
    return states


def store_file_facts(
    settings: Settings,
    *,
    path: Path,
    schemas: Mapping[str, FactSchema],
    services: Iterable[str],
    now: datetime,
) -> list[str]:
    """The configured facts file, stored: each namespace it holds as snapshots, and its
    ``custom`` facts per key (a key's value dates from when it changed in the file: the
    file's modification time, at most ``now``). Pushed values are kept."""
    known = set(services)
    try:
        by_service = load_facts(path, schemas)
    except InputError as error:
        return [str(p) for p in error.problems]
    values: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, dict[str, str]] = {}
    custom: dict[str, dict[str, Any]] = {}
    for name, found in by_service.items():
        if name in known:
            for namespace, facts in found.values.items():
                if namespace == CUSTOM_SOURCE:
                    custom[name] = jsonable(facts)
                else:
                    values.setdefault(namespace, {})[name] = facts
            for namespace, why in found.failures.items():
                failures.setdefault(namespace, {})[name] = why
    changed_at = _modified(path, now)
    with write_scope(engine_for(settings.database_url)) as session:
        for namespace in sorted(values.keys() | failures.keys()):
            fact_store.store_snapshots(session, source=namespace, collected_at=now,
                                       facts=values.get(namespace), failures=failures.get(namespace))
        held = fact_store.custom_entries(session, origin=FactOrigin.FILE)
        for name in sorted((custom.keys() | held.keys()) & known):
            fact_store.append_custom(session, service=name, changes=plan_file(
                {entry.key: entry for entry in held.get(name, [])}, custom.get(name),
                changed_at))
    unknown = sorted(set(by_service) - known)
    if not unknown:
        return []
    return [f"{path}: facts for services not in the catalog: {', '.join(unknown)}"]


def _modified(path: Path, now: datetime) -> datetime:
    """When the file's content last changed, as far as can be told: its modification time,
    never later than the run reading it."""
    try:
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except (OSError, OverflowError, ValueError):
        return now
    return min(modified, now)


def push_custom_facts(
    settings: Settings, *, service: str, facts: Mapping[str, Any], now: datetime | None = None
) -> FactSnapshotPublic:
    """Merge pushed facts into the service's ``custom`` namespace (see
    ``engine.custom_facts``: objects merged at every depth, ``null`` removes); returns the
    namespace as stored. Appends a row per key whose value changed, in one transaction that
    holds the service's custom facts, so concurrent pushes to one service all land.

    Refuses (InputError) values that could not be written back as JSON (NaN, infinities,
    unpaired surrogates, nesting too deep), with declared ``custom_facts`` a key not declared
    or a value that does not convert to its type, and (FactsLimitError) a push over the
    limits. NotFoundError for an unknown service.
    """
    _, flaws = repair_json(dict(facts))
    if flaws:
        raise InputError([Problem(f"facts.{json_path(path)}", None, problem)
                          for path, problem in flaws])
    check_push(facts)
    converted, wrong = coerce_declared(facts, custom_schema(settings.custom_facts))
    if wrong:
        raise InputError([Problem(f"facts.{key}", None, why) for key, why in wrong])
    now = now or datetime.now(UTC)
    with write_scope(engine_for(settings.database_url)) as session:
        get_service(session, service)
        fact_store.lock_custom(session, service=service)
        entries = fact_store.custom_entries(session, services=[service]).get(service, [])
        before = resolve(entries)
        changes = plan_push(before, converted, now)
        after = apply(entries, changes)
        check_service(service, before, resolve(after))
        fact_store.append_custom(session, service=service, changes=changes)
        return fact_store.custom_snapshot(service, after, now)


def delete_custom_fact(
    settings: Settings, *, service: str, key: str, now: datetime | None = None
) -> FactSnapshotPublic:
    """Remove a key from the service's ``custom`` namespace: a removal row (history is
    appended), which holds until the facts file changes the key's value. ``key`` may be the
    key as shown, with unpaired surrogates as U+FFFD. NotFoundError if the namespace has no
    such key."""
    now = now or datetime.now(UTC)
    with write_scope(engine_for(settings.database_url)) as session:
        get_service(session, service)
        fact_store.lock_custom(session, service=service)
        entries = fact_store.custom_entries(session, services=[service]).get(service, [])
        kept = resolve(entries)
        matching = [key] if key in kept else [
            name for name in kept if repair_json({name: None})[0] == {key: None}]
        if not matching:
            raise NotFoundError(f'service "{service}" has no pushed fact "{key}"')
        changes = [CustomValue(name, FactOrigin.PUSH, None, True, now) for name in matching]
        fact_store.append_custom(session, service=service, changes=changes)
        return fact_store.custom_snapshot(service, apply(entries, changes), now)
