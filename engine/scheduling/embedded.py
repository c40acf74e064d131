"""The embedded scheduler of ``levelset serve``: APScheduler in the server's process, running
the schedule table's jobs (``engine.scheduling.jobs``) when no Celery beat does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from engine.scheduling import jobs
from engine.scheduling.schedule import Job, scheduled_jobs
from engine.settings import Settings


def report(settings: Settings, scheduler: Any = None, *, now: datetime | None = None,
           attempt: int = 0) -> None:
    """The weekly report; a retry that ``report_retry`` asks for is a one-off job of the
    scheduler (``report-retry``), for the same week."""
    sent = jobs.report(settings, now=now, attempt=attempt)
    if sent.retry_in is not None and scheduler is not None:
        scheduler.add_job(report, "date", run_date=datetime.now(UTC) + sent.retry_in,
                          args=[settings, scheduler],
                          kwargs={"now": sent.week_ending, "attempt": attempt + 1},
                          id="report-retry", replace_existing=True)


# What each job of the schedule table runs in ``levelset serve``.
SCHEDULED: dict[Job, Callable[..., object]] = {
    Job.evaluate: jobs.evaluate, Job.collect: jobs.collect, Job.prune: jobs.prune,
    Job.report: report, Job.discover: jobs.discover,
}


def build_scheduler(settings: Settings) -> object:
    """An APScheduler BackgroundScheduler running the schedule table's jobs."""
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={
        "coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    for job in scheduled_jobs(settings):
        extra = [scheduler] if job.job == Job.report else []  # to schedule its own retry
        scheduler.add_job(SCHEDULED[job.job], job.trigger(), args=[settings, *extra], id=job.name)
    return scheduler
