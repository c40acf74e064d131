"""Slack jobs end in bounded time: a deadline per request, a breaker per batch, a claim that
outlives the attempt, and progress as each channel is done. Against a Slack that trickles,
hangs or answers 500 forever; deadlines are tenths of a second, set through the settings."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from engine.cli import app
from engine.notify.delivery import CLAIM_MARGIN, ChannelDelivery, Outcome, claim_lease
from engine.notify.jobs import DeliveryReport, notify_level_drops, send_weekly_report
from engine.storage import deliveries
from engine.storage.database import engine_for
from engine.storage.history.diff import LevelChanged
from engine.storage.models import DeliveryClaim, DeliveryKind
from tests.notify.conftest import Configure, FakeDropAlerts, FakeWeeklyReport, config_path, message
from tests.realparts.slack import SlackStandIn

NOW = datetime.fromisoformat("2026-03-02T09:00:00+01:00")
WEEK = "2026-03-02"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TEAMS = {f"team-{n}": f"#team-{n}" for n in range(6)}


def rows(database_url: str, kind: DeliveryKind = DeliveryKind.WEEKLY) -> list[tuple[str, str]]:
    with Session(engine_for(database_url)) as session:
        return [(row.channel, row.status) for row in deliveries.attempts(session, kind=kind)]


def in_background(work: object, seconds: float) -> tuple[list[object], float]:
    """Run ``work()`` on a thread; its result and how long it took (inf: still running after
    ``seconds``, the bound every test here asserts)."""
    found: list[object] = []
    started = time.monotonic()
    thread = threading.Thread(target=lambda: found.append(work()), daemon=True)  # type: ignore[operator]
    thread.start()
    thread.join(timeout=seconds)
    return found, (float("inf") if thread.is_alive() else time.monotonic() - started)


@sqlite_only
@pytest.mark.parametrize("mode", ["bot", "webhook"])
def test_a_trickling_answer_ends_at_the_request_deadline_within_the_claim(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
    mode: str,
) -> None:
    # Slack takes the message, then answers one byte every 0.1 s: each read is quick (under
    # the 1 s deadline), the whole answer would take over 10 s.
    weekly.messages = weekly.messages[:1]
    settings = configure(mode, max_retries=1, channel=None if mode == "webhook" else
                         "#platform-standards")
    slack.trickle(0.1)
    found, took = in_background(lambda: send_weekly_report(settings, now=NOW), 8)
    assert took < 8, "the attempt did not end at its deadline"
    [report] = found
    assert isinstance(report, DeliveryReport)
    [(_, result)] = report.channels
    assert (result.outcome, result.error, report.requests) == (Outcome.FAILED, "timed out", 2)
    assert took >= 2 * 1.0  # each of the two tries ran to its deadline, no further
    lease = claim_lease(settings.report.slack, parts=1)
    assert took <= (lease - CLAIM_MARGIN).total_seconds()


@sqlite_only
def test_a_second_sender_is_busy_for_as_long_as_the_first_may_still_post(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    weekly.messages = weekly.messages[:1]
    settings = configure("bot", max_retries=1)
    slack.trickle(0.1)
    first: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: first.append(send_weekly_report(settings, now=NOW)),
                              daemon=True)
    thread.start()
    while slack.count() == 0 and thread.is_alive():
        time.sleep(0.01)
    with Session(engine_for(database_url)) as session:
        [claim] = session.exec(select(DeliveryClaim)).all()
    second = send_weekly_report(settings, now=NOW)  # while the first waits on its answer
    thread.join(timeout=8)
    finished = datetime.now(UTC)
    assert not thread.is_alive(), "the first sender did not end at its deadline"
    assert [r.outcome for _, r in second.channels] == [Outcome.BUSY]
    assert claim.expires_at.replace(tzinfo=UTC) > finished  # the claim outlived the attempt
    assert [r.outcome for _, r in first[0].channels] == [Outcome.FAILED]
    assert slack.channels_posted() == ["#platform-standards"] * 2  # the first sender's 2 tries


@sqlite_only
def test_slack_answering_500_forever_trips_the_breaker_and_the_rest_waits_for_next_time(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    weekly.messages = [message(f"team:team-{n}", f"team {n}") for n in range(6)]
    configure("bot", teams=TEAMS, max_retries=1, breaker_failures=2)
    slack.channels = None  # every channel exists
    slack.fail_forever()
    result = CliRunner().invoke(app, ["report", "slack", "--config", config_path(None),  # type: ignore[arg-type]
                                      "--now", NOW.isoformat()])
    assert result.exit_code == 1, result.output
    assert slack.count() == 4  # two channels, two tries each; then the breaker opens
    assert rows(database_url) == [("#team-0", "failed"), ("#team-1", "failed")] + [
        (f"#team-{n}", "skipped") for n in range(2, 6)]
    assert "error: #team-5: not tried: 2 deliveries in a row failed" in result.stderr
    assert "0 message(s) posted, 4 request(s) to Slack" in result.stdout

    slack.fail_always(None)
    again = CliRunner().invoke(app, ["report", "slack", "--config", config_path(None),  # type: ignore[arg-type]
                                     "--now", NOW.isoformat()])
    assert again.exit_code == 0, again.output
    assert slack.channels_posted() == [f"#team-{n}" for n in range(6)]  # each once


@sqlite_only
def test_a_hanging_slack_ends_in_bounded_time_for_the_weekly_report(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    weekly.messages = [message(f"team:team-{n}", f"team {n}") for n in range(6)]
    settings = configure("bot", teams=TEAMS, timeout_seconds=0.3,
                         max_retries=1, breaker_failures=2)
    slack.hang_forever()
    found, took = in_background(lambda: send_weekly_report(settings, now=NOW), 10)
    assert took < 2.5  # 2 channels x 2 tries x 0.3 s, and short backoffs; not 6 x 2 x 0.3
    [report] = found
    assert isinstance(report, DeliveryReport)
    assert [r.outcome for _, r in report.channels] == [Outcome.FAILED] * 2 + [Outcome.SKIPPED] * 4
    assert report.requests == 4


@sqlite_only
def test_drop_alerts_stop_at_the_breaker_and_record_the_rest_as_skipped(
    configure: Configure, slack: SlackStandIn, drops: FakeDropAlerts, database_url: str,
) -> None:
    settings = configure("bot", level_drops=True, timeout_seconds=0.3, max_retries=1,
                         breaker_failures=2)
    slack.hang_forever()
    events = [LevelChanged(f"svc-{n}", "readiness", "Gold", "Bronze", 3, 1, ("rule",))
              for n in range(5)]
    found, took = in_background(lambda: notify_level_drops(settings, events=events), 10)
    assert took < 2.5
    [report] = found
    assert isinstance(report, DeliveryReport)
    assert report.requests == 4
    assert [status for _, status in rows(database_url, DeliveryKind.DROP)] == [
        "failed", "failed", "skipped", "skipped", "skipped"]

    slack.fail_always(None)  # the next delivery of the same drops posts each once
    assert notify_level_drops(settings, events=events) is not None
    assert len(slack.posts) == 5


@sqlite_only
def test_each_channel_is_reported_as_soon_as_it_is_done(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    settings = configure("bot", teams={"team-a": "#payments-eng"})
    seen: list[tuple[str, Outcome, int]] = []

    def progress(result: ChannelDelivery) -> None:
        seen.append((result.channel, result.outcome, len(slack.posts)))

    send_weekly_report(settings, now=NOW, progress=progress)
    # told of the summary channel after its 2 posts, before the team's post was made
    assert seen == [("#platform-standards", Outcome.SENT, 2), ("#payments-eng", Outcome.SENT, 3)]

    result = CliRunner().invoke(app, ["report", "slack", "--config", config_path(None),  # type: ignore[arg-type]
                                      "--now", NOW.isoformat()])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("  #platform-standards: already sent")
    assert lines[1].startswith("  #payments-eng: already sent")
    assert lines[2].endswith("0 message(s) posted, 0 request(s) to Slack")
