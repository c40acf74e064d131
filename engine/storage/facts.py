"""Fact snapshots: the facts of one service from one source, stored when they change."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlmodel import Session, col

from engine.storage.codec import digest256, json_path, jsonable, repair_json
from engine.storage.database import chunks, table_of
from engine.storage.models import FactSnapshot, SnapshotStatus
from engine.storage.public import FactSnapshotPublic
from engine.storage.services import get_service


def latest(
    session: Session, *, service: str | None = None, source: str | None = None
) -> list[FactSnapshot]:
    """The latest snapshot of each (service, source), optionally of one service or source."""
    newest = select(func.max(col(FactSnapshot.id))).group_by(
        col(FactSnapshot.service), col(FactSnapshot.source)
    )
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
    newest = select(func.max(col(FactSnapshot.id))).group_by(
        col(FactSnapshot.service), col(FactSnapshot.source))
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
                  .where(col(FactSnapshot.service).in_(part))
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


def latest_ok_facts(session: Session, *, service: str, source: str) -> dict[str, Any]:
    """The facts of the latest snapshot of (service, source) if it succeeded, else none."""
    found = latest(session, service=service, source=source)
    if found and found[0].status == SnapshotStatus.OK:
        return dict(found[0].facts)
    return {}


def latest_snapshots(
    session: Session, *, service: str, source: str | None = None, now: datetime | None = None
) -> list[FactSnapshotPublic]:
    """What the API shows of a service's facts: each source's latest snapshot and its age.

    Values that cannot be written back as JSON (stored before pushes were checked) are shown
    repaired and listed in ``invalid``, so that reading never fails and they can be removed.
    """
    now = now or datetime.now(UTC)
    rows = latest(session, service=service, source=source)
    if not rows:
        get_service(session, service)  # facts may be collected before the first evaluation
    shown = []
    for row in rows:
        facts, flaws = repair_json(row.facts)
        invalid: dict[str, str] = {}
        for path, problem in flaws:  # a bad key may hold a bad value: one entry, both said
            where = json_path(path)
            invalid[where] = f"{invalid[where]}; {problem}" if where in invalid else problem
        shown.append(FactSnapshotPublic.model_validate({
            **row.model_dump(exclude={"facts"}), "facts": facts, "invalid": invalid,
            "age_seconds": (now - row.confirmed_at).total_seconds(),
        }))
    return shown
