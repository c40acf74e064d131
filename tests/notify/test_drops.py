"""Level-drop notifications: after each stored run, once per drop, never at the run's expense."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from sqlmodel import Session
from typer.testing import CliRunner

from engine.cli import app
from engine.notify.delivery import Outcome
from engine.notify.jobs import (
    drops_from_payload,
    drops_payload,
    level_drops_after_run,
    notify_level_drops,
    regressions,
)
from engine.storage import deliveries
from engine.storage import runs as run_store
from engine.storage.database import engine_for
from engine.storage.history.diff import LevelChanged, RuleStatusChanged
from engine.storage.models import DeliveryKind
from tests.notify.conftest import Configure, FakeDropAlerts, config_path
from tests.realparts.slack import SlackStandIn, server_error

TEAMS = {"team-a": "#payments-eng"}
PAYMENTS_DROP = LevelChanged("payments", "readiness", "Gold", "Bronze", 3, 1, ("has-codeowners",))
SEARCH_DROP = LevelChanged("search", "readiness", "Bronze", None, 1, 0, ("has-readme",))
NOT_DROPS = [
    LevelChanged("ledger", "readiness", "Bronze", "Silver", 1, 2, ()),  # a promotion
    LevelChanged("ledger", "security", None, "Bronze", 0, 1, (), first=True),  # first grade
    RuleStatusChanged("payments", "readiness", "has-codeowners", None, "fail"),  # type: ignore[arg-type]
]
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def drop_rows(database_url: str) -> list[tuple[str, str, str]]:
    with Session(engine_for(database_url)) as session:
        return [(row.key, row.channel, row.status)
                for row in deliveries.attempts(session, kind=DeliveryKind.DROP)]


def evaluate(sample: Path, now: str) -> Result:
    return CliRunner().invoke(app, ["evaluate", "--config", config_path(None),  # type: ignore[arg-type]
                                    "--now", now, "--format", "json"])


def break_payments_and_search(sample: Path) -> None:
    facts = json.loads((sample / "facts.json").read_text())
    facts["payments"]["github"]["has_codeowners"] = False
    facts["search"]["github"]["has_readme"] = False
    (sample / "facts.json").write_text(json.dumps(facts))


def test_only_regressions_are_drops_and_they_cross_a_queue_intact() -> None:
    events = [PAYMENTS_DROP, *NOT_DROPS, SEARCH_DROP]
    assert regressions(events) == [PAYMENTS_DROP, SEARCH_DROP]
    assert drops_from_payload(json.loads(json.dumps(drops_payload(events)))) == [
        PAYMENTS_DROP, SEARCH_DROP]


@sqlite_only
def test_each_drop_is_posted_once_to_its_owners_channel_or_the_summary_one(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts, database_url: str,
) -> None:
    settings = configure("bot", teams=TEAMS, level_drops=True)
    first = notify_level_drops(settings, events=[PAYMENTS_DROP, *NOT_DROPS, SEARCH_DROP])
    assert first is not None and drops.calls == [[PAYMENTS_DROP, SEARCH_DROP]]
    assert [(post.channel, post.text) for post in slack.posts] == [
        ("#payments-eng", "payments dropped to Bronze on readiness"),
        ("#platform-standards", "search dropped to None on readiness")]
    again = notify_level_drops(settings, events=[PAYMENTS_DROP, SEARCH_DROP])
    assert again is not None and [r.outcome for _, r in again.channels] == [
        Outcome.ALREADY_SENT, Outcome.ALREADY_SENT]
    assert len(slack.posts) == 2 and slack.count() == 2 and again.requests == 0
    assert drop_rows(database_url) == [
        ("payments/readiness/Gold->Bronze", "#payments-eng", "sent"),
        ("search/readiness/Bronze->None", "#platform-standards", "sent")]


@sqlite_only
def test_nothing_is_posted_when_level_drops_are_off_or_nothing_dropped(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert notify_level_drops(configure("bot"), events=[PAYMENTS_DROP]) is None
    assert notify_level_drops(configure("bot", level_drops=True), events=NOT_DROPS) is None
    caplog.set_level("INFO", logger="levelset.notify")
    assert notify_level_drops(configure(None, level_drops=True), events=[PAYMENTS_DROP]) is None
    assert "no Slack webhook or token is configured: 1 level drop(s) not notified" in caplog.text
    assert slack.count() == 0 and drops.calls == []


@sqlite_only
def test_evaluate_notifies_the_drops_of_its_run_and_a_rerun_posts_nothing_new(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts, sample: Path,
    database_url: str,
) -> None:
    configure("bot", teams=TEAMS, level_drops=True)
    assert evaluate(sample, "2026-02-20").exit_code == 0
    assert slack.count() == 0  # first grades are not drops
    break_payments_and_search(sample)
    dropped = evaluate(sample, "2026-02-21")
    assert dropped.exit_code == 0, dropped.output
    assert slack.channels_posted() == ["#payments-eng", "#platform-standards"]
    assert "level-drop notification: #payments-eng: sent (1 of 1 message" in dropped.stderr
    rerun = evaluate(sample, "2026-02-22")  # the same facts again: nothing changed
    assert rerun.exit_code == 0 and "level-drop" not in rerun.stderr
    assert len(slack.posts) == 2 and len(drop_rows(database_url)) == 2


@sqlite_only
def test_a_run_completes_and_exits_as_usual_when_slack_is_down(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts, sample: Path,
    database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    configure("bot", teams=TEAMS, level_drops=True, breaker_failures=1)
    assert evaluate(sample, "2026-02-20").exit_code == 0
    break_payments_and_search(sample)
    slack.fail_always(server_error())
    caplog.set_level("INFO", logger="levelset.notify")
    result = evaluate(sample, "2026-02-21")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)  # the evaluation is printed as always
    with Session(engine_for(database_url)) as session:
        assert run_store.get_run(session, run_id=2).status == "complete"
    # Slack failing for the first drop (breaker_failures: 1), the second is not tried (it
    # would wait too) and is recorded as skipped.
    assert slack.count() == 3
    assert ("level-drop notification: #payments-eng: failed after retries: HTTP 500"
            in result.stderr)
    assert "#platform-standards: not tried (Slack was failing" in result.stderr
    assert drop_rows(database_url) == [
        ("payments/readiness/Gold->Bronze", "#payments-eng", "failed"),
        ("search/readiness/Bronze->None", "#platform-standards", "skipped")]

    slack.fail_always(None)  # a later delivery of the same drops posts them, once
    report = level_drops_after_run(configure("bot", teams=TEAMS, level_drops=True),
                                   [PAYMENTS_DROP, SEARCH_DROP], run_id=2)
    assert report is not None and len(slack.posts) == 2


@sqlite_only
def test_a_broken_builder_is_logged_and_never_raised(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = configure("bot", teams=TEAMS, level_drops=True)
    drops.owners = None  # type: ignore[assignment]  (the fake now raises AttributeError)
    assert level_drops_after_run(settings, [PAYMENTS_DROP], run_id=7) is None
    assert "run 7: level-drop notifications not sent: 'NoneType' object" in caplog.text
    assert slack.count() == 0


def wait_for(condition: object, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.05)


@sqlite_only
def test_the_servers_scheduled_and_requested_runs_notify_on_a_thread_of_their_own(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts, sample: Path,
) -> None:
    from engine.api.app import ThreadDispatcher
    from engine.jobs import create_run
    from engine.scheduling.jobs import evaluate as scheduled_evaluation

    settings = configure("bot", teams=TEAMS, level_drops=True)
    scheduled_evaluation(settings)
    break_payments_and_search(sample)
    slack.delay = 0.4  # Slack is slow (within the 1 s deadline)
    dispatcher = ThreadDispatcher(settings)
    try:
        run_id, _ = create_run(settings, trigger="api")
        dispatcher.submit(run_id, None)
        wait_for(lambda: slack.count() >= 1)
        # The run is stored before Slack is asked, and the dispatcher's one worker is free for
        # the next run while the two slow posts are still under way.
        with Session(engine_for(settings.database_url)) as session:
            assert run_store.get_run(session, run_id=run_id).status == "complete"
        dispatcher.executor.submit(lambda: None).result(timeout=0.3)
        wait_for(lambda: len(slack.posts) == 2)
        assert slack.channels_posted() == ["#payments-eng", "#platform-standards"]
    finally:
        dispatcher.shutdown()


REDIS = "redis://127.0.0.1:6379/15"


@pytest.fixture
def worker() -> Iterator[None]:
    from celery.contrib.testing.worker import start_worker

    from engine.scheduling.celery_app import app as celery

    celery.conf.update(broker_url=REDIS, result_backend=REDIS)
    with start_worker(celery, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield


@sqlite_only
def test_under_celery_drops_are_notified_by_a_task_of_their_own(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts, sample: Path,
    database_url: str, worker: None,
) -> None:
    from engine.scheduling.celery_app import evaluate as evaluate_task

    configure("bot", teams=TEAMS, level_drops=True)
    evaluate_task.delay().get(timeout=30)
    break_payments_and_search(sample)
    evaluate_task.delay().get(timeout=30)
    wait_for(lambda: len(slack.posts) == 2)
    assert slack.channels_posted() == ["#payments-eng", "#platform-standards"]
    assert [status for _, _, status in drop_rows(database_url)] == ["sent", "sent"]
