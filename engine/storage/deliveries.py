"""Deliveries: each attempt to post a part of a report or notification to a channel.

Attempts are appended, never updated (``Delivery``). A sender first claims (kind, key,
channel) with an insert that does nothing when another sender holds it (``DeliveryClaim``),
reads which parts are already sent, posts the others, records each attempt and releases its
claim: two processes sending the same week post it once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, select
from sqlmodel import Session, col

from engine.storage.database import insert_missing, table_of
from engine.storage.models import Delivery, DeliveryClaim, DeliveryKind, DeliveryStatus

MAX_KEY = 512


def stored_key(key: str) -> str:
    """``key`` as stored: a key longer than the column keeps its start and gains its digest."""
    if len(key) <= MAX_KEY:
        return key
    return f"{key[:MAX_KEY - 65]}#{hashlib.sha256(key.encode()).hexdigest()}"


def _target(kind: DeliveryKind, key: str, channel: str) -> ColumnElement[bool]:
    table = table_of(DeliveryClaim)
    return and_(table.c.kind == kind, table.c.key == stored_key(key), table.c.channel == channel)


def claim(
    session: Session, *, kind: DeliveryKind, key: str, channel: str, holder: str,
    now: datetime, expires_at: datetime,
) -> bool:
    """Take the hold on (kind, key, channel) for ``holder``; False while another sender holds
    it. An expired hold (its sender died) is taken over."""
    table = table_of(DeliveryClaim)
    target = _target(kind, key, channel)
    session.execute(delete(table).where(target, table.c.expires_at < now))
    insert_missing(session, DeliveryClaim, [{
        "kind": kind, "key": stored_key(key), "channel": channel, "holder": holder,
        "claimed_at": now, "expires_at": expires_at}], keys=["kind", "key", "channel"])
    held = session.execute(select(table.c.holder).where(target)).scalar()
    return bool(held == holder)


def release(session: Session, *, kind: DeliveryKind, key: str, channel: str, holder: str) -> None:
    """Give the hold back (only ``holder``'s own: an expired one may have been taken over)."""
    table = table_of(DeliveryClaim)
    session.execute(delete(table).where(_target(kind, key, channel),
                                        table.c.holder == holder))


def sent_parts(session: Session, *, kind: DeliveryKind, key: str, channel: str) -> set[int]:
    """The parts of (kind, key) that some attempt posted to ``channel``."""
    rows = session.execute(select(col(Delivery.part)).distinct().where(
        col(Delivery.kind) == kind, col(Delivery.key) == stored_key(key),
        col(Delivery.channel) == channel, col(Delivery.status) == DeliveryStatus.SENT))
    return set(rows.scalars())


def record(
    session: Session, *, kind: DeliveryKind, key: str, channel: str, part: int,
    status: DeliveryStatus, error: str | None, at: datetime,
) -> None:
    """Append one attempt."""
    session.add(Delivery(kind=kind, key=stored_key(key), channel=channel, part=part,
                         status=status, error=error, attempted_at=at))


def attempts(
    session: Session, *, kind: DeliveryKind | None = None, key: str | None = None
) -> list[Delivery]:
    """Every recorded attempt (of one kind, one key), oldest first."""
    query = select(Delivery).order_by(col(Delivery.id))
    if kind is not None:
        query = query.where(col(Delivery.kind) == kind)
    if key is not None:
        query = query.where(col(Delivery.key) == stored_key(key))
    return list(session.execute(query).scalars())
