"""Fact snapshots: the facts of one service from one source, stored when they change; and
custom facts, stored per key with their origin (file or push).

The ``custom`` namespace is not a snapshot: each change of one key from one origin is a row
of ``custom_fact`` (``engine.custom_facts`` decides what the namespace is). Custom snapshots
stored before that are history only; the snapshot readers here skip them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from itertools import accumulate
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, text, update
from sqlmodel import Session, col

from engine.custom_facts import CustomValue, resolve
from engine.storage.codec import (
    MAX_JSON_DEPTH,
    digest64,
    digest256,
    json_path,
    jsonable,
    repair_json,
)
from engine.storage.database import chunks, rowcount, table_of
from engine.storage.models import CustomFact, FactOrigin, FactSnapshot, SnapshotStatus
from engine.storage.public import FactSnapshotPublic
from engine.storage.services import get_service

CUSTOM = "custom"


def latest(
    session: Session, *, service: str | None = None, source: str | None = None
) -> list[FactSnapshot]:
    """The latest snapshot of each (service, source) but ``custom``, optionally of one service
    or source."""
    newest = select(func.max(col(FactSnapshot.id))).where(
        col(FactSnapshot.source) != CUSTOM).group_by(col(FactSnapshot.service), col(FactSnapshot.source))
    if service is not None:
        newest = newest.where(col(FactSnapshot.service) == service)
    if source is not None:
        newest = newest.where(col(FactSnapshot.source) == source)
    query = select(FactSnapshot).where(col(FactSnapshot.id).in_(newest))
    return list(session.execute(
        query.order_by(col(FactSnapshot.service), col(FactSnapshot.source))
    ).scalars())


def latest_states(
    session: Session, *, source: str | None = None, service: str | None = None
) -> list[Any]:
    """What the latest snapshot of each (service, source) is, without its facts: id,
    service, source, digest, status, error and confirmed_at (what decides whether a result
    changed, or a snapshot is new)."""
    newest = select(func.max(col(FactSnapshot.id))).where(
        col(FactSnapshot.source) != CUSTOM).group_by(col(FactSnapshot.service), col(FactSnapshot.source))
    if source is not None:
        newest = newest.where(col(FactSnapshot.source) == source)
    if service is not None:
        newest = newest.where(col(FactSnapshot.service) == service)
    table = table_of(FactSnapshot)
    return list(session.execute(
        select(table.c.id, table.c.service, table.c.source, table.c.digest, table.c.status,
               table.c.error, table.c.confirmed_at).where(table.c.id.in_(newest))))


def latest_of(session: Session, *, services: Collection[str]) -> list[FactSnapshot]:
    """The latest snapshot of each (service, source) of ``services``."""
    found: list[FactSnapshot] = []
    for part in chunks(sorted(services)):
        newest = (select(func.max(col(FactSnapshot.id)))
                  .where(col(FactSnapshot.service).in_(part), col(FactSnapshot.source) != CUSTOM)
                  .group_by(col(FactSnapshot.service), col(FactSnapshot.source)))
        found += session.execute(
            select(FactSnapshot).where(col(FactSnapshot.id).in_(newest))).scalars()
    return found


def store_snapshots(
    session: Session,
    *,
    source: str,
    collected_at: datetime,
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    failures: Mapping[str, str] | None = None,
) -> int:
    """Append a snapshot per service whose content changed; confirm the others. Returns how
    many were appended."""
    contents: dict[str, tuple[SnapshotStatus, Any, str | None]] = {}
    for service, values in (facts or {}).items():
        contents[service] = (SnapshotStatus.OK, jsonable(dict(values)), None)
    for service, reason in (failures or {}).items():
        contents[service] = (SnapshotStatus.FAILED, {}, reason)
    if not contents:
        return 0
    only = next(iter(contents)) if len(contents) == 1 else None
    stored = {s.service: s for s in latest_states(session, source=source, service=only)}
    new: list[dict[str, Any]] = []
    confirmed: list[dict[str, Any]] = []
    for service, (status, values, error) in contents.items():
        digest = digest256([status, values, error])
        previous = stored.get(service)
        if previous is not None and previous.digest == digest:
            if collected_at > previous.confirmed_at:
                confirmed.append({"id_": previous.id, "at": collected_at})
            continue
        new.append({"service": service, "source": source, "status": status, "error": error,
                    "facts": values, "digest": digest, "collected_at": collected_at,
                    "confirmed_at": collected_at})
    table = table_of(FactSnapshot)
    for batch in chunks(new, 1000):
        session.execute(insert(table), batch)
    if confirmed:
        session.execute(
            update(table).where(table.c.id == bindparam("id_"))
            .values(confirmed_at=bindparam("at")), confirmed,
        )
    return len(new)


def latest_snapshots(
    session: Session, *, service: str, source: str | None = None, now: datetime | None = None
) -> list[FactSnapshotPublic]:
    """What the API shows of a service's facts: each source's latest snapshot and its age,
    and the ``custom`` namespace with where each value came from and since when.

    Values that cannot be written back as JSON (stored before pushes were checked) are shown
    repaired and listed in ``invalid``, so that reading never fails and they can be removed.
    """
    now = now or datetime.now(UTC)
    rows = latest(session, service=service, source=source)
    custom = (custom_entries(session, services=[service]).get(service)
              if source in (None, CUSTOM) else None)
    if not rows and not custom:
        get_service(session, service)  # facts may be collected before the first evaluation
    shown = [_public(row.model_dump(exclude={"facts"}), row.facts, row.confirmed_at, now)
             for row in rows]
    if custom:
        shown.append(custom_snapshot(service, custom, now))
    return sorted(shown, key=lambda snapshot: snapshot.source)


def custom_snapshot(
    service: str, entries: list[CustomValue], now: datetime
) -> FactSnapshotPublic:
    """The ``custom`` namespace as the API shows it, from the latest entry of each (key,
    origin): the values rules read, and each one's origin and time. (Keys are Unicode
    text: a key column cannot hold anything else.)"""
    values = resolve(entries)
    times = [entry.at for entry in values.values()] or [entry.at for entry in entries]
    return _public({"service": service, "source": CUSTOM, "status": SnapshotStatus.OK,
                    "error": None, "collected_at": min(times), "confirmed_at": max(times),
                    "origins": {key: {"origin": entry.origin, "at": entry.at}
                                for key, entry in values.items()}},
                   {key: entry.value for key, entry in values.items()}, max(times), now)


def _public(fields: dict[str, Any], facts: Any, confirmed_at: datetime,
            now: datetime) -> FactSnapshotPublic:
    repaired, flaws = (facts, []) if _writable(facts) else repair_json(facts)
    invalid: dict[str, str] = {}
    for path, problem in flaws:  # a bad key may hold a bad value: one entry, both said
        where = json_path(path)
        invalid[where] = f"{invalid[where]}; {problem}" if where in invalid else problem
    return FactSnapshotPublic.model_validate({
        **fields, "facts": repaired, "invalid": invalid,
        "age_seconds": (now - confirmed_at).total_seconds(),
    })


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def _writable(facts: Any) -> bool:
    """Whether ``repair_json`` would find nothing to repair, at C speed for the common case
    (a service's whole custom namespace is checked on each read): finite numbers, Unicode
    text, nesting within MAX_JSON_DEPTH."""
    try:
        text = json.dumps(facts, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        return False
    brackets = [1 if char in "[{" else -1 for char in _STRINGS.sub("", text) if char in "[]{}"]
    return max(accumulate(brackets), default=0) <= MAX_JSON_DEPTH


# --- custom facts, per key ------------------------------------------------------------------

def lock_custom(session: Session, *, service: str) -> None:
    """Hold the service's custom facts until the transaction ends, so that concurrent pushes
    to one service merge one after the other. PostgreSQL: a transaction-scoped advisory lock
    (no row needs to exist); SQLite: the write lock ``write_scope`` took at BEGIN already."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                        {"key": digest64(f"custom_fact:{service}")})


def custom_entries(
    session: Session, *, services: Collection[str] | None = None,
    origin: FactOrigin | None = None,
) -> dict[str, list[CustomValue]]:
    """The latest entry of each (service, key, origin), by service: of ``services``, or of
    every service; of one ``origin``, or of both."""
    table = table_of(CustomFact)
    parts: list[list[str] | None] = [None] if services is None else list(chunks(sorted(services)))
    found: dict[str, list[CustomValue]] = {}
    for part in parts:
        newest = select(func.max(table.c.id)).group_by(table.c.service, table.c.key,
                                                       table.c.origin)
        if part is not None:
            newest = newest.where(table.c.service.in_(part))
        if origin is not None:
            newest = newest.where(table.c.origin == origin)
        for row in session.execute(
                select(table.c.service, table.c.key, table.c.origin, table.c.value,
                       table.c.removed, table.c.changed_at, table.c.size)
                .where(table.c.id.in_(newest))):
            found.setdefault(row.service, []).append(CustomValue(
                row.key, FactOrigin(row.origin), row.value, row.removed, row.changed_at,
                row.size))
    return found


def append_custom(session: Session, *, service: str, changes: list[CustomValue]) -> None:
    """Append one row per change (history: rows are never updated)."""
    rows = [{"service": service, "key": change.key, "origin": change.origin,
             "value": None if change.removed else change.value, "removed": change.removed,
             "size": 0 if change.removed else change.measured,
             "changed_at": change.at} for change in changes]
    for batch in chunks(rows, 1000):
        session.execute(insert(table_of(CustomFact)), batch)


def custom_states(session: Session) -> dict[str, int]:
    """Per service, the id of its latest custom fact row: it changes whenever any of the
    service's custom facts does (what tells a run the service's inputs changed)."""
    table = table_of(CustomFact)
    return {service: newest for service, newest in session.execute(
        select(table.c.service, func.max(table.c.id)).group_by(table.c.service))}


def prune_custom(session: Session, *, before: datetime) -> int:
    """Delete custom fact rows that a newer row of the same (service, key, origin) replaced
    before ``before``: the latest row of each is what that origin holds, and is kept."""
    table = table_of(CustomFact)
    newer = table.alias("newer")
    return rowcount(session.execute(delete(table).where(
        table.c.changed_at < before,
        select(newer.c.id).where(and_(
            newer.c.service == table.c.service, newer.c.key == table.c.key,
            newer.c.origin == table.c.origin, newer.c.id > table.c.id,
            newer.c.changed_at < before,
        )).exists(),
    )))
