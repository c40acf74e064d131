"""Level-drop alerts: a message per regression of a stored run, saying what blocks now.

A regression is a ``LevelChanged`` event that is not a first grade and lowers the rank. Its
message names the service, the scorecard, the level before and after, and the rules that
now block the level above (with their status, what they found, and their remediation from
the scorecard version in use). Each comes with a de-duplication key unique to the
regression: the service, scorecard, the run that stored the change and the new level, so
delivering the same run's events twice posts once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from sqlmodel import Session

from engine.evaluation import RuleStatus
from engine.reports.blocks import Blocks, Part, Rows, clip_plain, escape, link, messages, section
from engine.reports.links import Links
from engine.reports.messages import Message
from engine.reports.wording import SUMMARY, CardInfo, does, moment_text, team_route, zone_of
from engine.settings import ReportSettings
from engine.storage.history.changes import ServiceLevelChange, service_level_changes
from engine.storage.history.diff import LevelChanged
from engine.storage.outcomes import CurrentRules, current_rules
from engine.storage.scorecards import scorecards_in_use

log = logging.getLogger("levelset.reports")

BLOCKING_SHOWN = 10  # rules listed per alert; the rest are counted


def regressions(events: Sequence[LevelChanged]) -> list[LevelChanged]:
    return [e for e in events if not e.first and e.after_rank < e.before_rank]


def drop_alerts(
    session: Session, *, events: Sequence[LevelChanged], settings: ReportSettings
) -> list[tuple[str, Message]]:
    """(de-duplication key, message) for each regression among ``events``, in their order;
    routed to the owner's team ("team:<owner>") when it is in ``slack.teams``, else to the
    summary channel."""
    drops = regressions(events)
    if not drops:
        return []
    services = {e.service for e in drops}
    changes = service_level_changes(session, services=services)
    cards = {c.name: CardInfo.from_definition(c.name, c.definition)
             for c in scorecards_in_use(session)}
    current = {(r.service, r.scorecard): r for r in current_rules(session, services=services)}
    zone, links = zone_of(settings), Links(settings.link_base_url)
    alerts = []
    for event in drops:
        card = cards.get(event.scorecard) or CardInfo(event.scorecard, event.scorecard, (), {})
        change = change_of(event, changes.get((event.service, event.scorecard), []))
        now = current.get((event.service, event.scorecard))
        owner = change.owner if change else now.owner if now else None
        route = team_route(owner) if owner is not None and owner in settings.slack.teams else SUMMARY
        run = str(change.run_id) if change else "unrecorded"
        if change is None:
            log.warning("no stored level change for %s on %s", event.service, event.scorecard)
        key = f"level-drop:{event.service}:{event.scorecard}:{run}:{event.after or 'none'}"
        alerts.append((key, drop_message(event, card, now, change, route=route, zone=zone,
                                         links=links)))
    return alerts


def change_of(event: LevelChanged, changes: Sequence[ServiceLevelChange]) -> ServiceLevelChange | None:
    """The stored change an event reports: the newest with its ranks (else the newest)."""
    for change in changes:
        if (change.previous_rank, change.rank) == (event.before_rank, event.after_rank):
            return change
    return changes[0] if changes else None


def drop_message(
    event: LevelChanged,
    card: CardInfo,
    now: CurrentRules | None,
    change: ServiceLevelChange | None,
    *,
    route: str,
    zone: ZoneInfo,
    links: Links,
) -> Message:
    """One regression as one message (pure)."""
    before, after = event.before or "no level", event.after or "no level"
    title = f"{event.service} dropped to {after} on {clip_plain(card.title, 60)}"
    upper = card.levels[event.after_rank] if event.after_rank < len(card.levels) else event.before
    text = (f"*{link(links.service(event.service, event.scorecard), event.service)}* dropped "
            f"from *{escape(before)}* to *{escape(after)}* on "
            f"*{link(links.leaderboard(event.scorecard), clip_plain(card.title, 100))}*.")
    about = [f"`{escape(event.scorecard)}`" + (f" · {moment_text(change.at, zone)} ({zone.key})"
                                        f" · run {change.run_id}" if change else "")]
    rows = [blocking_row(rule, card, now.statuses if now else {}, now.messages if now else {})
            for rule in event.blocking[:BLOCKING_SHOWN]]
    if len(event.blocking) > BLOCKING_SHOWN:
        rows.append(f"_…and {len(event.blocking) - BLOCKING_SHOWN} more_")
    parts: list[Part] = [Blocks((section(text),)), Rows(f"*What blocks {escape(upper or 'the next level')} now*",
                                  tuple(rows), empty="_No rule is reported as blocking._")]
    fallback = f"{event.service} dropped from {before} to {after} on {card.title}"
    return messages(route=route, title=title, about=about, fallback=fallback, parts=parts)[0]


def blocking_row(
    rule: str, card: CardInfo, statuses: Mapping[str, RuleStatus], found: Mapping[str, str]
) -> str:
    """``• *Has a README* (Bronze) fails: github.has_readme is false · Fix: Add a README.md.``"""
    info = card.rule(rule)
    level = f" ({escape(info.level)})" if info.level else ""
    status = statuses.get(rule)
    what = f" {does(status)}" if status is not None else ""
    message = f": {escape(clip_plain(found[rule], 300))}" if found.get(rule) else ""
    fix = (f" · _Fix:_ {escape(clip_plain(' '.join(info.remediation.split()), 400))}"
           if info.remediation else "")
    return f"• *{escape(clip_plain(info.display, 80))}*{level}{what}{message}{fix}"

