"""Fixtures for delivery: the Slack stand-in, settings that point at it, fake report builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import Session

from engine.notify.sources import DROPS, WEEKLY, builders
from engine.reports.messages import Message
from engine.settings import ReportSettings, Settings, get_settings, load_settings
from engine.storage.history.diff import LevelChanged
from tests.conftest import write_config
from tests.realparts.slack import SlackStandIn

# Fast retries: tests wait tenths of a second, not Slack's real minutes.
FAST = {"timeout_seconds": 1.0, "max_retries": 2, "max_retry_after_seconds": 1,
        "backoff_seconds": 0.01}
SECRET_VARIABLES = ("LEVELSET_SLACK_TOKEN", "LEVELSET_SLACK_WEBHOOK_URL", "LEVELSET_CONFIG")


def message(route: str, text: str, blocks: int = 1) -> Message:
    return Message(route, text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"{text} ({index + 1})"}}
        for index in range(blocks)])


@dataclass
class FakeWeeklyReport:
    """Stands in for engine.reports.weekly.weekly_report: the messages it is given."""

    messages: list[Message]
    calls: list[datetime] = field(default_factory=list)

    def __call__(self, session: Session, *, now: datetime,
                 settings: ReportSettings) -> list[Message]:
        assert isinstance(session, Session) and isinstance(settings, ReportSettings)
        self.calls.append(now)
        return list(self.messages)


@dataclass
class FakeDropAlerts:
    """Stands in for engine.reports.drops.drop_alerts: a message per regression, keyed by
    service, scorecard and the levels (the real key also has the run of the change)."""

    owners: dict[str, str]
    calls: list[list[LevelChanged]] = field(default_factory=list)

    def __call__(self, session: Session, *, events: Sequence[LevelChanged],
                 settings: ReportSettings) -> list[tuple[str, Message]]:
        self.calls.append(list(events))
        alerts = []
        for event in events:
            owner = self.owners.get(event.service, "nobody")
            route = f"team:{owner}" if owner in settings.slack.teams else "summary"
            key = f"{event.service}/{event.scorecard}/{event.before}->{event.after}"
            alerts.append((key, message(route, f"{event.service} dropped to {event.after} "
                                               f"on {event.scorecard}")))
        return alerts


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(channels={"#platform-standards", "#payments-eng", "#search-eng"}).running() \
            as standin:
        yield standin


@pytest.fixture
def weekly() -> Iterator[FakeWeeklyReport]:
    """A fake weekly report, registered for one test: summary in two parts, then team-a's."""
    fake = FakeWeeklyReport([message("summary", "Weekly scorecards", 3),
                             message("summary", "Weekly scorecards, continued", 2),
                             message("team:team-a", "Your services this week", 2)])
    yield from _in_place_of(WEEKLY, fake)


@pytest.fixture
def drops() -> Iterator[FakeDropAlerts]:
    fake = FakeDropAlerts({"payments": "team-a", "ledger": "team-a", "search": "team-b"})
    yield from _in_place_of(DROPS, fake)


def _in_place_of(name: str, fake: T) -> Iterator[T]:
    """Register ``fake`` as the builder ``name`` for one test, then put the real one back."""
    real = builders.get(name)
    builders.unregister(name)
    builders.register(name)(fake)
    yield fake
    builders.unregister(name)
    builders.register(name)(real)


T = TypeVar("T")
Configure = Callable[..., Settings]


@pytest.fixture
def configure(
    database_url: str, sample: Path, slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch
) -> Configure:
    """Settings pointing at the stand-in: ``mode`` "bot" (token), "webhook", or None."""
    for name in SECRET_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def make(mode: str | None = "bot", *, teams: dict[str, str] | None = None,
             level_drops: bool = False, **slack_settings: Any) -> Settings:
        section: dict[str, Any] = {**FAST, "api_url": slack.api_url,
                                   "channel": "#platform-standards", "teams": teams or {},
                                   **slack_settings}
        for name in SECRET_VARIABLES[:2]:
            monkeypatch.delenv(name, raising=False)
        if mode == "bot":
            monkeypatch.setenv("LEVELSET_SLACK_TOKEN", slack.token)
        elif mode == "webhook":
            monkeypatch.setenv("LEVELSET_SLACK_WEBHOOK_URL", slack.webhook_url)
        config = write_config(sample, database_url, report={
            "timezone": "Europe/Berlin", "link_base_url": "https://levelset.internal",
            "slack": section}, notify={"level_drops": level_drops})
        monkeypatch.setenv("LEVELSET_CONFIG", str(config))
        get_settings.cache_clear()
        return load_settings(config)

    return make


def config_path(settings: Settings) -> str:
    """The settings file ``configure`` wrote (commands take it with --config)."""
    import os

    return os.environ["LEVELSET_CONFIG"]
