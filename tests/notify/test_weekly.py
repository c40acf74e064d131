"""The weekly report goes out once per week and channel: repeats, --force, dry runs, bad
input, two senders at once, and what the deliveries table keeps (on both databases)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from sqlmodel import Session
from typer.testing import CliRunner

from engine.cli import app
from engine.notify.delivery import Outcome
from engine.notify.jobs import send_weekly_report
from engine.storage import deliveries
from engine.storage.database import engine_for, write_scope
from engine.storage.models import Delivery, DeliveryKind, DeliveryStatus
from tests.notify.conftest import Configure, FakeWeeklyReport, config_path
from tests.realparts.slack import SlackStandIn

NOW = "2026-03-02T09:00:00+01:00"
WEEK = "2026-03-02"
TEAMS = {"team-a": "#payments-eng"}
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def send(*args: str, now: str = NOW) -> Result:
    return CliRunner().invoke(app, ["report", "slack", "--config", config_path(None),  # type: ignore[arg-type]
                                    "--now", now, *args])


def rows(database_url: str, key: str = WEEK) -> list[Delivery]:
    with Session(engine_for(database_url)) as session:
        return deliveries.attempts(session, kind=DeliveryKind.WEEKLY, key=key)


@sqlite_only
def test_the_same_week_twice_posts_nothing_the_second_time_and_says_so(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    configure("bot", teams=TEAMS)
    first = send()
    later_that_day = send(now="2026-03-02T17:30:00+01:00")
    assert (first.exit_code, later_that_day.exit_code) == (0, 0)
    assert len(slack.posts) == 3 and slack.count() == 3
    assert "0 message(s) posted, 0 request(s) to Slack" in later_that_day.stdout
    assert ("#platform-standards: already sent (2 messages); nothing posted (--force sends "
            "again)") in later_that_day.stdout
    assert "#payments-eng: already sent (1 message)" in later_that_day.stdout
    assert len(rows(database_url)) == 3

    next_week = send(now="2026-03-09T09:00:00+01:00")
    assert next_week.exit_code == 0 and len(slack.posts) == 6
    assert len(rows(database_url, "2026-03-09")) == 3


@sqlite_only
def test_force_posts_the_week_again(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    configure("bot", teams=TEAMS)
    assert send().exit_code == 0
    forced = send("--force")
    assert forced.exit_code == 0, forced.output
    assert len(slack.posts) == 6
    assert slack.channels_posted()[3:] == ["#platform-standards", "#platform-standards",
                                           "#payments-eng"]
    assert [row.status for row in rows(database_url)] == ["sent"] * 6


@sqlite_only
def test_the_week_is_the_date_it_ends_in_the_report_time_zone(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    configure("bot", teams=TEAMS)  # report.timezone: Europe/Berlin
    assert send(now="2026-03-01T23:30:00+00:00").exit_code == 0  # 00:30 on the 2nd in Berlin
    assert {row.key for row in rows(database_url)} == {WEEK}
    assert send(now="2026-03-02T12:00:00+00:00").exit_code == 0
    assert len(slack.posts) == 3


@sqlite_only
def test_a_dry_run_prints_the_messages_and_posts_nothing(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    configure(None, teams=TEAMS)  # no secret is needed to look
    result = send("--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == [{"channel": channel, "text": m.text, "blocks": m.blocks}
                       for channel, m in zip(["#platform-standards", "#platform-standards",
                                              "#payments-eng"], weekly.messages, strict=True)]
    assert slack.count() == 0 and rows(database_url) == []

    configure("bot", teams=TEAMS)
    assert send("--dry-run").exit_code == 0 and slack.count() == 0
    assert send().exit_code == 0 and len(slack.posts) == 3  # a dry run sent nothing


@sqlite_only
def test_a_dry_run_shows_each_message_as_people_read_it_under_its_channel(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    weekly.messages[0].blocks[0]["text"]["text"] = (
        "*Production readiness* · <https://levelset.internal/x?a=1&amp;b=2|payments &amp; co>")
    configure(None, teams=TEAMS)
    result = send("--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:6] == [
        "#platform-standards (message 1 of 2)",
        "Production readiness · payments & co (https://levelset.internal/x?a=1&b=2)", "",
        "Weekly scorecards (2)", "", "Weekly scorecards (3)"]
    assert "#payments-eng\nYour services this week (1)" in result.stdout
    assert '"blocks"' not in result.stdout and slack.count() == 0
    assert send("--dry-run", "--format", "yaml").exit_code == 2


@sqlite_only
def test_nothing_to_send_is_said_and_is_not_an_error(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport,
) -> None:
    weekly.messages = []
    configure("bot")
    result = send()
    assert result.exit_code == 0
    assert result.stdout == ("weekly report for the 7 days ending 2026-03-02 (Europe/Berlin): "
                             "nothing to send\n")
    assert slack.count() == 0


@sqlite_only
@pytest.mark.parametrize(("mode", "settings", "args", "expected"), [
    (None, {}, [], "report.slack: no Slack destination: set LEVELSET_SLACK_WEBHOOK_URL "
                   "(an incoming webhook) or LEVELSET_SLACK_TOKEN (a bot token)"),
    ("webhook", {"teams": TEAMS}, [], "report.slack.teams: team channels (team-a) need a bot "
                                      "token (LEVELSET_SLACK_TOKEN or token_file)"),
    ("webhook", {"teams": TEAMS}, ["--dry-run"], "report.slack.teams: team channels (team-a)"),
    ("bot", {"channel": None, "teams": TEAMS}, [],
     "report.slack.channel: not set: with a bot token, the summary needs a channel"),
    ("bot", {"teams": {}}, [], "report.slack.teams: a message for 'team:team-a' has no channel "
                               "(teams: none)"),
    ("bot", {}, ["--now", "last monday"], "--now: 'last monday' is not a date or ISO-8601 time"),
    ("bot", {"token_file": "missing-token"}, [], "missing-token"),
])
def test_bad_input_exits_2_before_anything_is_posted(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
    mode: str | None, settings: dict[str, object], args: list[str], expected: str,
) -> None:
    configure(mode, **settings)
    result = send(*args)
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and "Traceback" not in result.output
    assert slack.count() == 0 and rows(database_url) == []


@sqlite_only
def test_secret_files_hold_the_token_or_the_webhook(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = tmp_path / "token"
    token.write_text(slack.token + "\n")
    configure(None, token_file=str(token), teams=TEAMS)
    assert send().exit_code == 0 and slack.channels_posted()[-1] == "#payments-eng"
    empty = tmp_path / "empty"
    empty.write_text("\n")
    configure(None, token_file=str(empty))
    result = send(now="2026-03-09")
    assert result.exit_code == 2 and f"{empty}: report.slack.token_file: the secret file is empty" \
        in result.stderr


def test_two_senders_of_the_same_week_post_it_once(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    settings = configure("bot", teams=TEAMS)
    slack.delay = 0.1  # each post takes a while, so the senders overlap
    both_built = threading.Barrier(2)

    def build_then_wait(*args: object, **kwargs: object) -> list:  # type: ignore[type-arg]
        messages = weekly(*args, **kwargs)  # type: ignore[arg-type]
        both_built.wait(timeout=10)
        return messages

    now = datetime.fromisoformat(NOW)
    results: list[list[Outcome]] = []

    def sender() -> None:
        report = send_weekly_report(settings, now=now, build=build_then_wait)
        results.append([result.outcome for _, result in report.channels])

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(slack.posts) == 3  # each message once
    assert [post.text for post in slack.posts if post.channel == "#platform-standards"] == [
        "Weekly scorecards", "Weekly scorecards, continued"]  # in order
    for channel in range(2):  # per channel, one sender posted; the other found it busy or done
        outcomes = sorted(outcome[channel] for outcome in results)
        assert outcomes[1] == Outcome.SENT and outcomes[0] in (Outcome.BUSY, Outcome.ALREADY_SENT)
    assert sorted((row.channel, row.part, row.status) for row in rows(database_url)) == [
        ("#payments-eng", 0, "sent"), ("#platform-standards", 0, "sent"),
        ("#platform-standards", 1, "sent")]


def test_a_claim_held_by_a_live_sender_is_respected_and_a_dead_ones_taken_over(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    settings = configure("bot", teams=TEAMS)
    now = datetime.now(UTC)
    with write_scope(engine_for(database_url)) as session:
        for channel, expires in (("#platform-standards", now + timedelta(hours=1)),
                                 ("#payments-eng", now - timedelta(seconds=1))):
            assert deliveries.claim(session, kind=DeliveryKind.WEEKLY, key=WEEK, channel=channel,
                                    holder="elsewhere:1:dead", now=now - timedelta(hours=1),
                                    expires_at=expires)
    report = send_weekly_report(settings, now=datetime.fromisoformat(NOW))
    assert [(result.channel, result.outcome) for _, result in report.channels] == [
        ("#platform-standards", Outcome.BUSY), ("#payments-eng", Outcome.SENT)]
    assert slack.channels_posted() == ["#payments-eng"]


def test_attempts_are_appended_never_updated(
    configure: Configure, slack: SlackStandIn, database_url: str,
) -> None:
    configure("bot")
    engine = engine_for(database_url)
    at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    long_key = "payments/" + "x" * 600
    with write_scope(engine) as session:
        deliveries.record(session, kind=DeliveryKind.DROP, key=long_key, channel="#a", part=0,
                          status=DeliveryStatus.FAILED, error="ratelimited", at=at)
    with Session(engine) as session:
        before = [row.model_dump() for row in deliveries.attempts(session, key=long_key)]
        assert deliveries.sent_parts(session, kind=DeliveryKind.DROP, key=long_key,
                                     channel="#a") == set()
    with write_scope(engine) as session:
        deliveries.record(session, kind=DeliveryKind.DROP, key=long_key, channel="#a", part=0,
                          status=DeliveryStatus.SENT, error=None, at=at + timedelta(minutes=1))
    with Session(engine) as session:
        after = [row.model_dump() for row in deliveries.attempts(session, key=long_key)]
        assert deliveries.sent_parts(session, kind=DeliveryKind.DROP, key=long_key,
                                     channel="#a") == {0}
        assert deliveries.attempts(session, kind=DeliveryKind.WEEKLY) == []
    assert after[0] == before[0] and len(after) == 2
    assert after[1]["attempted_at"] == at + timedelta(minutes=1)
    assert len(after[0]["key"]) == deliveries.MAX_KEY and after[0]["key"].startswith("payments/x")



@sqlite_only
def test_secrets_are_refused_in_the_settings_file_and_a_bad_webhook_url_is_not_shown(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from core.errors import SettingsError
    from engine.settings import load_settings

    config = tmp_path / "levelset.yaml"
    config.write_text(f"report:\n  slack:\n    token: {slack.token}\n"
                      f"    webhook_url: {slack.webhook_url}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    assert f'{config}:3: report.slack.token: unknown setting (did you mean "token_env"?)' \
        in str(error.value)
    assert slack.token not in str(error.value) and slack.webhook_url not in str(error.value)

    configure("webhook")
    monkeypatch.setenv("LEVELSET_SLACK_WEBHOOK_URL", "hooks.slack.com/services/T0/B0/sEcReT")
    result = send()
    assert result.exit_code == 2
    assert "LEVELSET_SLACK_WEBHOOK_URL: the incoming webhook's URL is not an http(s) URL" \
        in result.stderr and "sEcReT" not in result.output


def test_migration_0003_creates_the_delivery_tables_as_the_models_describe(
    database_url: str,
) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    with engine_for(database_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert [d for d in differences if "delivery" in repr(d)] == []
