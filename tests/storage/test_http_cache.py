"""The collectors' HTTP cache table (GitHub ETags), on both databases."""

from __future__ import annotations

from datetime import timedelta

from engine.storage.database import engine_for, session_scope, write_scope
from engine.storage.http_cache import DatabaseETagCache, cached_answer, store_answers
from engine.storage.models import utcnow


def test_migration_0005_creates_the_http_cache_table_as_the_model_describes(
    database_url: str,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine_for(database_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert [d for d in differences if "http_cache" in repr(d)] == []


class Answer:
    def __init__(self, etag: str, body: str) -> None:
        self.etag, self.body, self.headers = etag, body, {"link": ""}


def test_answers_saved_by_one_process_are_read_by_another(database_url: str) -> None:
    engine = engine_for(database_url)
    writer = DatabaseETagCache(engine, "github")
    writer.put("application/json http://x/orgs/acme/alerts", Answer('W/"1"', "[]"))
    assert writer.get("application/json http://x/orgs/acme/alerts").etag == 'W/"1"'
    writer.save()

    reader = DatabaseETagCache(engine, "github")
    found = reader.get("application/json http://x/orgs/acme/alerts")
    assert (found.etag, found.body, found.headers) == ('W/"1"', "[]", {"link": ""})
    assert DatabaseETagCache(engine, "other").get("application/json http://x/orgs/acme/alerts") \
        is None
    reader.put("application/json http://x/orgs/acme/alerts", Answer('W/"2"', "[1]"))
    reader.save()  # replaced in place
    assert DatabaseETagCache(engine, "github").get(
        "application/json http://x/orgs/acme/alerts").etag == 'W/"2"'


def test_answers_no_run_used_for_30_days_are_dropped(database_url: str) -> None:
    engine = engine_for(database_url)
    now = utcnow()
    with write_scope(engine) as session:
        store_answers(session, "github", [
            {"key": "old", "etag": "a", "body": "", "headers": {}},
            {"key": "used", "etag": "b", "body": "", "headers": {}}], [], now - timedelta(days=40))
    with write_scope(engine) as session:
        store_answers(session, "github", [], ["used"], now)
    with session_scope(engine) as session:
        assert cached_answer(session, "github", "old") is None
        assert cached_answer(session, "github", "used") is not None
