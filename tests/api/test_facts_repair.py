"""Pushed facts can be removed, and facts stored before pushes were checked never break reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlmodel import Session, col
from typer.testing import CliRunner

from engine.cli import app
from engine.custom_facts import CustomValue
from engine.settings import Settings
from engine.storage import facts as fact_store
from engine.storage.database import engine_for, write_scope
from engine.storage.models import CustomFact, FactOrigin
from tests.api.conftest import AUTH

FACTS = "/api/v1/services/payments/facts"


def custom_rows(settings: Settings) -> int:
    with Session(engine_for(settings.database_url)) as session:
        return session.execute(select(func.count()).where(
            col(CustomFact.service) == "payments")).scalar_one()


def store_poisoned(settings: Settings) -> None:
    """What a push stored before pushes were checked (PostgreSQL refused all but depth)."""
    deep: object = "x"
    for _ in range(300):
        deep = [deep]
    facts: dict[str, object] = {"deep": deep, "fine": 1}
    if settings.database_url.startswith("sqlite"):
        facts |= {"bad": "\ud800", "nan": float("nan"), "inf": float("inf")}
    now = datetime.now(UTC)
    with write_scope(engine_for(settings.database_url)) as session:
        fact_store.append_custom(session, service="payments", changes=[
            CustomValue(key, FactOrigin.PUSH, value, False, now) for key, value in facts.items()])


def test_a_pushed_key_is_deleted_by_an_appended_removal(
    client: TestClient, evaluated: Settings
) -> None:
    client.post(FACTS, json={"facts": {"on_call": True, "tier": "1", "a/b": 2}}, headers=AUTH)
    before = custom_rows(evaluated)
    assert client.delete(f"{FACTS}/tier").status_code == 401
    removed = client.delete(f"{FACTS}/tier", headers=AUTH)
    assert removed.status_code == 200, removed.text
    assert removed.json()["facts"] == {"on_call": True, "a/b": 2}
    assert client.delete(f"{FACTS}/a/b", headers=AUTH).json()["facts"] == {"on_call": True}
    assert custom_rows(evaluated) == before + 2  # appended; the old ones are kept
    missing = client.delete(f"{FACTS}/tier", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json() == {"detail": 'service "payments" has no pushed fact "tier"'}
    unknown = client.delete("/api/v1/services/nope/facts/tier", headers=AUTH)
    assert unknown.status_code == 404 and "unknown service" in unknown.json()["detail"]


def test_facts_stored_unchecked_are_read_repaired_and_can_be_deleted(
    client: TestClient, evaluated: Settings
) -> None:
    store_poisoned(evaluated)
    response = client.get(FACTS)
    assert response.status_code == 200, response.text
    [custom] = [s for s in response.json() if s["source"] == "custom"]
    invalid = custom["invalid"]
    assert invalid.pop("deep" + "[0]" * 31) == "nested deeper than 32 levels"
    if evaluated.database_url.startswith("sqlite"):
        assert custom["facts"]["bad"] == "\ufffd" and custom["facts"]["nan"] is None
        assert invalid == {"bad": "unpaired surrogate \\ud800 is not Unicode text",
                           "nan": "NaN is not a finite number",
                           "inf": "Infinity is not a finite number"}
    # Pushing still works, and each bad key is removed by the name the read shows.
    assert client.post(FACTS, json={"facts": {"new": 1}}, headers=AUTH).status_code == 201
    for key in custom["facts"]:
        if key not in ("fine", "new"):
            assert client.delete(f"{FACTS}/{key}", headers=AUTH).status_code == 200, key
    [custom] = [s for s in client.get(FACTS).json() if s["source"] == "custom"]
    assert custom["facts"] == {"fine": 1, "new": 1} and custom["invalid"] == {}


def test_levelset_facts_shows_repaired_values_without_a_traceback(
    evaluated: Settings, sample: Path
) -> None:
    store_poisoned(evaluated)
    config = str(sample / "levelset.yaml")
    for output in ("table", "json"):
        result = CliRunner().invoke(app, ["facts", "payments", "--config", config,
                                          "--format", output])
        assert result.exit_code == 0, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
        assert "warning: custom.deep" in result.output and "nested deeper than 32" in result.output
