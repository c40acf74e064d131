"""Collectors' HTTP cache in the database: GitHub's ETags, shared by every process.

A cron-driven ``levelset collect``, the scheduler and each worker read and write the same
rows, so a conditional request is conditional from the second run on, whichever process
makes it. :class:`DatabaseETagCache` is the cache the GitHub collector takes (its
``get``/``put``/``save`` protocol): reads go to the database once per key and run, writes
are kept until ``save`` and stored in one transaction at the end of the collection.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from engine.storage.database import session_scope, table_of, write_scope
from engine.storage.models import HttpCacheEntry, utcnow

KEEP_UNUSED = timedelta(days=30)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def cached_answer(session: Session, source: str, key: str) -> HttpCacheEntry | None:
    """The stored answer for ``key`` (a request's media type and URL), if any."""
    table = table_of(HttpCacheEntry)
    row = session.execute(select(table).where(
        table.c.source == source, table.c.key_digest == digest(key))).first()
    if row is None:
        return None
    return HttpCacheEntry(**row._mapping)


def store_answers(session: Session, source: str, answers: Sequence[dict[str, Any]],
                  used: Sequence[str], now: datetime) -> None:
    """Insert or replace ``answers`` (key, etag, body, headers); mark the keys in ``used``
    (answered 304 this run) as used; drop what no run used for 30 days."""
    table = table_of(HttpCacheEntry)
    rows = [{"source": source, "key_digest": digest(a["key"]), "etag": a["etag"],
             "body": a["body"], "headers": a["headers"], "used_at": now} for a in answers]
    if rows:
        dialect = session.get_bind().dialect.name
        insert: Any = postgresql.insert(table) if dialect == "postgresql" else \
            sqlite.insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=["source", "key_digest"],
            set_={"etag": insert.excluded.etag, "body": insert.excluded.body,
                  "headers": insert.excluded.headers, "used_at": insert.excluded.used_at})
        session.execute(statement, rows)
    if used:
        session.execute(update(table).where(
            table.c.source == source,
            table.c.key_digest.in_([digest(k) for k in used])).values(used_at=now))
    session.execute(delete(table).where(table.c.source == source,
                                        table.c.used_at < now - KEEP_UNUSED))


@dataclass(frozen=True)
class _Answer:
    etag: str
    body: str
    headers: dict[str, str]


class DatabaseETagCache:
    """The ETag cache of one source, kept in the ``http_cache`` table."""

    def __init__(self, engine: Engine, source: str) -> None:
        self.engine, self.source = engine, source
        self._read: dict[str, Any] = {}
        self._new: dict[str, Any] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._new:
                return self._new[key]
            if key not in self._read:
                with session_scope(self.engine) as session:
                    row = cached_answer(session, self.source, key)
                self._read[key] = None if row is None else _Answer(
                    row.etag, row.body, dict(row.headers))
            if self._read[key] is not None:
                self._used.add(key)
            return self._read[key]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._new[key] = value

    def save(self) -> None:
        with self._lock:
            new, used = self._new, sorted(self._used - set(self._new))
            self._new, self._used, self._read = {}, set(), {}
        answers = [{"key": k, "etag": v.etag, "body": v.body, "headers": dict(v.headers)}
                   for k, v in new.items()]
        with write_scope(self.engine) as session:
            store_answers(session, self.source, answers, used, utcnow())
