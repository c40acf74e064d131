"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, SmallInteger, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# JSONB on PostgreSQL (compact, indexable), JSON text elsewhere.
JSONColumn = JSON().with_variant(JSONB(), "postgresql")


class JSONValue(TypeDecorator[Any]):
    """Any JSON value, a bare number included, read back as written: JSONB on PostgreSQL,
    JSON text in a TEXT column elsewhere. SQLite gives a column declared ``JSON`` numeric
    affinity, which stores the text ``41.0`` as the integer 41; ``JSONColumn`` is safe only
    for objects and arrays."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value if dialect.name == "postgresql" else json.dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return json.loads(value) if isinstance(value, str) and dialect.name != "postgresql" \
            else value


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Hundredths(TypeDecorator[float]):
    """A score in [0, 100] with two decimals, stored as a 2-byte integer of hundredths."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> int | None:
        return None if value is None else round(value * 100)

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        return None if value is None else value / 100


def utcnow() -> datetime:
    return datetime.now(UTC)
