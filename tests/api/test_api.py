"""The REST API against a stored evaluation, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.settings import Settings, load_settings
from tests.api.conftest import AUTH
from tests.conftest import READ_TOKEN, write_config


def test_services_are_listed_filtered_and_paginated(client: TestClient) -> None:
    body = client.get("/api/v1/services").json()
    assert body["total"] == 3
    assert [s["name"] for s in body["items"]] == ["ledger", "payments", "search"]
    page = client.get("/api/v1/services", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and [s["name"] for s in page["items"]] == ["payments"]
    team_a = client.get("/api/v1/services", params={"owner": "team-a"}).json()
    assert [s["name"] for s in team_a["items"]] == ["ledger", "payments"]
    gold = client.get("/api/v1/services", params={"scorecard": "readiness", "level": "gold"}).json()
    assert [s["name"] for s in gold["items"]] == ["payments"]
    none = client.get("/api/v1/services", params={"scorecard": "readiness", "level": "none"}).json()
    assert [s["name"] for s in none["items"]] == ["ledger"]
    assert client.get("/api/v1/services", params={"level": "Gold"}).status_code == 422
    missing = client.get("/api/v1/services", params={"scorecard": "readiness", "level": "Platinum"})
    assert missing.status_code == 404 and "Platinum" in missing.json()["detail"]


def test_service_shows_current_level_on_every_scorecard(client: TestClient) -> None:
    body = client.get("/api/v1/services/payments").json()
    assert [(s["scorecard"], s["level"], s["rank"]) for s in body["scorecards"]] == [
        ("readiness", "Gold", 3), ("security", "Hardened", 2)]
    assert body["scorecards"][0]["since"].startswith("2026-01-01T00:00:00")
    assert client.get("/api/v1/services/unknown").status_code == 404


def test_service_on_scorecard_says_what_to_fix_next(client: TestClient) -> None:
    body = client.get("/api/v1/services/search/scorecards/readiness").json()
    assert body["level"] == "Bronze" and body["next_level"] == "Silver"
    codeowners = next(r for r in body["rules"] if r["name"] == "has-codeowners")
    assert codeowners["status"] == "fail"
    assert codeowners["evidence"] == {"github.has_codeowners": False}
    assert [r["name"] for r in body["to_fix_for_next_level"]] == ["has-codeowners"]
    assert body["to_fix_for_next_level"][0]["remediation"] == "Add a CODEOWNERS file."
    assert client.get("/api/v1/services/ledger/scorecards/security").status_code == 404


def test_scorecards_list_detail_and_leaderboard(client: TestClient) -> None:
    cards = client.get("/api/v1/scorecards").json()
    assert [(c["name"], c["services"]) for c in cards] == [("readiness", 3), ("security", 2)]
    detail = client.get("/api/v1/scorecards/readiness").json()
    assert detail["distribution"] == {"Bronze": 1, "Silver": 0, "Gold": 1, "none": 1}
    assert [r["name"] for r in detail["definition"]][:1] == ["has-readme"]
    board = client.get("/api/v1/scorecards/readiness/leaderboard").json()
    assert [r["service"] for r in board["items"]] == ["payments", "search", "ledger"]
    by_name = client.get("/api/v1/scorecards/readiness/leaderboard",
                         params={"sort": "name", "order": "asc", "limit": 2}).json()
    assert [r["service"] for r in by_name["items"]] == ["ledger", "payments"]
    assert by_name["total"] == 3
    assert client.get("/api/v1/scorecards/readiness/leaderboard",
                      params={"sort": "bogus"}).status_code == 422
    assert client.get("/api/v1/scorecards/nope").status_code == 404


def test_history_and_changes(client: TestClient, evaluated: Settings, sample: Path) -> None:
    facts = json.loads((sample / "facts.json").read_text())
    facts["search"]["github"]["has_codeowners"] = True
    (sample / "facts.json").write_text(json.dumps(facts))
    from datetime import timedelta

    from engine.jobs import run_evaluation
    from tests.api.conftest import T0
    run_evaluation(evaluated, trigger="cli", now=T0 + timedelta(hours=8))
    points = client.get("/api/v1/services/search/scorecards/readiness/history",
                        params={"since": "2026-01-01T00:00:00", "until": "2026-01-02"}).json()
    assert [p["level"] for p in points] == ["Bronze", "Silver"]
    as_of = client.get("/api/v1/services/search/scorecards/readiness/as-of",
                       params={"at": "2026-01-01T05:00:00Z"}).json()
    assert as_of["level"] == "Bronze"
    early = client.get("/api/v1/services/search/scorecards/readiness/as-of",
                       params={"at": "2025-01-01T00:00:00Z"})
    assert early.status_code == 404
    changes = client.get("/api/v1/changes", params={"scorecard": "readiness"}).json()
    assert [(c["service"], c["previous"], c["level"], c["direction"])
            for c in changes["items"]] == [
        ("search", "Bronze", "Silver", "promotion")]


def test_facts_read_and_custom_facts_pushed_with_token(client: TestClient) -> None:
    facts = client.get("/api/v1/services/payments/facts").json()
    assert {f["source"] for f in facts} == {"github", "prometheus"}
    assert all(f["age_seconds"] >= 0 for f in facts)
    body = {"facts": {"on_call": True}}
    assert client.post("/api/v1/services/payments/facts", json=body).status_code == 401
    wrong = client.post("/api/v1/services/payments/facts", json=body,
                        headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    created = client.post("/api/v1/services/payments/facts", json=body, headers=AUTH)
    assert created.status_code == 201 and created.json()["facts"] == {"on_call": True}
    assert client.post("/api/v1/services/nope/facts", json=body, headers=AUTH).status_code == 404
    nul = client.post("/api/v1/services/payments/facts", json={"facts": {"a": "x\u0000"}},
                      headers=AUTH)
    assert nul.status_code == 422


def test_trigger_run_returns_at_once_and_completes(client: TestClient) -> None:
    accepted = client.post("/api/v1/runs", json={"service": "payments"}, headers=AUTH)
    assert accepted.status_code == 202
    run_id = accepted.json()["run_id"]
    assert accepted.json()["url"] == f"/api/v1/runs/{run_id}"
    deadline = time.monotonic() + 20
    status = accepted.json()["status"]
    assert status == "queued"
    while status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.05)
        status = client.get(f"/api/v1/runs/{run_id}").json()["status"]
    run = client.get(f"/api/v1/runs/{run_id}").json()
    assert status == "complete", run
    assert run["service"] == "payments" and run["results"] == 2
    assert client.post("/api/v1/runs", json={"service": "nope"}, headers=AUTH).status_code == 404
    assert client.post("/api/v1/runs", headers=AUTH).status_code == 202
    assert client.get("/api/v1/runs/999999").status_code == 404
    assert client.get("/api/v1/runs").json()["total"] >= 4


def test_badges(client: TestClient) -> None:
    svg = client.get("/api/v1/badges/payments/readiness/badge.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "Gold (60%)" in svg.text
    shields = client.get("/api/v1/badges/search/readiness/shields.json").json()
    assert shields == {"schemaVersion": 1, "label": "readiness", "message": "Bronze (20%)",
                       "color": "yellow"}
    ledger = client.get("/api/v1/badges/ledger/readiness/shields.json").json()
    assert ledger["color"] == "lightgrey" and ledger["message"] == "no level (0%)"


def test_health_and_metrics(client: TestClient) -> None:
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and health["last_run"]["status"] == "complete"
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'levelset_service_level{scorecard="readiness",service="payments"} 3.0' in metrics.text
    assert 'levelset_service_score{scorecard="readiness",service="search"} 20.0' in metrics.text


def test_reads_closed_when_read_token_required(
    evaluated: Settings, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVELSET_READ_TOKEN", READ_TOKEN)
    config = write_config(sample, evaluated.database_url, api={"read_token_required": True})
    settings = load_settings(config)
    with TestClient(create_app(settings)) as closed:
        assert closed.get("/api/v1/services").status_code == 401
        assert closed.get("/metrics").status_code == 401
        assert closed.get("/healthz").status_code == 200
        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert closed.get("/api/v1/services", headers=read).status_code == 200
        assert closed.get("/api/v1/services", headers=AUTH).status_code == 200
        assert closed.post("/api/v1/runs", headers=read).status_code == 401


def test_writes_refused_without_a_configured_token(
    evaluated: Settings, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEVELSET_API_TOKEN")
    settings = load_settings(write_config(sample, evaluated.database_url))
    with TestClient(create_app(settings)) as app:
        response = app.post("/api/v1/runs", headers=AUTH)
        assert response.status_code == 403 and "LEVELSET_API_TOKEN" in response.json()["detail"]


def test_bad_parameters_are_422_with_a_message(client: TestClient) -> None:
    for url, params in [
        ("/api/v1/services", {"limit": 0}),
        ("/api/v1/services", {"offset": -1}),
        ("/api/v1/services", {"limit": "ten"}),
        ("/api/v1/services/payments/scorecards/readiness/history", {"since": "yesterday"}),
        ("/api/v1/runs/0", {}),
        ("/api/v1/runs/99999999999999999999", {}),
    ]:
        response = client.get(url, params=params)
        assert response.status_code == 422, (url, params, response.text)
        assert response.json()["detail"]
