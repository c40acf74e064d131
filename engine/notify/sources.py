"""Where messages come from: the weekly report and the level-drop alerts of ``engine.reports``.

Delivery asks for a builder by name. One registered here (a test's fake, another report) is
used instead of the one ``engine.reports`` provides; that one is imported only when asked
for, so delivery does not depend on how a report is rendered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlmodel import Session

from core.errors import LevelsetError
from core.registry import Registry
from engine.reports.messages import Message
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


class ReportUnavailable(LevelsetError):
    """The report module a builder lives in is not part of this installation."""


builders: Registry[Callable[..., Any]] = Registry("message builder")

_DEFAULTS = {WEEKLY: ("engine.reports.weekly", "weekly_report"),
             DROPS: ("engine.reports.drops", "drop_alerts")}


def _builder(name: str) -> Callable[..., Any]:
    if name in builders:
        return builders.get(name)
    module, function = _DEFAULTS[name]
    try:
        found: Callable[..., Any] = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as error:
        raise ReportUnavailable(f"cannot build the {name} messages: {module}.{function} is not "
                                f"available ({error})") from None
    return found


def weekly_builder() -> WeeklyBuilder:
    return cast(WeeklyBuilder, _builder(WEEKLY))


def drop_builder() -> DropBuilder:
    return cast(DropBuilder, _builder(DROPS))
