"""The weekly report in the one schedule table, run by ``levelset serve`` and Celery beat."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import SettingsError
from engine.cli import app
from engine.notify.jobs import REPORT_RETRY_DELAY, scheduled_report
from engine.scheduling.celery_app import TASKS, beat_schedule
from engine.scheduling.celery_app import report as report_task
from engine.scheduling.embedded import SCHEDULED, build_scheduler
from engine.scheduling.schedule import Job, ScheduledJob, scheduled_jobs
from engine.settings import load_settings
from tests.notify.conftest import Configure, FakeWeeklyReport, config_path
from tests.realparts.slack import SlackStandIn, server_error

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
REPORT_ROW = ScheduledJob("report", Job.report, "0 9 * * 1", "Europe/Berlin")


def listed() -> dict[str, dict[str, object]]:
    result = CliRunner().invoke(app, ["schedule", "--config", config_path(None),  # type: ignore[arg-type]
                                      "--format", "json"])
    assert result.exit_code == 0, result.output
    return {job["name"]: job for job in json.loads(result.stdout)}


@sqlite_only
def test_the_report_is_scheduled_only_where_a_slack_destination_is_configured(
    configure: Configure,
) -> None:
    settings = configure(None)
    assert [job.name for job in scheduled_jobs(settings)] == ["evaluate", "collect", "prune"]
    assert "report" not in beat_schedule() and "report" not in listed()

    settings = configure("bot")
    assert scheduled_jobs(settings)[-1] == REPORT_ROW
    assert {job.id for job in build_scheduler(settings).get_jobs()} == {  # type: ignore[attr-defined]
        "evaluate", "collect", "prune", "report"}
    entry = beat_schedule()["report"]
    assert (entry["task"], entry["schedule"].zone) == ("levelset.report", "Europe/Berlin")
    job = listed()["report"]
    assert (job["cron"], job["timezone"]) == ("0 9 * * 1", "Europe/Berlin")
    for moment in map(datetime.fromisoformat, job["next"]):  # type: ignore[arg-type]
        assert (moment.weekday(), moment.hour, moment.minute) == (0, 9, 0)  # Monday 09:00
    assert set(SCHEDULED) == set(TASKS) == set(Job)


def test_report_schedule_zone_and_api_url_are_checked_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "levelset.yaml"
    config.write_text("report:\n"
                      '  schedule: "0 9 * * 8"\n'
                      "  timezone: Europe/Berln\n"
                      "  slack:\n"
                      "    api_url: slack.com/api\n"
                      "    max_retries: 99\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    text = str(error.value)
    assert f"{config}:2: report.schedule: Value error, '0 9 * * 8' is not a cron" in text
    assert f"{config}:3: report.timezone: Value error, 'Europe/Berln' is not an IANA" in text
    assert f"{config}:5: report.slack.api_url: Value error, 'slack.com/api' is not an http" in text
    assert f"{config}:6: report.slack.max_retries: Input should be less than or equal to 10" in text


@sqlite_only
def test_the_scheduled_report_posts_and_a_failure_is_tried_again_later(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport,
) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    settings = configure("bot", teams={"team-a": "#payments-eng"})
    scheduler = BackgroundScheduler(timezone="UTC")
    slack.fail_always(server_error())
    SCHEDULED[Job.report](settings, scheduler)  # type: ignore[call-arg]
    retry = scheduler.get_job("report-retry")
    assert retry is not None and retry.kwargs["attempt"] == 1
    week_end = retry.kwargs["now"]
    assert (retry.trigger.run_date - datetime.now(UTC)).total_seconds() == pytest.approx(
        REPORT_RETRY_DELAY.total_seconds(), abs=30)

    slack.fail_always(None)
    retry.func(*retry.args, **retry.kwargs)  # what the scheduler runs ten minutes later
    assert len(slack.posts) == 3 and weekly.calls == [week_end, week_end]


@sqlite_only
def test_the_celery_task_posts_the_report(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport,
) -> None:
    configure("bot", teams={"team-a": "#payments-eng"})
    summary = report_task.apply(kwargs={"now": "2026-03-02T08:00:00+00:00"}).get()
    assert summary["key"] == "2026-03-02" and summary["posted"] == 3
    assert summary["requests"] == 3 and len(slack.posts) == 3


@sqlite_only
def test_without_a_destination_the_scheduled_report_is_a_logged_no_op(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="levelset.notify")
    assert scheduled_report(configure(None)) is None
    assert "weekly report not sent: no Slack webhook or token is configured" in caplog.text
    assert weekly.calls == [] and slack.count() == 0
