"""Level-drop alerts: a message per regression of a stored run, saying what blocks now and
how to fix it, with a key that is the same however often the same run is reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.jobs import run_evaluation
from engine.reports.blocks import violations
from engine.reports.drops import drop_alerts
from engine.settings import ReportSettings, Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.history.diff import LevelChanged
from tests.reports.week import github, set_facts

T0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
REPORT = ReportSettings.model_validate({
    "link_base_url": "https://levelset.example.com",
    "slack": {"teams": {"team-a": "#team-a"}}})


def test_each_regression_is_one_message_with_what_blocks_and_how_to_fix_it(
    settings: Settings, sample: Path
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    set_facts(sample, "payments", "prometheus", {"availability_30d": 0.99})
    set_facts(sample, "payments", "github", github(archived=True))
    set_facts(sample, "search", "github", github(has_security_policy=False, has_readme=False))
    outcome = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    with session_scope(engine_for(settings.database_url)) as session:
        alerts = drop_alerts(session, events=outcome.level_changes, settings=REPORT)
        again = drop_alerts(session, events=outcome.level_changes, settings=REPORT)
    run = outcome.run_id
    assert [key for key, _ in alerts] == [
        f"level-drop:payments:readiness:{run}:Silver",
        f"level-drop:payments:security:{run}:Basic",
        f"level-drop:search:readiness:{run}:none",
    ]
    assert [key for key, _ in again] == [key for key, _ in alerts]
    assert [m.route for _, m in alerts] == ["team:team-a", "team:team-a", "summary"]
    readiness = alerts[0][1]
    assert violations(readiness.blocks) == []
    assert readiness.text == "payments dropped from Gold to Silver on Production readiness"
    assert readiness.blocks[0]["text"]["text"] == "payments dropped to Silver on Production readiness"
    text = json.dumps(readiness.blocks)
    assert "*<https://levelset.example.com/api/v1/services/payments/scorecards/readiness|payments>*" \
           " dropped from *Gold* to *Silver*" in text
    assert f"run {run}" in text and "Mon 5 Jan 2026 12:00 (UTC)" in text
    assert "*What blocks Gold now*" in text
    assert ("\u2022 *availability* (Gold) fails: expected prometheus.availability_30d &gt;= 0.999; "
            "got prometheus.availability_30d = 0.99 \u00b7 _Fix:_ Improve availability to 99.9% "
            "over 30 days.") in json.loads(text)[3]["text"]["text"]
    search = json.dumps(alerts[2][1].blocks)
    assert "*What blocks Bronze now*" in search and "*Has a README* (Bronze) fails" in search
    assert "Add a README.md at the root of the repository." in search


def test_promotions_first_grades_and_unchanged_runs_alert_nobody(
    settings: Settings, sample: Path
) -> None:
    first = run_evaluation(settings, trigger="cli", now=T0)
    set_facts(sample, "search", "github", github())
    promoted = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=4))
    unchanged = run_evaluation(settings, trigger="cli", now=T0 + timedelta(hours=8))
    assert any(isinstance(e, LevelChanged) and e.first for e in first.events)
    with session_scope(engine_for(settings.database_url)) as session:
        for outcome in (first, promoted, unchanged):
            events = [e for e in outcome.events if isinstance(e, LevelChanged)]
            assert drop_alerts(session, events=events, settings=REPORT) == []
