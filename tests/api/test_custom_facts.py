"""Declared custom facts, as a team pushing them meets them: a default for services that
never pushed, a typed push, and a push that asks for the service to be graded at once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import ThreadDispatcher, create_app
from engine.jobs import run_evaluation
from engine.settings import Settings, get_settings, load_settings
from tests.api.conftest import AUTH, T0
from tests.conftest import TOKEN, write_config

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
      expression: custom.on_call
    - name: coverage
      level: Silver
      expression: custom.coverage >= 80.0
"""
CUSTOM_FACTS = {"on_call": {"type": "bool", "default": False}, "coverage": {"type": "double"}}


@pytest.fixture
def declared(database_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("LEVELSET_API_TOKEN", TOKEN)
    (sample / "scorecards" / "operations.yaml").write_text(OPERATIONS)
    config = write_config(sample, database_url, custom_facts=CUSTOM_FACTS)
    monkeypatch.setenv("LEVELSET_CONFIG", str(config))
    get_settings.cache_clear()
    settings = load_settings(config)
    run_evaluation(settings, trigger="cli", now=T0)
    yield settings
    get_settings.cache_clear()


@pytest.fixture
def client(declared: Settings) -> Iterator[TestClient]:
    dispatcher = ThreadDispatcher(declared)
    with TestClient(create_app(declared, dispatcher)) as test_client:
        yield test_client
    dispatcher.shutdown()


def _wait(client: TestClient, url: str) -> dict:
    deadline = time.monotonic() + 20
    run = client.get(url).json()
    while run["status"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        run = client.get(url).json()
    return run


def test_a_fact_never_pushed_has_its_default_or_is_unknown(client: TestClient) -> None:
    card = client.get("/api/v1/services/payments/scorecards/operations").json()
    assert card["level"] is None
    blocking = {rule["name"]: rule for rule in card["to_fix_for_next_level"]}
    assert blocking["on-call"]["status"] == "fail"  # default false: fails, is not unknown
    assert "custom.on_call = false" in blocking["on-call"]["message"]
    rules = {rule["name"]: rule for rule in card["rules"]}
    assert rules["coverage"]["status"] == "unknown"  # no default: no data, not a failure


def test_a_push_with_evaluate_true_shows_in_grades_when_its_run_completes(client: TestClient) -> None:
    body = {"facts": {"on_call": True, "coverage": 91.5}}
    pushed = client.post("/api/v1/services/payments/facts?evaluate=true", json=body, headers=AUTH)
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["facts"] == {"on_call": True, "coverage": 91.5}
    run = pushed.json()["run"]
    assert run["url"] == f"/api/v1/runs/{run['run_id']}"
    finished = _wait(client, run["url"])
    assert finished["status"] == "complete" and finished["service"] == "payments", finished
    card = client.get("/api/v1/services/payments/scorecards/operations").json()
    assert card["level"] == "Silver"


def test_a_push_without_evaluate_waits_for_the_next_run(client: TestClient) -> None:
    pushed = client.post("/api/v1/services/payments/facts", json={"facts": {"on_call": True}},
                         headers=AUTH)
    assert pushed.status_code == 201 and pushed.json()["run"] is None
    assert client.get("/api/v1/services/payments/scorecards/operations").json()["level"] is None


def test_a_push_of_the_wrong_type_for_a_declared_fact_is_refused(client: TestClient) -> None:
    refused = client.post("/api/v1/services/payments/facts", json={"facts": {"coverage": "high"}},
                          headers=AUTH)
    assert refused.status_code == 422
    assert "declared in custom_facts as double" in refused.text
