"""How reports name things: scorecards, levels and rules as their authors wrote them, rule
statuses as verbs, routes, and moments in the report's time zone."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from engine.evaluation import RuleStatus
from engine.reports.blocks import escape
from engine.settings import ReportSettings

SUMMARY = "summary"  # the route of the platform channel


def team_route(owner: str) -> str:
    """The route of a team's channel."""
    return f"team:{owner}"


@dataclass(frozen=True)
class RuleInfo:
    name: str
    display: str  # the rule's title, else its name: as people wrote it
    level: str | None
    rank: int  # its level's rank; 0: it counts for the score only
    remediation: str | None = None


@dataclass(frozen=True)
class CardInfo:
    """A scorecard in use: its title, levels (lowest first) and rules (in file order)."""

    name: str
    title: str
    levels: tuple[str, ...]
    rules: Mapping[str, RuleInfo]

    @classmethod
    def from_definition(cls, name: str, definition: Mapping[str, Any]) -> CardInfo:
        """From a stored version's definition (``scorecard_definition``)."""
        levels = tuple(lv["name"] for lv in sorted(definition.get("levels", []),
                                                   key=lambda lv: lv["rank"]))
        rank = {level: i for i, level in enumerate(levels, start=1)}
        rules = {
            r["name"]: RuleInfo(r["name"], r.get("title") or r["name"], r.get("level"),
                                rank.get(r.get("level") or "", 0), r.get("remediation"))
            for r in definition.get("rules", [])
        }
        return cls(name, definition.get("title") or name, levels, rules)

    def rule(self, name: str) -> RuleInfo:
        """A rule by name; one the version in use no longer has is named as it was stored."""
        return self.rules.get(name) or RuleInfo(name, name, None, 0)


_VERBS = {RuleStatus.PASS: "passes", RuleStatus.EXEMPT: "is exempted", RuleStatus.FAIL: "fails",
          RuleStatus.UNKNOWN: "is unknown", RuleStatus.ERROR: "errors"}


def does(status: RuleStatus | None) -> str:
    """A status as what the rule does: "fails", "is unknown"; None: no longer graded."""
    return "is no longer graded" if status is None else _VERBS[status]


def level_text(level: str | None) -> str:
    """A level as mrkdwn."""
    return escape(level) if level is not None else "no level"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def zone_of(settings: ReportSettings) -> ZoneInfo:
    """The report's zone (checked when the settings loaded)."""
    return ZoneInfo(settings.timezone)


def day(moment: datetime, zone: ZoneInfo) -> str:
    """``Tue 6 Jan``"""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b}"


def moment_text(moment: datetime, zone: ZoneInfo) -> str:
    """``Mon 12 Jan 2026 09:00``"""
    local = moment.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y %H:%M}"
