"""Services as the catalog last described them: synced by every run, listed by the API."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session, col

from core.errors import NotFoundError
from core.service import Service
from engine.storage.database import chunks, insert_missing, table_of
from engine.storage.models import ServiceRecord
from engine.storage.public import ServicePublic

# What the catalog says of a service, as stored; a change to any of these updates its row.
CATALOG_FIELDS = ("namespace", "title", "description", "owner", "lifecycle", "type", "system",
                  "tier", "tags", "annotations", "in_catalog")


def _values(service: Service) -> dict[str, Any]:
    return {
        "namespace": service.namespace, "title": service.title,
        "description": service.description, "owner": service.owner,
        "lifecycle": service.lifecycle, "type": service.type, "system": service.system,
        "tier": service.tier, "tags": list(service.tags),
        "annotations": dict(service.annotations), "in_catalog": True,
    }


def sync_services(
    session: Session,
    *,
    services: Iterable[Service],
    now: datetime,
    complete: bool,
    lock: Collection[str] = (),
) -> dict[str, int]:
    """Store the catalog's services; returns every stored service's id by name.

    ``complete``: services missing from ``services`` have left the catalog. ``lock``: names
    whose rows stay locked until the transaction ends (the services a run stores results of).
    Safe beside a concurrent sync: new services are inserted with ON CONFLICT DO NOTHING, and
    only rows that change or are in ``lock`` are locked, in id order (no deadlock).
    """
    wanted = {service.name: _values(service) for service in services}
    table = table_of(ServiceRecord)
    stored = {row.name: row for row in session.execute(select(table))}
    new = [
        {"name": name, "first_seen": now, "last_seen": now, **values}
        for name, values in sorted(wanted.items()) if name not in stored
    ]
    insert_missing(session, ServiceRecord, new, ["name"])
    ids = {row.name: row.id for row in session.execute(select(table.c.name, table.c.id))}
    # ``last_seen`` moves once a day at most, so an unchanged catalog rewrites no rows.
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    changed: list[dict[str, Any]] = []
    gone: list[int] = []
    for name, row in stored.items():
        values = wanted.get(name)
        if values is None:
            if complete and row.in_catalog:
                gone.append(row.id)
        elif row.last_seen < day_start or any(getattr(row, k) != v for k, v in values.items()):
            changed.append({"id_": row.id, **values, "last_seen": now})
    _lock(session, sorted({row["id_"] for row in changed} | set(gone)
                          | {ids[name] for name in lock if name in ids}))
    if changed:
        session.execute(
            update(table).where(table.c.id == bindparam("id_"))
            .values({key: bindparam(key) for key in (*CATALOG_FIELDS, "last_seen")}),
            changed,
        )
    for part in chunks(gone):
        session.execute(update(table).where(table.c.id.in_(part)).values(in_catalog=False))
    return ids


def _lock(session: Session, ids: list[int]) -> None:
    """Row locks on PostgreSQL (SQLite's writer already holds the database)."""
    if session.get_bind().dialect.name != "postgresql" or not ids:
        return
    table = table_of(ServiceRecord)
    for part in chunks(ids, 5000):
        session.execute(
            select(table.c.id).where(table.c.id.in_(part)).order_by(table.c.id).with_for_update()
        )


def get_service(session: Session, name: str) -> ServiceRecord:
    record = session.execute(
        select(ServiceRecord).where(col(ServiceRecord.name) == name)
    ).scalars().first()
    if record is None:
        raise NotFoundError(f'unknown service "{name}"')
    return record


def list_services(
    session: Session,
    *,
    owner: str | None = None,
    lifecycle: str | None = None,
    graded: Any = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[ServicePublic]]:
    """Services in the catalog, by name; ``graded``: a subquery of service ids to keep."""
    query = select(ServiceRecord).where(col(ServiceRecord.in_catalog))
    if owner is not None:
        query = query.where(col(ServiceRecord.owner) == owner)
    if lifecycle is not None:
        query = query.where(col(ServiceRecord.lifecycle) == lifecycle)
    if graded is not None:
        query = query.where(col(ServiceRecord.id).in_(graded))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(col(ServiceRecord.name)).limit(limit).offset(offset)
    ).scalars()
    return total, [ServicePublic.model_validate(r, from_attributes=True) for r in rows]
