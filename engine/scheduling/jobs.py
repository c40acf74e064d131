"""The schedule table's jobs, as both schedulers run them: ``levelset serve``'s embedded
APScheduler (``engine.scheduling.embedded``) and Celery beat's workers
(``engine.scheduling.celery_app``) map each job to a call of the function here.

One error policy for every job and both schedulers: a job that fails on purpose (a
``LevelsetError``: bad settings or inputs, a source that cannot be read, a run that could not
complete) logs one line naming the job and the reason and raises ``JobFailed``, so the
scheduler records the failure (Celery: the task's state; APScheduler: its job error event),
and the next time the schedule fires runs the job again. Only the weekly report is tried
again sooner, by ``engine.notify.jobs.report_retry``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from collectors.base import CollectionResult
from core.errors import LevelsetError
from engine.jobs import CollectionStored, prune_history, run_collection
from engine.jobs.drops import DropSender, evaluate_and_notify
from engine.notify.jobs import DeliveryReport, level_drops_in_background, report_retry
from engine.notify.jobs import scheduled_report as send_scheduled_report
from engine.scheduling.schedule import Job
from engine.settings import Settings
from engine.storage.models import RunTrigger

log = logging.getLogger("levelset.schedule")

P = ParamSpec("P")
R = TypeVar("R")


class JobFailed(LevelsetError):
    """A scheduled job that could not do its work; the reason was logged with the job's name.

    Its only argument is the message, so a Celery result backend can rebuild it."""


def _policy(job: Job) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except JobFailed:
                raise
            except LevelsetError as error:
                log.error("%s failed: %s", job.value, error)
                raise JobFailed(f"{job.value} failed: {error}") from error
        return run
    return wrap


def this_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


@_policy(Job.evaluate)
def evaluate(
    settings: Settings, *, trigger: RunTrigger = RunTrigger.SCHEDULE,
    run_key: str | None = None, service: str | None = None,
    send_drops: DropSender = level_drops_in_background,
) -> int:
    """One scheduled run, and its level drops notified; returns the run id. The run key makes
    a second delivery store the run once: without one, the run is keyed and clocked by the
    minute the schedule fired (a double fire in that minute stores once)."""
    now = None
    if run_key is None:
        now = this_minute()
        run_key = f"{trigger.value}:{now.isoformat()}"
    outcome = evaluate_and_notify(settings, trigger=trigger, service=service, now=now,
                                  run_key=run_key, send_drops=send_drops)
    return outcome.run_id


@_policy(Job.collect)
def collect(settings: Settings) -> list[tuple[CollectionResult, CollectionStored]]:
    """Run the configured collectors and store their facts (none configured: nothing to do,
    the runs read recorded facts)."""
    if not settings.collectors:
        return []
    results = run_collection(settings)
    for result, _ in results:
        log.info("collected %s: %d ok, %d failed, %d requests", result.source,
                 len(result.facts), len(result.failures), result.requests)
    return results


@_policy(Job.prune)
def prune(settings: Settings) -> dict[str, int]:
    """Delete history older than retention_days."""
    counts = prune_history(settings)
    log.info("pruned history: %s", counts)
    return counts


@_policy(Job.discover)
def discover(settings: Settings) -> dict[str, int]:
    """Rewrite the catalog directory's discovered entities from the GitHub organisation."""
    from engine.discovery import scheduled_discovery

    found = scheduled_discovery(settings)
    log.info("discovered: %s", found)
    return found


@dataclass(frozen=True)
class ReportAttempt:
    """One attempt at the weekly report: what it did, and when to try the week again."""

    week_ending: datetime
    report: DeliveryReport | None  # None: no Slack destination is configured
    retry_in: timedelta | None

    def summary(self) -> dict[str, Any] | None:
        return self.report.summary() if self.report is not None else None


@_policy(Job.report)
def report(settings: Settings, *, now: datetime | None = None, attempt: int = 0) -> ReportAttempt:
    """Post the weekly report for the week ending ``now`` (once per week and channel)."""
    week_ending = now or this_minute()
    sent = send_scheduled_report(settings, now=week_ending)
    return ReportAttempt(week_ending, sent, report_retry(sent, attempt=attempt))
