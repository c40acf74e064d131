"""The weekly scorecard report, as Slack messages, from stored history only (never evaluates).

The week is the 7 days ending at ``now``. Per scorecard: services per level at its end and
the change since its start; the promotions and regressions during it, each with the rules
that caused it; services one rule from their next level, naming the rule; the rules failing
most often. A summary of every service goes to the platform channel ("summary"), and each
team listed in ``report.slack.teams`` gets the same view of its own services ("team:<owner>").

Reading (``read_week``) is apart from what the week says (``scorecard_weeks``) and how it is
shown (``render``): the last two are pure, and tested without a database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from engine.evaluation import RuleStatus
from engine.reports.blocks import (
    Blocks,
    Part,
    Rows,
    clip_plain,
    divider,
    escape,
    field_sections,
    link,
    messages,
    section,
)
from engine.reports.links import Links
from engine.reports.messages import Message
from engine.reports.wording import (
    SUMMARY,
    CardInfo,
    count,
    day,
    does,
    level_text,
    moment_text,
    team_route,
    zone_of,
)
from engine.settings import ReportSettings
from engine.storage.history.as_of import LevelCount, ResultAsOf, level_counts_as_of, results_as_of
from engine.storage.history.changes import CausedChange, RuleCause, level_changes_with_causes
from engine.storage.history.diff import Direction
from engine.storage.scorecards import scorecards_in_use

WEEK = timedelta(days=7)
CHANGES_SHOWN = 300  # promotions (and regressions) listed per scorecard; the rest are linked
NEAR_SHOWN = 15  # services one rule away listed per scorecard; the rest are counted
FAILING_SHOWN = 5  # rules failing most often listed per scorecard
CAUSES_SHOWN = 3  # rules named per level change; the rest are counted


# --- what the week says ------------------------------------------------------------------


@dataclass(frozen=True)
class WeekData:
    """Everything the report reads, for every service: one read serves every view."""

    since: datetime
    until: datetime
    cards: tuple[CardInfo, ...]
    counts_now: tuple[LevelCount, ...]
    counts_then: tuple[LevelCount, ...]
    changes: tuple[CausedChange, ...]
    results: tuple[ResultAsOf, ...]  # as of ``until``


@dataclass(frozen=True)
class NearMiss:
    """A service one rule from its next level."""

    service: str
    next_level: str
    rule: str
    status: RuleStatus


@dataclass(frozen=True)
class FailingRule:
    rule: str
    failing: int
    unknown: int  # unknown or erroring: blocking, but not failures
    graded: int  # services graded on the scorecard


@dataclass(frozen=True)
class ScorecardWeek:
    card: CardInfo
    now: Mapping[str | None, int]  # level (None: no level) -> services
    then: Mapping[str | None, int]
    changes: tuple[CausedChange, ...]
    near: tuple[NearMiss, ...]
    failing: tuple[FailingRule, ...]

    def promotions(self) -> list[CausedChange]:
        return [c for c in self.changes if c.direction == Direction.PROMOTION]

    def regressions(self) -> list[CausedChange]:
        return [c for c in self.changes if c.direction == Direction.REGRESSION]


def read_week(session: Session, *, now: datetime) -> WeekData:
    """What the week ending at ``now`` holds, read from stored history (a few queries)."""
    since = now - WEEK
    return WeekData(
        since=since, until=now,
        cards=tuple(CardInfo.from_definition(c.name, c.definition)
                    for c in scorecards_in_use(session)),
        counts_now=tuple(level_counts_as_of(session, at=now)),
        counts_then=tuple(level_counts_as_of(session, at=since)),
        changes=tuple(level_changes_with_causes(session, since=since, until=now)),
        results=tuple(results_as_of(session, at=now)),
    )


def scorecard_weeks(data: WeekData, owner: str | None = None) -> list[ScorecardWeek]:
    """The week of each scorecard, for the services of ``owner`` (None: every service);
    a scorecard none of them was graded on is left out of a team's view."""
    def by_card(items: Iterable[Any]) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for item in items:
            if owner is None or item.owner == owner:
                found.setdefault(item.scorecard, []).append(item)
        return found

    now, then = by_card(data.counts_now), by_card(data.counts_then)
    changes, results = by_card(data.changes), by_card(data.results)
    weeks = []
    for card in data.cards:
        name = card.name
        if owner is not None and not (now.get(name) or then.get(name) or changes.get(name)):
            continue
        weeks.append(ScorecardWeek(
            card, _distribution(now.get(name, [])), _distribution(then.get(name, [])),
            tuple(changes.get(name, [])), near_misses(card, results.get(name, [])),
            failing_rules(card, results.get(name, []))))
    return weeks


def _distribution(counts: Iterable[LevelCount]) -> dict[str | None, int]:
    found: dict[str | None, int] = {}
    for c in counts:
        found[c.level] = found.get(c.level, 0) + c.services
    return found


def near_misses(card: CardInfo, results: Iterable[ResultAsOf]) -> tuple[NearMiss, ...]:
    """Services whose next level is blocked by exactly one rule (of it or a lower level)."""
    found = []
    for result in results:
        if result.rank >= len(card.levels):
            continue
        blocking = [(rule, status) for rule, status in result.unsatisfied.items()
                    if 0 < card.rule(rule).rank <= result.rank + 1]
        if len(blocking) == 1:
            rule, status = blocking[0]
            found.append(NearMiss(result.service, card.levels[result.rank], rule, status))
    return tuple(sorted(found, key=lambda n: n.service))


def failing_rules(card: CardInfo, results: Sequence[ResultAsOf]) -> tuple[FailingRule, ...]:
    """The rules failing for the most services, most first (ties in the scorecard's order)."""
    failing: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for result in results:
        for rule, status in result.unsatisfied.items():
            if status == RuleStatus.FAIL:
                failing[rule] += 1
            else:
                unknown[rule] += 1
    order = {name: i for i, name in enumerate(card.rules)}
    ranked = sorted(failing, key=lambda rule: (-failing[rule], order.get(rule, len(order)), rule))
    return tuple(FailingRule(rule, failing[rule], unknown[rule], len(results))
                 for rule in ranked[:FAILING_SHOWN])


# --- how it is shown -----------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """Whose week a set of messages shows, and how to word and link it."""

    route: str
    owner: str | None
    zone: ZoneInfo
    links: Links


def render(weeks: Sequence[ScorecardWeek], data: WeekData, view: View) -> list[Message]:
    """The messages of one view (pure): header, the week's dates, an overview, then a part
    per scorecard; split into as many messages as Slack's limits need."""
    until = data.until.astimezone(view.zone)
    whose = f" for {view.owner}" if view.owner is not None else ""
    title = f"Scorecard report{whose}: week to {until:%a} {until.day} {until:%b %Y}"
    services = len({r.service for r in data.results
                    if view.owner is None or r.owner == view.owner})
    scope = ("all services" if view.owner is None
             else f"services owned by *{escape(view.owner)}*")
    about = [f"{moment_text(data.since, view.zone)} \N{EN DASH} {moment_text(data.until, view.zone)} "
             f"({view.zone.key}) · {scope}"]
    promoted = sum(len(w.promotions()) for w in weeks)
    regressed = sum(len(w.regressions()) for w in weeks)
    moves = f"▲ {count(promoted, 'promotion')} · ▼ {count(regressed, 'regression')}"
    if not weeks:
        nothing = ("No scorecard is in use yet." if view.owner is None else
                   f"No service owned by {escape(view.owner)} is graded on any scorecard.")
        parts: list[Part] = [Blocks((section(nothing),))]
    else:
        parts = [Blocks((section(f"*{count(services, 'service')}* on "
                                 f"{count(len(weeks), 'scorecard')} · {moves}"),))]
        for week in weeks:
            parts += scorecard_parts(week, data, view)
    fallback = (f"Scorecard report{whose}, week to {until.day} {until:%b %Y}: "
                f"{count(promoted, 'promotion')}, {count(regressed, 'regression')}")
    return messages(route=view.route, title=title, about=about, fallback=fallback, parts=parts)


def scorecard_parts(week: ScorecardWeek, data: WeekData, view: View) -> list[Part]:
    """A scorecard's heading and distribution, then its lists."""
    card, links = week.card, view.links
    scope = f"*{escape(clip_plain(card.title, 100))}*"
    total_now, total_then = sum(week.now.values()), sum(week.then.values())
    name = f" · `{escape(card.name)}`" if card.title != card.name else ""
    heading = (f"*{link(links.leaderboard(card.name), clip_plain(card.title, 100))}*{name}\n"
               f"{count(total_now, 'service')} graded {_delta(total_now, total_then)}"
               f" · ▲ {len(week.promotions())} promoted · ▼ {len(week.regressions())} regressed")
    levels: list[str | None] = [*reversed(card.levels), None]
    fields = [f"*{escape(level or 'No level')}*\n{week.now.get(level, 0)} "
              f"{_delta(week.now.get(level, 0), week.then.get(level, 0))}" for level in levels]
    parts: list[Part] = [Blocks((divider(), section(heading), *field_sections(fields)),
                                scope=scope, opens=True)]
    if not week.changes:
        parts.append(Blocks((section("_No promotions or regressions this week._"),), scope=scope))
    for title, changes in (("*▲ Promoted*", week.promotions()),
                           ("*▼ Regressed*", week.regressions())):
        rows = [change_row(c, card, view) for c in changes[:CHANGES_SHOWN]]
        if len(changes) > CHANGES_SHOWN:
            every = links.changes(card.name, data.since, data.until)
            rows.append(f"_…and {len(changes) - CHANGES_SHOWN} more: "
                        f"{link(every, 'every change of the week')}_")
        parts.append(Rows(title, tuple(rows), scope=scope))
    near = [near_row(n, card, links) for n in week.near[:NEAR_SHOWN]]
    if len(week.near) > NEAR_SHOWN:
        near.append(f"_…and {len(week.near) - NEAR_SHOWN} more: "
                    f"{link(links.leaderboard(card.name), 'see the leaderboard')}_")
    parts.append(Rows("*One rule from the next level*", tuple(near), scope=scope))
    parts.append(Rows("*Failing most often*", tuple(failing_row(f, card) for f in week.failing),
                      scope=scope))
    return parts


def change_row(change: CausedChange, card: CardInfo, view: View) -> str:
    """``• service: Bronze → *Silver* · Has a CODEOWNERS file passes · Tue 6 Jan``"""
    causes = [_cause(cause, card) for cause in change.causes[:CAUSES_SHOWN]]
    if len(change.causes) > CAUSES_SHOWN:
        causes.append(f"{len(change.causes) - CAUSES_SHOWN} more")
    if not causes and change.version_changed:
        causes.append("the scorecard changed")
    why = f" · {', '.join(causes)}" if causes else ""
    return (f"• {link(view.links.service(change.service, card.name), change.service)}: "
            f"{level_text(change.previous)} → *{level_text(change.level)}*{why} · "
            f"{day(change.at, view.zone)}")


def _cause(cause: RuleCause, card: CardInfo) -> str:
    return f"{escape(clip_plain(card.rule(cause.rule).display, 80))} {does(cause.status)}"


def near_row(near: NearMiss, card: CardInfo, links: Links) -> str:
    """``• service → *Silver*: Has a CODEOWNERS file`` (and its status unless it fails)."""
    status = "" if near.status == RuleStatus.FAIL else f" ({near.status.value})"
    return (f"• {link(links.service(near.service, card.name), near.service)} → "
            f"*{level_text(near.next_level)}*: {escape(clip_plain(card.rule(near.rule).display, 80))}"
            f"{status}")


def failing_row(failing: FailingRule, card: CardInfo) -> str:
    """``• *Has a CODEOWNERS file* · Silver: failing for 3 of 12 services, 1 unknown``"""
    rule = card.rule(failing.rule)
    level = escape(rule.level) if rule.level else "score only"
    unknown = f", {failing.unknown} unknown" if failing.unknown else ""
    return (f"• *{escape(clip_plain(rule.display, 80))}* · {level}: failing for "
            f"{failing.failing} of {count(failing.graded, 'service')}{unknown}")


def _delta(now: int, then: int) -> str:
    return "(no change)" if now == then else f"({now - then:+d})"


def weekly_report(session: Session, *, now: datetime, settings: ReportSettings) -> list[Message]:
    """The summary messages (route "summary"), then each configured team's (route
    "team:<owner>", teams in name order), each view split into as many messages as needed."""
    zone, links = zone_of(settings), Links(settings.link_base_url)
    data = read_week(session, now=now)
    found = render(scorecard_weeks(data), data, View(SUMMARY, None, zone, links))
    for owner in sorted(settings.slack.teams):
        found += render(scorecard_weeks(data, owner), data,
                        View(team_route(owner), owner, zone, links))
    return found
