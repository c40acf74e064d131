"""Celery on Redis: tasks that call the job functions, and a beat schedule from the schedule table.

```
LEVELSET_BROKER_URL=redis://redis:6379/0 celery -A engine.scheduling.celery_app worker
LEVELSET_BROKER_URL=redis://redis:6379/0 celery -A engine.scheduling.celery_app beat
```

The tasks hold no logic: each calls a job of ``engine.scheduling.jobs``, whose error policy it
shares with ``levelset serve``'s embedded scheduler. A task's id is its run key, so a
redelivered task (acks late, a worker killed mid-run) stores its run once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from celery import Celery, Task
from celery.schedules import crontab
from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready

from core.redaction import install_log_redaction
from engine.jobs import reap_runs
from engine.notify.jobs import (
    REPORT_RETRIES,
    drops_from_payload,
    drops_payload,
    level_drops_after_run,
)
from engine.scheduling import jobs
from engine.scheduling.cron import CronExpression
from engine.scheduling.schedule import Job, scheduled_jobs
from engine.settings import Settings, get_settings
from engine.storage.history.diff import Event
from engine.storage.models import RunTrigger

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
log = logging.getLogger("levelset.celery")


def _broker() -> str:
    return os.environ.get("LEVELSET_BROKER_URL", DEFAULT_BROKER)


app = Celery("levelset", broker=_broker(),
             backend=os.environ.get("LEVELSET_RESULT_BACKEND", _broker()))
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    timezone="UTC", enable_utc=True,
    task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
    result_expires=86400, broker_connection_retry_on_startup=True,
)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_logs(logger: logging.Logger, **_: Any) -> None:
    """The worker's and beat's log handlers hide URLs' user info, as the CLI's do."""
    install_log_redaction(logger)


class ZonedCrontab(crontab):
    """A crontab read in its own time zone instead of the app's (UTC).

    Celery 5.7 takes the zone of a crontab from ``tz``: ``remaining_delta`` converts the last
    run and ``now`` into it, matches the fields there, and ``remaining`` measures the wait in
    UTC, so DST changes are real hours. ``to_local`` and ``nowfun`` play no part (``nowfun``
    only fixes the clock in tests). The zone is pickled with the entry, for beat's shelve.
    """

    def __init__(self, *args: Any, zone: str = "UTC", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.zone = zone

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.zone)

    def __reduce__(self) -> tuple[Any, ...]:
        cls, args, state = super().__reduce__()
        return cls, args, {**state, "zone": self.zone}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        rest = dict(state)
        self.zone = rest.pop("zone")
        super().__setstate__(rest)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, crontab):
            return super().__eq__(other) and getattr(other, "zone", None) == self.zone
        return NotImplemented

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} in {self.zone}>"


def cron(expression: str, zone: str = "UTC") -> ZonedCrontab:
    """Celery's schedule for a standard cron expression in ``zone``."""
    return ZonedCrontab(zone=zone, **CronExpression.parse(expression).for_celery())


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The periodic tasks: one entry per row of the schedule table, in the row's time zone."""
    return {
        job.name: {"task": TASKS[job.job].name, "schedule": cron(job.cron, job.timezone)}
        for job in scheduled_jobs(get_settings())
    }


@app.on_after_finalize.connect
def _configure_beat(sender: Celery, **_kwargs: Any) -> None:
    # Settings are read when the app is finalized (a worker or beat starting), not at import.
    sender.conf.beat_schedule = beat_schedule()


def _queue_drops(settings: Settings, drops: Sequence[Event], *, run_id: int) -> None:
    """Level drops are notified by a task of their own, sent once the run is stored."""
    try:
        notify_drops.apply_async(args=[run_id, drops_payload(drops)])
    except Exception as error:  # the run is stored; a lost notification must not fail it
        log.warning("run %s: level-drop notifications not queued: %s", run_id, error)


@app.task(name="levelset.evaluate", bind=True)
def evaluate(self: Task, service: str | None = None) -> int:
    """Evaluate every service (or one); returns the run id."""
    return jobs.evaluate(get_settings(), trigger=RunTrigger.CELERY, service=service,
                         run_key=f"celery:{self.request.id}", send_drops=_queue_drops)


@app.task(name="levelset.notify_drops")
def notify_drops(run_id: int, drops: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Post a message per level drop of run ``run_id`` (each once, by its key)."""
    report = level_drops_after_run(get_settings(), drops_from_payload(drops), run_id=run_id)
    return report.summary() if report is not None else None


@app.task(name="levelset.report", bind=True, max_retries=REPORT_RETRIES)
def report(self: Task, now: str | None = None) -> dict[str, Any] | None:
    """Post the weekly report to Slack (once per week and channel); a retry that
    ``report_retry`` asks for is this task again, for the same week."""
    sent = jobs.report(get_settings(), now=datetime.fromisoformat(now) if now else None,
                       attempt=self.request.retries)
    if sent.retry_in is not None:
        raise self.retry(kwargs={"now": sent.week_ending.isoformat()},
                         countdown=sent.retry_in.total_seconds())
    return sent.summary()


@app.task(name="levelset.collect")
def collect() -> list[dict[str, Any]]:
    """Run the collectors and store their facts."""
    return [vars(stored) for _, stored in jobs.collect(get_settings())]


@app.task(name="levelset.prune")
def prune() -> dict[str, int]:
    """Delete history older than retention_days."""
    return jobs.prune(get_settings())


@app.task(name="levelset.discover")
def discover() -> dict[str, int]:
    """Rewrite the catalog directory's entities from the GitHub organisation."""
    return jobs.discover(get_settings())


# What each job of the schedule table runs on a worker.
TASKS: dict[Job, Task] = {Job.evaluate: evaluate, Job.collect: collect, Job.prune: prune,
                          Job.report: report, Job.discover: discover}


@worker_ready.connect
def _reap_on_start(**_kwargs: Any) -> None:
    """Runs of a worker that died before this one started are marked failed (by their lease)."""
    reap_runs(get_settings())
