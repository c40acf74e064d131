"""Statuses and triggers are enums in the models and the API's schema, while the stored
columns and the JSON answered keep the same strings."""

from __future__ import annotations

import json
from typing import get_type_hints

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from engine.evaluation import RuleStatus
from engine.gate import GatedRule, GateVerdict, UnknownPolicy
from engine.settings import Settings
from engine.storage.database import engine_for
from engine.storage.models import EvaluationRun, RuleOutcome, RunStatus, RunTrigger
from engine.storage.public import EvaluationRunPublic


def test_runs_answer_their_trigger_and_status_as_the_stored_strings(
    client: TestClient, evaluated: Settings,
) -> None:
    with Session(engine_for(evaluated.database_url)) as session:
        stored = session.execute(text("SELECT trigger, status FROM evaluation_run")).all()
        outcomes = {row[0] for row in session.execute(text("SELECT status FROM rule_outcome"))}
    assert stored == [("cli", "complete")] * 2
    assert outcomes and outcomes <= {status.value for status in RuleStatus}
    listed = client.get("/api/v1/runs").json()["items"]
    assert [(run["trigger"], run["status"]) for run in listed] == [("cli", "complete")] * 2


def test_the_schema_names_every_trigger_and_status(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["RunTrigger"]["enum"] == ["api", "schedule", "celery", "cli", "gate"]
    assert schemas["RunStatus"]["enum"] == [
        "queued", "running", "complete", "failed", "superseded"]
    run = schemas["EvaluationRunPublic"]["properties"]
    assert run["trigger"] == {"$ref": "#/components/schemas/RunTrigger"}


def test_models_type_statuses_and_triggers_as_enums() -> None:
    assert get_type_hints(EvaluationRun)["trigger"] is RunTrigger
    assert get_type_hints(EvaluationRunPublic)["status"] is RunStatus
    assert get_type_hints(RuleOutcome)["status"] is RuleStatus


def test_the_gates_unknown_policy_is_an_enum_shown_as_its_word() -> None:
    rule = GatedRule("has-readme", "Has a README", "Bronze", RuleStatus.UNKNOWN, "no data", None)
    verdict = GateVerdict.build(service="payments", scorecard="readiness", required="bronze",
                                current=None, score=0.0, levels=["Bronze"], rules=[rule],
                                unknown=UnknownPolicy.WARN)
    assert [policy.value for policy in UnknownPolicy] == ["block", "warn", "pass"]
    assert verdict.passed and json.loads(json.dumps(verdict.to_dict()))["unknown"] == "warn"
