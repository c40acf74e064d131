"""A stored run and its level drops: the one policy behind every trigger of an evaluation.

The API's requested runs, both schedulers and ``levelset evaluate --config`` all call
``evaluate_and_notify``; they differ only in how the drops travel to Slack from there (a
thread of its own, a Celery task, or inline so the command can print each channel), which
each passes as its ``DropSender``. Whether there is anything to send is decided here, once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from engine.jobs.evaluation import RunOutcome, run_evaluation
from engine.settings import Settings
from engine.storage.history.diff import Event, LevelChanged
from engine.storage.models import RunTrigger


class DropSender(Protocol):
    """Delivers the level drops of stored run ``run_id``; never raises for the run's sake."""

    def __call__(self, settings: Settings, drops: Sequence[Event], /, *, run_id: int) -> object: ...


def regressions(events: Iterable[Event]) -> list[LevelChanged]:
    """The level changes that are drops: a service that had a level and lost rank."""
    return [event for event in events if isinstance(event, LevelChanged) and not event.first
            and event.after_rank < event.before_rank]


def drops_to_notify(settings: Settings, events: Iterable[Event]) -> list[LevelChanged]:
    """The drops among ``events`` that are to be notified: none unless ``notify.level_drops``."""
    return regressions(events) if settings.notify.level_drops else []


def evaluate_and_notify(
    settings: Settings,
    *,
    trigger: RunTrigger,
    send_drops: DropSender,
    service: str | None = None,
    now: datetime | None = None,
    run_key: str | None = None,
    run_id: int | None = None,
) -> RunOutcome:
    """Evaluate and store a run (``run_evaluation``), then hand its level drops, if any are to
    be notified, to ``send_drops``. The run is stored before anything is sent, and what
    becomes of the notifications changes nothing about it."""
    outcome = run_evaluation(settings, trigger=trigger, service=service, now=now,
                             run_key=run_key, run_id=run_id)
    drops = drops_to_notify(settings, outcome.events)
    if drops:
        send_drops(settings, drops, run_id=outcome.run_id)
    return outcome
