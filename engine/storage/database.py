"""Connections and migrations. SQLite by default, PostgreSQL in production, by URL."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, Table, create_engine, event, insert, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from core.errors import StorageError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
CHUNK = 500
T = TypeVar("T")


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, *, schema: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; ``schema`` (PostgreSQL) puts every table in that schema."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # The driver's own BEGIN is off: transactions begin where SQLAlchemy begins them,
            # IMMEDIATE for writers (see ``write_scope``), so a writer holds the lock before it
            # reads what it is about to change.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        return engine
    # JIT compiles expensive plans (a 10,000-row leaderboard) for hundreds of milliseconds;
    # these queries are short and indexed, so it only adds latency.
    options = ["-cjit=off"]
    existing = make_url(url).query.get("options")
    if existing:
        options.insert(0, existing if isinstance(existing, str) else " ".join(existing))
    if schema:
        options.append(f"-csearch_path={schema}")
    return create_engine(url, connect_args={"options": " ".join(options)}, pool_pre_ping=True,
                         **kwargs)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine (one pool) per database URL for the life of the process."""
    return make_engine(url)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (idempotent)."""
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), revision)
    except SQLAlchemyError as error:
        raise StorageError(f"cannot migrate {engine.url.render_as_string()}: {error}") from error


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError:
            return None
    return row[0] if row else None


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_scope(engine: Engine) -> Iterator[Session]:
    """A session for a writer: on SQLite its transaction takes the write lock at BEGIN.

    SQLite allows one writer; a deferred transaction that read first and writes later fails
    when another writer committed in between. PostgreSQL writers lock the rows they change.
    """
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with session_scope(engine) as session:
        yield session


def ping(session: Session) -> None:
    """Raise OperationalError if the database cannot answer."""
    session.execute(text("SELECT 1"))


def chunks(items: Sequence[T] | Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    """Batches of at most ``size``: bound parameter lists stay under every driver's limit."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def table_of(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def rowcount(result: Any) -> int:
    return int(result.rowcount)


def insert_missing(
    session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert rows whose unique ``keys`` are not stored yet; a concurrent writer's are kept.

    ``INSERT ... ON CONFLICT DO NOTHING`` on both databases: two runs that meet the same new
    service, scorecard version or outcome both succeed, and neither waits for a table lock.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = table_of(model)
    for batch in chunks(rows, 1000):
        if dialect == "postgresql":
            statement: Any = postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
        elif dialect == "sqlite":
            statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)
        else:  # pragma: no cover - the two supported databases are above
            statement = insert(table)
        session.execute(statement, batch)


def bulk_insert(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Append many rows of plain values (already as the column stores them) in the
    session's transaction: on PostgreSQL one ``INSERT ... SELECT FROM unnest(arrays)`` per
    50,000 rows (a column per array, sent in binary), on SQLite one ``executemany``.

    For history rows, a million on a first run of a large fleet, where building a parameter
    dictionary per row and converting each value costs more than writing them, and a
    statement per row costs PostgreSQL a round trip each.
    """
    if not rows:
        return
    connection = session.connection()
    names = ", ".join(columns)
    if connection.dialect.name != "postgresql":
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
                                   [tuple(row) for row in rows])
        return
    arrays = ", ".join(f"%s::{table.c[name].type.compile(connection.dialect)}[]"
                       for name in columns)
    statement = f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays})"
    for batch in chunks(rows, 50_000):
        connection.exec_driver_sql(statement, tuple(list(column) for column in zip(*batch, strict=True)))
