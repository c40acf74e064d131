"""Everything sent to Slack is escaped: a mention or a link in any value that comes from the
catalog, a scorecard, facts or rules reaches Slack as text, in the blocks and in the
top-level ``text`` (what notifications show) alike. Pure: messages built from data."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.evaluation import RuleStatus
from engine.reports.drops import drop_message
from engine.reports.links import Links
from engine.reports.messages import Message
from engine.reports.weekly import View, WeekData, render, scorecard_weeks
from engine.reports.wording import CardInfo
from engine.storage.history.as_of import LevelCount, ResultAsOf
from engine.storage.history.changes import CausedChange, RuleCause, ServiceLevelChange
from engine.storage.history.diff import Direction, LevelChanged
from engine.storage.outcomes import CurrentRules

BASE = "https://levelset.internal"
LINKS = Links(BASE)
ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 2, 8, tzinfo=UTC)


def hostile(where: str) -> str:
    """A value that would ping everyone, link elsewhere and open an escape in Slack."""
    return f"<!channel> {where} <https://evil.example|click> <@U0ADMIN> <#C0GENERAL> &amp;"


SERVICE, OWNER, SCORECARD = hostile("service"), hostile("owner"), hostile("scorecard")
LOW, HIGH = hostile("level-1"), hostile("level-2")
RULE = hostile("rule")
CARD = CardInfo.from_definition(SCORECARD, {
    "title": hostile("title"),
    "levels": [{"name": LOW, "rank": 1}, {"name": HIGH, "rank": 2}],
    "rules": [{"name": RULE, "title": hostile("rule title"), "level": HIGH,
               "remediation": hostile("remediation")}],
})


def texts(message: Message) -> list[str]:
    """Every text Slack reads as mrkdwn: the top-level text, and each mrkdwn element."""
    found = [message.text]

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") == "mrkdwn":
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(message.blocks)
    return found


def assert_inert(messages: list[Message], *, shown: list[str]) -> None:
    """No mention, channel link or outside link anywhere; only the report's own links; and
    each hostile value is shown as text (escaped), so nothing was dropped to be safe."""
    every = "\n".join(text for message in messages for text in texts(message))
    for text in (text for message in messages for text in texts(message)):
        for opening in re.finditer("<", text):
            assert text.startswith(f"<{BASE}/", opening.start()), text
        assert not re.search(r"&(?!amp;|lt;|gt;)", text), text  # every "&" begins an escape
    for where in shown:
        assert re.search(f"&lt;!channel&gt; {where} &lt;https://evil.example[|¦]click&gt;",
                         every), where
    assert all(message.text.startswith(("&lt;!channel&gt;", "Scorecard report"))
               for message in messages)


def test_a_drop_alert_escapes_every_value_in_its_blocks_and_its_text() -> None:
    event = LevelChanged(SERVICE, SCORECARD, HIGH, LOW, 2, 1, (RULE,))
    now = CurrentRules(SERVICE, OWNER, SCORECARD, 1, 50.0, {RULE: RuleStatus.FAIL},
                       {RULE: f"got github.topic = {hostile('fact')!r}"})
    change = ServiceLevelChange(SERVICE, OWNER, SCORECARD, 7, NOW, 2, 1)
    alert = drop_message(event, CARD, now, change, route="summary", zone=ZONE, links=LINKS)
    assert_inert([alert], shown=["service", "level-1", "level-2", "title", "rule title",
                                 "remediation", "fact"])
    assert "&lt;!channel&gt; scorecard" in alert.blocks[1]["elements"][0]["text"]
    # the top-level text names the service, the levels and the scorecard, all escaped
    for where in ("service", "level-1", "level-2", "title"):
        assert f"&lt;!channel&gt; {where} &lt;https://evil.example|click&gt;" in alert.text


def test_the_weekly_report_escapes_every_value_in_its_blocks_and_its_text() -> None:
    since = NOW - timedelta(days=7)
    change = CausedChange(SERVICE, OWNER, SCORECARD, NOW - timedelta(days=1), 7, HIGH, LOW, 2,
                          1, Direction.REGRESSION, (RuleCause(RULE, RuleStatus.FAIL),), False)
    data = WeekData(
        since=since, until=NOW, cards=(CARD,),
        counts_now=(LevelCount(SCORECARD, OWNER, LOW, 1, 1),),
        counts_then=(LevelCount(SCORECARD, OWNER, HIGH, 2, 1),),
        changes=(change,),
        results=(ResultAsOf(SERVICE, OWNER, SCORECARD, 1, {RULE: RuleStatus.FAIL}),))
    summary = render(scorecard_weeks(data), data, View("summary", None, ZONE, LINKS))
    team = render(scorecard_weeks(data, OWNER), data, View("team:x", OWNER, ZONE, LINKS))
    assert_inert(summary, shown=["level-1", "level-2", "title", "rule title", "scorecard"])
    assert_inert(team, shown=["owner", "level-1", "title"])
    assert team[0].text.startswith("Scorecard report for &lt;!channel&gt; owner &lt;https://")
    # the service is a link to its own page, its name shown as the (escaped) label
    assert any("|&lt;!channel&gt; service &lt;https://evil.example¦click&gt;" in text
               for message in summary for text in texts(message))
