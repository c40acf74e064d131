"""The custom fact store on both databases: the migration builds it as the model says and
carries each service's last custom snapshot over key by key; rows are only appended; values
come back as written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import insert, select
from sqlmodel import Session

from engine.custom_facts import CustomValue, resolve
from engine.storage import facts as fact_store
from engine.storage.database import alembic_config, engine_for, migrate, table_of, write_scope
from engine.storage.models import CustomFact, FactOrigin, FactSnapshot

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_migration_0006_creates_the_custom_fact_table_as_the_model_describes(
    database_url: str,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine_for(database_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert [d for d in differences if "custom_fact" in repr(d)] == []


def test_migration_0006_carries_the_last_custom_snapshot_over_as_pushed_values(
    database_url: str,
) -> None:
    engine = engine_for(database_url)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0005")
    snapshots = table_of(FactSnapshot)
    old = {"coverage": 50.0, "tier": "1"}
    last = {"coverage": 91.5, "deploy": {"freq": 3}}
    if engine.dialect.name == "sqlite":  # PostgreSQL never held one
        last["bad\udc00"] = 1
    with engine.begin() as connection:
        for index, (facts, status) in enumerate([(old, "ok"), (last, "ok")]):
            connection.execute(insert(snapshots).values(
                service="payments", source="custom", status=status, facts=facts,
                digest=str(index), collected_at=T0 + timedelta(hours=index),
                confirmed_at=T0 + timedelta(hours=index)))
        connection.execute(insert(snapshots).values(
            service="search", source="github", status="ok", facts={"has_readme": True},
            digest="g", collected_at=T0, confirmed_at=T0))
    migrate(engine)
    with Session(engine) as session:
        entries = fact_store.custom_entries(session)
    assert set(entries) == {"payments"}
    resolved = resolve(entries["payments"])
    expected = {"coverage": 91.5, "deploy": {"freq": 3}}
    if engine.dialect.name == "sqlite":
        expected["bad\ufffd"] = 1
    assert {key: e.value for key, e in resolved.items()} == expected
    assert {(e.origin, e.at) for e in resolved.values()} == {(FactOrigin.PUSH, T0 + timedelta(hours=1))}


def test_values_come_back_as_written_and_rows_are_only_appended(database_url: str) -> None:
    engine = engine_for(database_url)
    written = {"double": 41.0, "int": 41, "bool": True, "text": "41", "null": None,
               "list": [1.0, 2], "object": {"a": {"b": 0.0}}}
    with write_scope(engine) as session:
        fact_store.append_custom(session, service="payments", changes=[
            CustomValue(key, FactOrigin.PUSH, value, False, T0) for key, value in written.items()])
    table = table_of(CustomFact)
    with Session(engine) as session:
        before = session.execute(select(table).order_by(table.c.id)).all()
        read = {e.key: e.value for e in fact_store.custom_entries(session)["payments"]}
    assert read == written
    assert type(read["double"]) is float and type(read["int"]) is int
    assert type(read["list"][0]) is float and type(read["object"]["a"]["b"]) is float
    with write_scope(engine) as session:
        fact_store.append_custom(session, service="payments", changes=[
            CustomValue("double", FactOrigin.PUSH, None, True, T0 + timedelta(hours=1))])
    with Session(engine) as session:
        after = session.execute(select(table).order_by(table.c.id)).all()
        entries = fact_store.custom_entries(session)["payments"]
    assert after[:len(before)] == before and len(after) == len(before) + 1
    assert "double" not in resolve(entries)


def test_custom_states_change_with_any_change_of_a_service(database_url: str) -> None:
    engine = engine_for(database_url)
    with write_scope(engine) as session:
        fact_store.append_custom(session, service="a", changes=[
            CustomValue("x", FactOrigin.FILE, 1, False, T0)])
        fact_store.append_custom(session, service="b", changes=[
            CustomValue("x", FactOrigin.PUSH, 1, False, T0)])
    with Session(engine) as session:
        first = fact_store.custom_states(session)
    with write_scope(engine) as session:
        fact_store.append_custom(session, service="a", changes=[
            CustomValue("x", FactOrigin.PUSH, 2, False, T0)])
    with Session(engine) as session:
        second = fact_store.custom_states(session)
    assert second["a"] != first["a"] and second["b"] == first["b"]



def test_retention_drops_replaced_values_and_keeps_what_each_origin_holds(
    database_url: str,
) -> None:
    from engine.storage.history.retention import prune

    engine = engine_for(database_url)
    with write_scope(engine) as session:
        for day, value in enumerate([1, 2, 3]):
            fact_store.append_custom(session, service="payments", changes=[
                CustomValue("coverage", FactOrigin.PUSH, value, False, T0 + timedelta(days=day)),
                CustomValue("coverage", FactOrigin.FILE, -value, False, T0 + timedelta(days=day))])
    with write_scope(engine) as session:
        removed = prune(session, before=T0 + timedelta(days=1, hours=12))
    assert removed["custom_fact"] == 2  # day 0 of each origin; day 1 was replaced on day 2
    with Session(engine) as session:
        entries = fact_store.custom_entries(session)["payments"]
        left = session.execute(select(table_of(CustomFact).c.value)).scalars().all()
    assert sorted(left) == [-3, -2, 2, 3]
    assert resolve(entries)["coverage"].value == 3
