"""Posting to the Slack stand-in with real slack_sdk clients: routing, retries, failures, secrets."""

from __future__ import annotations

import logging
import time

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from engine.cli import app
from engine.storage import deliveries
from engine.storage.database import engine_for
from engine.storage.models import Delivery, DeliveryKind
from tests.notify.conftest import Configure, FakeWeeklyReport, config_path, message
from tests.realparts.httpserver import free_port
from tests.realparts.slack import WEBHOOK_PATH, SlackStandIn, hang, rate_limited, server_error

NOW = "2026-03-02T09:00:00+01:00"  # a Monday morning in Berlin; the week ends 2026-03-02
WEEK = "2026-03-02"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def send(*args: str) -> object:
    return CliRunner().invoke(app, ["report", "slack", "--config", config_path(None),  # type: ignore[arg-type]
                                    "--now", NOW, *args])


def attempts(database_url: str) -> list[Delivery]:
    with Session(engine_for(database_url)) as session:
        return deliveries.attempts(session, kind=DeliveryKind.WEEKLY, key=WEEK)


def summary(rows: list[Delivery]) -> list[tuple[str, int, str, str | None]]:
    return [(row.channel, row.part, row.status, row.error) for row in rows]


@sqlite_only
def test_a_bot_token_posts_the_summary_and_each_team_to_its_channel(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    configure("bot", teams={"team-a": "#payments-eng", "team-b": "#search-eng"})
    result = send()
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert slack.channels_posted() == ["#platform-standards", "#platform-standards",
                                       "#payments-eng"]
    assert [post.text for post in slack.posts] == [m.text for m in weekly.messages]
    assert [post.blocks for post in slack.posts] == [m.blocks for m in weekly.messages]
    assert {r.headers["authorization"] for r in slack.requests} == {f"Bearer {slack.token}"}
    assert {r.path for r in slack.requests} == {"/api/chat.postMessage"}
    assert summary(attempts(database_url)) == [
        ("#platform-standards", 0, "sent", None), ("#platform-standards", 1, "sent", None),
        ("#payments-eng", 0, "sent", None)]
    assert "3 message(s) posted, 3 request(s) to Slack" in result.stdout  # type: ignore[attr-defined]
    assert weekly.calls[0].isoformat() == NOW


@sqlite_only
def test_an_incoming_webhook_posts_every_message_to_its_own_channel(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    weekly.messages = weekly.messages[:2]
    configure("webhook", channel=None)
    result = send()
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert [(post.via, post.text) for post in slack.posts] == [
        ("webhook", "Weekly scorecards"), ("webhook", "Weekly scorecards, continued")]
    assert {r.path for r in slack.requests} == {WEBHOOK_PATH}
    assert summary(attempts(database_url)) == [("webhook", 0, "sent", None),
                                               ("webhook", 1, "sent", None)]


@sqlite_only
@pytest.mark.parametrize(("mode", "retry_after"), [("bot", 1), ("webhook", 0)])
def test_a_429_is_retried_after_its_retry_after_and_delivered_once(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
    mode: str, retry_after: int,
) -> None:
    weekly.messages = weekly.messages[:2]
    configure(mode)
    slack.fault(rate_limited(retry_after))
    started = time.monotonic()
    result = send()
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert time.monotonic() - started >= retry_after
    assert len(slack.posts) == 2  # once each, not twice
    assert slack.count() == 3 and slack.count(429) == 1
    assert "2 message(s) posted, 3 request(s) to Slack" in result.stdout  # type: ignore[attr-defined]
    assert [row.status for row in attempts(database_url)] == ["sent", "sent"]


@sqlite_only
def test_a_retry_after_longer_than_allowed_is_not_waited_for(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    weekly.messages = weekly.messages[:1]
    configure("bot")
    slack.fault(rate_limited(3600))
    started = time.monotonic()
    result = send()
    assert result.exit_code == 1 and time.monotonic() - started < 1
    assert slack.count() == 1 and slack.posts == []
    assert ("error: #platform-standards: delivery failed after retries: ratelimited"
            in result.stderr)  # type: ignore[attr-defined]
    assert summary(attempts(database_url)) == [("#platform-standards", 0, "failed", "ratelimited")]


@sqlite_only
@pytest.mark.parametrize(("mode", "error", "channel"), [
    ("bot", "HTTP 500", "#platform-standards"), ("webhook", "internal_error", "webhook")])
def test_500_until_retries_run_out_fails_and_is_sent_by_the_next_attempt(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
    mode: str, error: str, channel: str,
) -> None:
    weekly.messages = weekly.messages[:2]
    configure(mode)
    slack.fail_always(server_error())
    failed = send()
    assert failed.exit_code == 1, failed.output  # type: ignore[attr-defined]
    assert f"error: {channel}: delivery failed after retries: {error}" in failed.stderr  # type: ignore[attr-defined]
    assert slack.count() == 3 and slack.posts == []  # 1 + max_retries, then the channel stops
    assert summary(attempts(database_url)) == [(channel, 0, "failed", error)]

    slack.fail_always(None)
    again = send()
    assert again.exit_code == 0, again.output  # type: ignore[attr-defined]
    assert [post.text for post in slack.posts] == ["Weekly scorecards",
                                                   "Weekly scorecards, continued"]
    assert summary(attempts(database_url)) == [
        (channel, 0, "failed", error), (channel, 0, "sent", None), (channel, 1, "sent", None)]


@sqlite_only
def test_a_refused_part_stops_its_channel_and_only_the_rest_is_sent_next_time(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    good = weekly.messages
    weekly.messages = [good[0], message("summary", "too long", 51), good[2]]
    configure("bot", teams={"team-a": "#payments-eng"})
    failed = send()
    assert failed.exit_code == 1
    assert ("error: #platform-standards: delivery failed after retries: invalid_blocks"
            in failed.stderr)  # type: ignore[attr-defined]
    assert slack.channels_posted() == ["#platform-standards", "#payments-eng"]  # not retried
    assert slack.count() == 3

    weekly.messages = good
    again = send()
    assert again.exit_code == 0
    assert [post.text for post in slack.posts[2:]] == ["Weekly scorecards, continued"]
    assert "#payments-eng: already sent (1 message)" in again.stdout  # type: ignore[attr-defined]
    assert summary(attempts(database_url)) == [
        ("#platform-standards", 0, "sent", None),
        ("#platform-standards", 1, "failed", "invalid_blocks"),
        ("#payments-eng", 0, "sent", None), ("#platform-standards", 1, "sent", None)]


@sqlite_only
def test_a_hung_request_times_out_and_is_retried(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport,
) -> None:
    weekly.messages = weekly.messages[:1]
    configure("bot")  # timeout_seconds: 1
    slack.fault(hang(3))
    started = time.monotonic()
    result = send()
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert 1.0 <= time.monotonic() - started < 2.8
    assert len(slack.posts) == 1 and slack.count() == 2


@sqlite_only
def test_slack_out_of_reach_fails_after_the_retries_naming_the_channel(
    configure: Configure, weekly: FakeWeeklyReport, database_url: str,
) -> None:
    port = free_port()
    configure("bot", api_url=f"http://127.0.0.1:{port}/api/", teams={"team-a": "#payments-eng"})
    result = send()
    assert result.exit_code == 1
    for channel in ("#platform-standards", "#payments-eng"):  # each channel is tried
        assert (f"error: {channel}: delivery failed after retries: connection failed: "
                "Connection refused") in result.stderr  # type: ignore[attr-defined]
    assert "0 message(s) posted, 6 request(s) to Slack" in result.stdout  # type: ignore[attr-defined]
    assert [row.status for row in attempts(database_url)] == ["failed", "failed"]


@sqlite_only
def test_secrets_appear_in_no_output_log_or_record(
    configure: Configure, slack: SlackStandIn, weekly: FakeWeeklyReport, database_url: str,
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    weekly.messages = weekly.messages[:2]
    outputs = []
    for mode in ("webhook", "bot"):
        configure(mode)
        slack.fault(rate_limited(0), hang(2))
        slack.fail_always(server_error())
        outputs.append(send())
        slack.fail_always(None)
        outputs.append(send())
        outputs.append(send("--dry-run"))
    assert [result.exit_code for result in outputs] == [1, 0, 0, 1, 0, 0]  # type: ignore[attr-defined]
    captured = capfd.readouterr()
    seen = "\n".join([caplog.text, captured.out, captured.err,
                      *(r.stdout + r.stderr for r in outputs),  # type: ignore[attr-defined]
                      *(str(row) for row in attempts(database_url))])
    assert "retrying after HTTP 429" in caplog.text  # the log says what happened...
    for secret in (slack.token, slack.webhook_url, WEBHOOK_PATH, WEBHOOK_PATH.split("/")[-1]):
        assert secret not in seen  # ...and never with what it was sent with
    assert f"Bearer {slack.token}" in slack.raw_traffic()  # (it was sent, to Slack only)


def test_the_stand_in_refuses_what_slack_refuses() -> None:
    from slack_sdk import WebClient, WebhookClient
    from slack_sdk.errors import SlackApiError

    too_long = [
        [{"type": "divider"}] * 51,
        [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}],
        [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}],
    ]
    within = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 150}},
              {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3000}},
              *[{"type": "divider"}] * 48]
    with SlackStandIn(channels={"#a"}).running() as slack:
        webhook = WebhookClient(slack.webhook_url, retry_handlers=[])
        for blocks in too_long:
            response = webhook.send(text="t", blocks=blocks)
            assert (response.status_code, response.body) == (400, "invalid_blocks")
        assert webhook.send(text="t", blocks=within).body == "ok"
        web = WebClient(token=slack.token, base_url=slack.api_url, retry_handlers=[])
        with pytest.raises(SlackApiError) as refused:
            web.chat_postMessage(channel="#a", text="t", blocks=too_long[0])
        assert refused.value.response["error"] == "invalid_blocks"
        with pytest.raises(SlackApiError) as unknown:
            web.chat_postMessage(channel="#elsewhere", text="t")
        assert unknown.value.response["error"] == "channel_not_found"
        assert web.chat_postMessage(channel="#a", text="t", blocks=within)["ok"]
        assert [post.via for post in slack.posts] == ["webhook", "api"]
