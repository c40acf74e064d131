"""The weekly report: a golden week read from stored history (both databases), per-team
views, and long weeks split within Slack's limits (pure)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event

from engine.evaluation import RuleStatus
from engine.jobs import run_evaluation
from engine.reports.blocks import violations
from engine.reports.links import Links
from engine.reports.messages import Message
from engine.reports.weekly import View, WeekData, render, scorecard_weeks, weekly_report
from engine.reports.wording import CardInfo
from engine.settings import ReportSettings, Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.history.as_of import LevelCount, ResultAsOf
from engine.storage.history.changes import CausedChange, RuleCause
from engine.storage.history.diff import Direction
from tests.reports.week import NOW, build_week

GOLDEN = Path(__file__).parent / "golden" / "weekly.json"
REGENERATE = "LEVELSET_REGENERATE_GOLDEN"  # set to 1 to rewrite the golden file
REPORT = {"timezone": "Europe/Berlin", "link_base_url": "https://levelset.example.com",
          "slack": {"channel": "#platform-standards", "teams": {"team-a": "#team-a"}}}


def as_json(messages: list[Message]) -> list[dict[str, Any]]:
    return [{"route": m.route, "text": m.text, "blocks": m.blocks} for m in messages]


def all_text(message: Message) -> str:
    return json.dumps(message.blocks, ensure_ascii=False)


def test_a_week_of_promotions_and_regressions_matches_the_golden_report(
    settings: Settings, sample: Path
) -> None:
    build_week(settings, sample)
    report = ReportSettings.model_validate(REPORT)
    with session_scope(engine_for(settings.database_url)) as session:
        found = as_json(weekly_report(session, now=NOW, settings=report))
    if os.environ.get(REGENERATE):
        GOLDEN.write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert found == json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert [m["route"] for m in found] == ["summary", "team:team-a"]
    for message in found:
        assert violations(message["blocks"]) == []


def test_a_team_sees_only_its_own_services(settings: Settings, sample: Path) -> None:
    build_week(settings, sample)
    report = ReportSettings.model_validate(
        {**REPORT, "slack": {"teams": {"team-b": "#b", "team-a": "#a", "nobody": "#n"}}})
    with session_scope(engine_for(settings.database_url)) as session:
        sent = weekly_report(session, now=NOW, settings=report)
    by_route: dict[str, str] = {}
    for message in sent:
        by_route[message.route] = by_route.get(message.route, "") + all_text(message)
    assert list(by_route) == ["summary", "team:nobody", "team:team-a", "team:team-b"]
    assert all(s in by_route["summary"] for s in ("payments", "ledger", "search", "team-x:billing"))
    assert "payments" in by_route["team:team-a"] and "ledger" in by_route["team:team-a"]
    assert "search" not in by_route["team:team-a"] and "billing" not in by_route["team:team-a"]
    assert "search" in by_route["team:team-b"] and "team-x:billing" in by_route["team:team-b"]
    assert "payments" not in by_route["team:team-b"] and "ledger" not in by_route["team:team-b"]
    assert "No service owned by nobody is graded" in by_route["team:nobody"]


def test_the_report_reads_a_few_queries_however_many_services(
    settings: Settings, sample: Path
) -> None:
    """Reads cost the same for 4 services as for 40: no query per service."""
    build_week(settings, sample)
    costs = []
    for services in (4, 40):
        if services > 4:
            many = "---\n".join(
                f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: s{i}\n"
                f"spec:\n  type: service\n  lifecycle: production\n  owner: team-{i % 3}\n"
                for i in range(services - 4))
            (sample / "catalog" / "many.yaml").write_text(many)
            run_evaluation(settings, trigger="cli", now=NOW - timedelta(hours=1))
        engine = engine_for(settings.database_url)
        statements: list[str] = []

        def listener(*args: Any, seen: list[str] = statements) -> None:
            seen.append(args[2])

        event.listen(engine, "before_cursor_execute", listener)
        try:
            with session_scope(engine) as session:
                weekly_report(session, now=NOW, settings=ReportSettings.model_validate(REPORT))
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        costs.append(sum(s.lstrip().upper().startswith("SELECT") for s in statements))
    # scorecards; levels now and a week ago, changes, results: run, rows, versions each
    assert costs == [13, 13]


# --- pure: long weeks, names, links ----------------------------------------------------------

READINESS = CardInfo.from_definition("readiness", {
    "title": "R&D <readiness>",
    "levels": [{"name": "Bronze", "rank": 1}, {"name": "Silver", "rank": 2},
               {"name": "Gold", "rank": 3}],
    "rules": [{"name": "has-readme", "title": "README & docs", "level": "Bronze"},
              {"name": "has-codeowners", "level": "Silver"},
              {"name": "availability", "level": "Gold"}],
})
UNTIL = datetime(2026, 1, 12, 8, tzinfo=UTC)


def week_of(changes: list[CausedChange], results: list[ResultAsOf]) -> WeekData:
    counts = [LevelCount("readiness", r.owner, READINESS.levels[r.rank - 1] if r.rank else None,
                         r.rank, 1) for r in results]
    return WeekData(UNTIL - timedelta(days=7), UNTIL, (READINESS,), tuple(counts), (),
                    tuple(changes), tuple(results))


def change(service: str, owner: str, direction: Direction, at: datetime) -> CausedChange:
    up = direction == Direction.PROMOTION
    return CausedChange(
        service=service, owner=owner, scorecard="readiness", at=at, run_id=1,
        previous="Bronze" if up else "Silver", level="Silver" if up else "Bronze",
        previous_rank=1 if up else 2, rank=2 if up else 1, direction=direction,
        causes=(RuleCause("has-codeowners", RuleStatus.PASS if up else RuleStatus.FAIL),),
        version_changed=False)


def view(owner: str | None = None, base: str | None = "https://levelset.internal") -> View:
    return View("summary" if owner is None else f"team:{owner}", owner, ZoneInfo("UTC"),
                Links(base))


def change_rows(sent: list[Message]) -> list[str]:
    rows = []
    for message in sent:
        for block in message.blocks:
            text = block.get("text", {}).get("text", "")
            if text.startswith(("*▲ Promoted*", "*▼ Regressed*")):
                rows += text.split("\n")[1:]
    return rows


def test_300_services_changing_on_one_scorecard_split_into_messages_slack_accepts() -> None:
    changes = [change(f"team-x/service-{i:03d}", "team-x",
                      Direction.PROMOTION if i % 3 else Direction.REGRESSION,
                      UNTIL - timedelta(days=6, minutes=-i)) for i in range(300)]
    results = [ResultAsOf(c.service, c.owner, "readiness", c.rank,
                          {"availability": RuleStatus.FAIL}) for c in changes]
    data = week_of(changes, results)
    sent = render(scorecard_weeks(data), data, view())
    assert len(sent) > 2
    for i, message in enumerate(sent, start=1):
        assert violations(message.blocks) == []
        assert message.blocks[0]["text"]["text"].endswith(f"({i}/{len(sent)})")
        assert message.route == "summary"
    rows = change_rows(sent)
    promoted = [c.service for c in changes if c.direction == Direction.PROMOTION]
    regressed = [c.service for c in changes if c.direction == Direction.REGRESSION]
    expected = [f"/services/{s.replace('/', ':')}/scorecards/readiness|{s}>"
                for s in promoted + regressed]
    assert len(rows) == 300
    assert all(e in row for e, row in zip(expected, rows, strict=True))
    # Every message after the first says what continues: the scorecard, then the list.
    for message in sent[1:]:
        assert message.blocks[2]["elements"][0]["text"] == "*R&amp;D &lt;readiness&gt;* (continued)"
    near = all_text(sent[-1])
    assert "One rule from the next level" in near and "and 185 more" in near


def test_names_are_escaped_and_links_left_out_without_a_base_url() -> None:
    results = [ResultAsOf("a-service", "R&D <core>", "readiness", 0,
                          {"has-readme": RuleStatus.FAIL})]
    data = week_of([change("a-service", "R&D <core>", Direction.REGRESSION, UNTIL)], results)
    sent = render(scorecard_weeks(data, "R&D <core>"), data, view("R&D <core>", base=None))
    text = json.dumps(sent[0].blocks[1:], ensure_ascii=False)  # mrkdwn: all but the header
    assert "R&amp;D &lt;readiness&gt;" in text and "services owned by *R&amp;D &lt;core&gt;*" in text
    assert "<" not in text and ">" not in text.replace("→", "")  # no link, no raw markup
    assert "• a-service → *Bronze*: README &amp; docs" in text
    assert "Silver → *Bronze* · has-codeowners fails · Mon 12 Jan" in text
    assert sent[0].blocks[0]["text"]["text"] == "Scorecard report for R&D <core>: week to Mon 12 Jan 2026"


def test_a_quiet_week_says_so() -> None:
    results = [ResultAsOf("a-service", "team", "readiness", 3, {})]
    data = week_of([], results)
    sent = render(scorecard_weeks(data), data, view())
    text = all_text(sent[0])
    assert "No promotions or regressions this week." in text
    assert "One rule from the next level" not in text and "Failing most often" not in text
    assert [m.text for m in sent] == ["Scorecard report, week to 12 Jan 2026: 0 promotions, "
                                      "0 regressions"]


def test_a_bad_time_zone_is_bad_input() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=re.escape("'Mars/Base' is not an IANA")):
        ReportSettings(timezone="Mars/Base")


def test_beyond_300_changes_a_list_links_to_every_change_of_the_week() -> None:
    changes = [change(f"service-{i:03d}", "team", Direction.PROMOTION, UNTIL - timedelta(hours=1))
               for i in range(350)]
    data = week_of(changes, [])
    sent = render(scorecard_weeks(data), data, view())
    rows = change_rows(sent)
    assert len(rows) == 301 and "|service-299>" in rows[299]
    assert rows[300] == (
        "_…and 50 more: <https://levelset.internal/api/v1/changes?scorecard=readiness&amp;"
        "since=2026-01-05T08%3A00%3A00Z&amp;until=2026-01-12T08%3A00%3A00Z&amp;limit=1000"
        "|every change of the week>_")
    assert all(violations(m.blocks) == [] for m in sent)
