"""One job policy: every trigger of a run (the API, the embedded scheduler, a Celery worker, the
CLI) stores the run and notifies its level drops the same way; both schedulers fail a job the
same way and retry the weekly report by the same rule."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from engine.api.app import ThreadDispatcher, create_app
from engine.cli import app
from engine.jobs import run_evaluation
from engine.notify.delivery import ChannelDelivery, Outcome
from engine.notify.jobs import REPORT_RETRIES, REPORT_RETRY_DELAY, DeliveryReport, report_retry
from engine.scheduling import jobs
from engine.scheduling.embedded import SCHEDULED
from engine.scheduling.schedule import Job
from engine.settings import Settings, get_settings, load_settings
from engine.storage import runs as run_store
from engine.storage.database import engine_for
from engine.storage.models import DeliveryKind, RunTrigger
from tests.conftest import TOKEN, write_config
from tests.notify.conftest import Configure, FakeDropAlerts
from tests.realparts.slack import SlackStandIn

TEAMS = {"team-a": "#payments-eng"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def break_payments_and_search(sample: Path) -> None:
    facts = json.loads((sample / "facts.json").read_text())
    facts["payments"]["github"]["has_codeowners"] = False
    facts["search"]["github"]["has_readme"] = False
    (sample / "facts.json").write_text(json.dumps(facts))


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def eager_celery() -> Iterator[None]:
    """Celery's tasks run in this process, as a worker would run them (no broker needed)."""
    from engine.scheduling.celery_app import app as celery

    before = celery.conf.task_always_eager
    celery.conf.task_always_eager = True
    yield
    celery.conf.task_always_eager = before


def through_the_api(settings: Settings) -> None:
    dispatcher = ThreadDispatcher(settings)
    try:
        with TestClient(create_app(settings, dispatcher)) as client:
            assert client.post("/api/v1/runs", headers=AUTH).status_code == 202
        dispatcher.executor.submit(lambda: None).result(timeout=30)  # the run has ended
    finally:
        dispatcher.shutdown()


def through_the_embedded_scheduler(settings: Settings) -> None:
    SCHEDULED[Job.evaluate](settings)


def through_celery(settings: Settings) -> None:
    from engine.scheduling.celery_app import evaluate

    assert evaluate.apply().successful()


def through_the_cli(settings: Settings) -> None:
    import os

    result = CliRunner().invoke(app, ["evaluate", "--config", os.environ["LEVELSET_CONFIG"],
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "level-drop notification: #payments-eng: sent" in result.stderr


def through_the_gate(settings: Settings) -> None:
    """A gate asking for payments' result after the scorecard changed: payments is graded
    again (only payments) before the gate answers."""
    with (settings.scorecards / "readiness.yaml").open("a") as scorecard:
        scorecard.write("# a new version of the file\n")
    with TestClient(create_app(settings)) as client:
        answer = client.get("/api/v1/services/payments/scorecards/readiness/gate")
    assert answer.status_code == 200, answer.text


TRIGGERS = {RunTrigger.API: through_the_api, RunTrigger.SCHEDULE: through_the_embedded_scheduler,
            RunTrigger.CELERY: through_celery, RunTrigger.CLI: through_the_cli,
            RunTrigger.GATE: through_the_gate}


@sqlite_only
@pytest.mark.parametrize("trigger", list(TRIGGERS), ids=str)
def test_every_trigger_stores_the_run_then_notifies_its_drops_once(
    trigger: RunTrigger, configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts,
    sample: Path, monkeypatch: pytest.MonkeyPatch, eager_celery: None,
) -> None:
    monkeypatch.setenv("LEVELSET_API_TOKEN", TOKEN)
    settings = configure("bot", teams=TEAMS, level_drops=True)
    first = run_evaluation(settings, trigger=RunTrigger.CLI)  # first grades are not drops
    break_payments_and_search(sample)

    TRIGGERS[trigger](settings)
    expected = [("payments", "Gold", "Bronze"), ("search", "Bronze", None)]
    channels = ["#payments-eng", "#platform-standards"]
    if trigger == RunTrigger.GATE:  # the gate grades only the service it asks about
        expected, channels = expected[:1], channels[:1]
    wait_for(lambda: len(slack.posts) == len(channels))
    assert [(event.service, event.before, event.after) for event in drops.calls[0]] == expected
    assert len(drops.calls) == 1 and slack.channels_posted() == channels
    with Session(engine_for(settings.database_url)) as session:
        _, listed = run_store.list_runs(session, limit=10)
    [run] = [run for run in listed if run.id != first.run_id]
    assert (run.trigger, run.status) == (trigger, "complete")


@sqlite_only
@pytest.mark.parametrize("trigger", list(TRIGGERS), ids=str)
def test_no_trigger_notifies_when_level_drops_are_off(
    trigger: RunTrigger, configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts,
    sample: Path, monkeypatch: pytest.MonkeyPatch, eager_celery: None,
) -> None:
    monkeypatch.setenv("LEVELSET_API_TOKEN", TOKEN)
    settings = configure("bot", teams=TEAMS, level_drops=False)
    run_evaluation(settings, trigger=RunTrigger.CLI)
    break_payments_and_search(sample)
    if trigger == RunTrigger.CLI:
        result = CliRunner().invoke(app, ["evaluate", "--config", str(sample / "levelset.yaml")])
        assert result.exit_code == 0 and "level-drop" not in result.stderr
    else:
        TRIGGERS[trigger](settings)
    time.sleep(0.3)  # a notification thread would have asked the builder by now
    assert drops.calls == [] and slack.count() == 0


@pytest.fixture
def broken_discovery(database_url: str, sample: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose scheduled discovery cannot run: no collectors.github section."""
    config = write_config(sample, database_url)
    monkeypatch.setenv("LEVELSET_CONFIG", str(config))
    get_settings.cache_clear()
    return load_settings(config)


@sqlite_only
def test_a_failing_job_fails_the_same_way_under_both_schedulers(
    broken_discovery: Settings, eager_celery: None, caplog: pytest.LogCaptureFixture,
) -> None:
    from engine.scheduling.celery_app import TASKS

    caplog.set_level(logging.ERROR, logger="levelset.schedule")
    with pytest.raises(jobs.JobFailed) as embedded:
        SCHEDULED[Job.discover](broken_discovery)
    under_celery = TASKS[Job.discover].apply()
    assert under_celery.failed() and isinstance(under_celery.result, jobs.JobFailed)
    assert str(under_celery.result) == str(embedded.value)
    assert str(embedded.value).startswith("discover failed: schedule.discover: discovery needs "
                                          "a collectors.github section with org")
    logged = [record.getMessage() for record in caplog.records if record.name == "levelset.schedule"]
    assert logged == [str(embedded.value)] * 2

    # The embedded collect job raises too, where it used to log and return.
    unknown_source = broken_discovery.model_copy(update={"collectors": {"nosuch": {}}})
    with pytest.raises(jobs.JobFailed, match=r"^collect failed: collectors: "):
        SCHEDULED[Job.collect](unknown_source)


def failed_report(failed: int) -> DeliveryReport:
    report = DeliveryReport(DeliveryKind.WEEKLY, "2026-03-01", [])
    report.channels = [("2026-03-01", ChannelDelivery(
        f"#c{index}", parts=1, posted=0 if index < failed else 1,
        outcome=Outcome.FAILED if index < failed else Outcome.SENT,
        error="HTTP 500" if index < failed else None)) for index in range(2)]
    return report


def test_the_report_is_retried_by_one_rule_for_both_schedulers() -> None:
    assert report_retry(failed_report(1), attempt=0) == REPORT_RETRY_DELAY == timedelta(minutes=10)
    assert report_retry(failed_report(1), attempt=REPORT_RETRIES - 1) == REPORT_RETRY_DELAY
    assert report_retry(failed_report(1), attempt=REPORT_RETRIES) is None  # retries used up
    assert report_retry(failed_report(0), attempt=0) is None  # all delivered
    assert report_retry(None, attempt=0) is None  # no destination configured
