"""Pushed custom facts as a served instance keeps them, on SQLite and PostgreSQL: they outlive
runs that read a facts file, the more recent of file and push wins, concurrent pushes all
land on one connection each, storage grows with what changed, and the limits are named."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select
from sqlmodel import Session, col
from typer.testing import CliRunner

import engine.custom_facts as custom_facts
from engine.api.app import ThreadDispatcher, create_app
from engine.cli import app
from engine.jobs import run_evaluation
from engine.scheduling.jobs import evaluate as scheduled_evaluation
from engine.settings import Settings, get_settings, load_settings
from engine.storage.database import engine_for
from engine.storage.models import CustomFact
from tests.api.conftest import AUTH, T0
from tests.conftest import TOKEN, write_config

FACTS = "/api/v1/services/payments/facts"
OPERATIONS = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata:
  name: operations
spec:
  levels: [Bronze, Silver]
  rules:
    - name: on-call
      level: Bronze
      expression: has(custom.on_call) && custom.on_call
    - name: coverage
      level: Silver
      expression: has(custom.coverage) && custom.coverage + 1.0 >= 80.0
"""
DECLARED = {"on_call": {"type": "bool", "default": False}, "coverage": {"type": "double"}}


def project(sample: Path, database_url: str, monkeypatch: pytest.MonkeyPatch,
            **extra: Any) -> Settings:
    monkeypatch.setenv("LEVELSET_API_TOKEN", TOKEN)
    (sample / "scorecards" / "operations.yaml").write_text(OPERATIONS)
    config = write_config(sample, database_url, **extra)
    monkeypatch.setenv("LEVELSET_CONFIG", str(config))
    get_settings.cache_clear()
    return load_settings(config)


def write_facts(sample: Path, custom: dict[str, Any], modified: datetime) -> None:
    path = sample / "facts.json"
    facts = json.loads(path.read_text())
    facts["payments"]["custom"] = custom
    path.write_text(json.dumps(facts))
    os.utime(path, (modified.timestamp(), modified.timestamp()))


@pytest.fixture
def served(database_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        tuple[Settings, TestClient]]:
    settings = project(sample, database_url, monkeypatch)
    run_evaluation(settings, trigger="cli", now=T0)
    dispatcher = ThreadDispatcher(settings)
    with TestClient(create_app(settings, dispatcher)) as client:
        yield settings, client
    dispatcher.shutdown()
    get_settings.cache_clear()


def custom(client: TestClient) -> dict[str, Any]:
    [shown] = [s for s in client.get(FACTS).json() if s["source"] == "custom"]
    return shown


def rows(settings: Settings) -> int:
    with Session(engine_for(settings.database_url)) as session:
        return session.execute(select(func.count()).where(
            col(CustomFact.service) == "payments")).scalar_one()


def level(client: TestClient) -> str | None:
    return client.get("/api/v1/services/payments/scorecards/operations").json()["level"]


def test_a_push_outlives_scheduled_and_later_runs_that_read_the_facts_file(
    database_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    past = datetime.now(UTC) - timedelta(days=3)
    write_facts(sample, {"on_call": True, "coverage": 50.0}, past)
    settings = project(sample, database_url, monkeypatch)
    run_evaluation(settings, trigger="cli")
    with TestClient(create_app(settings, ThreadDispatcher(settings))) as client:
        assert level(client) == "Bronze"
        pushed = client.post(FACTS, json={"facts": {"coverage": 91.5}}, headers=AUTH)
        assert pushed.status_code == 201, pushed.text
        scheduled_evaluation(settings)
        run_evaluation(settings, trigger="cli")
        shown = custom(client)
        assert shown["facts"] == {"coverage": 91.5, "on_call": True}
        origins = {key: (o["origin"], o["at"]) for key, o in shown["origins"].items()}
        assert origins["coverage"][0] == "push" and origins["on_call"][0] == "file"
        # The file's value dates from when the file changed, not from the runs that read it.
        assert abs(datetime.fromisoformat(origins["on_call"][1]) - past) < timedelta(seconds=1)
        assert level(client) == "Silver"

        # The file changes the key after the push: the file's value is the more recent.
        write_facts(sample, {"on_call": True, "coverage": 60.0}, datetime.now(UTC))
        run_evaluation(settings, trigger="cli")
        assert custom(client)["facts"]["coverage"] == 60.0
        assert custom(client)["origins"]["coverage"]["origin"] == "file"
        assert level(client) == "Bronze"

        # A later push wins again; a change of another key in the file leaves it alone.
        time.sleep(0.01)
        client.post(FACTS, json={"facts": {"coverage": 95.0}}, headers=AUTH)
        write_facts(sample, {"on_call": False, "coverage": 60.0}, datetime.now(UTC))
        run_evaluation(settings, trigger="cli")
        assert custom(client)["facts"] == {"coverage": 95.0, "on_call": False}
        result = CliRunner().invoke(app, ["facts", "payments", "--config",
                                          str(sample / "levelset.yaml")])
        assert result.exit_code == 0, result.output
        lines = {line.split()[0]: line for line in result.output.splitlines()
                 if line.split()[:1] in (["coverage"], ["on_call"])}
        assert "95.0" in lines["coverage"] and "push 20" in lines["coverage"]
        assert "false" in lines["on_call"] and "file 20" in lines["on_call"]


def test_a_changed_push_is_graded_by_the_next_incremental_run(
    served: tuple[Settings, TestClient]
) -> None:
    settings, client = served
    unchanged = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=1))
    client.post(FACTS, json={"facts": {"on_call": True, "coverage": 85.0}}, headers=AUTH)
    graded = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=2))
    assert graded.evaluated > unchanged.evaluated
    assert level(client) == "Silver"
    client.post(FACTS, json={"facts": {"coverage": 10.0}}, headers=AUTH)
    run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=3))
    assert level(client) == "Bronze"


def test_concurrent_pushes_all_land_and_reads_stay_fast(
    served: tuple[Settings, TestClient]
) -> None:
    settings, client = served

    def push(index: int) -> int:
        return client.post(FACTS, json={"facts": {f"k{index}": index}},
                           headers=AUTH).status_code

    def read() -> float:
        started = time.monotonic()
        assert client.get("/api/v1/services").status_code == 200
        return time.monotonic() - started

    with ThreadPoolExecutor(max_workers=24) as pool:
        pushes = [pool.submit(push, i) for i in range(20)]
        reads = [pool.submit(read) for _ in range(4)]
        assert [p.result(timeout=60) for p in pushes] == [201] * 20
        assert max(r.result(timeout=60) for r in reads) < 5.0
    assert custom(client)["facts"] == {f"k{i}": i for i in range(20)}
    assert rows(settings) == 20


def test_concurrent_merges_into_one_object_keep_every_member(
    served: tuple[Settings, TestClient]
) -> None:
    _, client = served
    with ThreadPoolExecutor(max_workers=10) as pool:
        codes = list(pool.map(lambda i: client.post(
            FACTS, json={"facts": {"deploy": {f"env{i}": i}}}, headers=AUTH).status_code,
            range(10)))
    assert codes == [201] * 10
    assert custom(client)["facts"]["deploy"] == {f"env{i}": i for i in range(10)}


def test_a_push_holds_one_database_connection_at_a_time(
    served: tuple[Settings, TestClient]
) -> None:
    settings, client = served
    engine = engine_for(settings.database_url)
    held: dict[int, int] = {}
    most = {"held": 0}

    def checkout(*_: Any) -> None:
        me = threading.get_ident()
        held[me] = held.get(me, 0) + 1
        most["held"] = max(most["held"], held[me])

    def checkin(*_: Any) -> None:
        me = threading.get_ident()
        held[me] = held.get(me, 0) - 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        for path in (FACTS, f"{FACTS}/k"):
            most["held"] = 0
            answer = (client.post(path, json={"facts": {"k": 1}}, headers=AUTH)
                      if path == FACTS else client.delete(path, headers=AUTH))
            assert answer.status_code in (200, 201), answer.text
            assert most["held"] == 1, path
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)


def test_storage_grows_with_what_a_push_changed(served: tuple[Settings, TestClient]) -> None:
    settings, client = served
    many = {f"k{i}": {"value": i, "labels": ["a", "b"]} for i in range(1000)}
    assert client.post(FACTS, json={"facts": many}, headers=AUTH).status_code == 201
    assert rows(settings) == 1000
    for i in range(10):
        assert client.post(FACTS, json={"facts": {f"k{i}": {"value": -i - 1}}},
                           headers=AUTH).status_code == 201
    assert rows(settings) == 1010
    assert client.post(FACTS, json={"facts": {"k5": {"value": -6}}}, headers=AUTH).status_code == 201
    assert rows(settings) == 1010  # the same value again: nothing new to keep
    assert custom(client)["facts"]["k5"] == {"value": -6, "labels": ["a", "b"]}


def test_nested_values_merge_and_null_removes(served: tuple[Settings, TestClient]) -> None:
    _, client = served
    client.post(FACTS, json={"facts": {"deploy": {"freq": 3, "env": {"prod": True, "dev": True}},
                                       "regions": ["eu", "us"], "tier": "1"}}, headers=AUTH)
    answer = client.post(FACTS, json={"facts": {"deploy": {"env": {"dev": None}, "lead": 2},
                                                "regions": ["eu"], "tier": None}}, headers=AUTH)
    assert answer.json()["facts"] == {"deploy": {"freq": 3, "env": {"prod": True}, "lead": 2},
                                      "regions": ["eu"]}


def test_pushes_over_a_limit_are_refused_naming_it(
    served: tuple[Settings, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = served
    too_many = client.post(FACTS, json={"facts": {f"k{i}": i for i in range(1001)}},
                           headers=AUTH)
    assert too_many.status_code == 422
    assert too_many.json()["detail"] == "facts: a push holds at most 1,000 keys, got 1,001; push in parts"
    monkeypatch.setattr(custom_facts, "MAX_PUSH_BYTES", 100)
    big = client.post(FACTS, json={"facts": {"blob": "x" * 200}}, headers=AUTH)
    assert big.status_code == 413 and "at most 100 per push" in big.json()["detail"]
    monkeypatch.setattr(custom_facts, "MAX_SERVICE_KEYS", 3)
    assert client.post(FACTS, json={"facts": {"a": 1, "b": 2, "c": 3}}, headers=AUTH).status_code == 201
    full = client.post(FACTS, json={"facts": {"d": 4}}, headers=AUTH)
    assert full.status_code == 422
    assert full.json()["detail"] == ('facts: service "payments" would hold 4 custom facts; at '
                                     "most 3 per service")
    monkeypatch.setattr(custom_facts, "MAX_SERVICE_BYTES", 10)
    heavy = client.post(FACTS, json={"facts": {"a": "longer than ten"}}, headers=AUTH)
    assert heavy.status_code == 413 and "at most 10 per service" in heavy.json()["detail"]
    assert custom(client)["facts"] == {"a": 1, "b": 2, "c": 3}


def test_declared_facts_are_converted_or_refused_at_the_door(
    database_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = project(sample, database_url, monkeypatch, custom_facts=DECLARED)
    run_evaluation(settings, trigger="cli", now=T0)
    with TestClient(create_app(settings, ThreadDispatcher(settings))) as client:
        pushed = client.post(FACTS, json={"facts": {"coverage": 41, "on_call": True}},
                             headers=AUTH)
        assert pushed.status_code == 201, pushed.text
        assert '"coverage":41.0' in pushed.text
        run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=1))
        card = client.get("/api/v1/services/payments/scorecards/operations").json()
        rules = {rule["name"]: rule["status"] for rule in card["rules"]}
        assert rules == {"on-call": "pass", "coverage": "fail"}, card  # 42.0 < 80.0: not an error
        typo = client.post(FACTS, json={"facts": {"coverge": 50.0}}, headers=AUTH)
        assert typo.status_code == 422
        assert typo.json()["detail"] == ['facts.coverge: not declared in custom_facts (did you '
                                         'mean "coverage"?); declared: coverage, on_call']
        wrong = client.post(FACTS, json={"facts": {"coverage": "high"}}, headers=AUTH)
        assert wrong.status_code == 422
        assert wrong.json()["detail"] == ["facts.coverage: declared in custom_facts as double, "
                                          "got str 'high'"]
        assert custom(client)["facts"] == {"coverage": 41.0, "on_call": True}
