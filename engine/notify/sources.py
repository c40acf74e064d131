"""Where messages come from: the weekly report and the level-drop alerts of ``engine.reports``.

Delivery asks for a builder by name, so another report (or a test's fake) can take the
place of the one ``engine.reports`` provides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlmodel import Session

from core.registry import Registry
from engine.reports.drops import drop_alerts
from engine.reports.messages import Message
from engine.reports.weekly import weekly_report
from engine.settings import ReportSettings
from engine.storage.history.diff import LevelChanged

WEEKLY = "weekly"
DROPS = "drops"


class WeeklyBuilder(Protocol):
    """The weekly report for the 7 days ending at ``now``, from stored history, in order."""

    def __call__(self, session: Session, *, now: datetime,
                 settings: ReportSettings) -> list[Message]: ...


class DropBuilder(Protocol):
    """One message per regression among ``events``, each with its de-duplication key."""

    def __call__(self, session: Session, *, events: Sequence[LevelChanged],
                 settings: ReportSettings) -> list[tuple[str, Message]]: ...


builders: Registry[Callable[..., Any]] = Registry("message builder")
builders.register(WEEKLY)(weekly_report)
builders.register(DROPS)(drop_alerts)


def weekly_builder() -> WeeklyBuilder:
    return cast(WeeklyBuilder, builders.get(WEEKLY))


def drop_builder() -> DropBuilder:
    return cast(DropBuilder, builders.get(DROPS))
