"""The schedule: which job runs when, and in which time zone; the one table both schedulers read.

``levelset serve`` builds its APScheduler jobs from :func:`schedule_table`, Celery beat its
entries (``engine.scheduling.celery_app``), and ``levelset schedule`` and
``GET /api/v1/schedule`` show it with :func:`next_fire_times`. A new scheduled job is one more
entry in the table (with its setting in ``ScheduleSettings``).

The weekly report (``report.schedule`` in ``report.timezone``) is in the table when a Slack
webhook or token is configured (:func:`report_schedule`): a process without one lists and
runs no report job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from engine.scheduling.cron import CronExpression
from engine.storage.public import ScheduledJobPublic

if TYPE_CHECKING:
    from engine.settings import JobSchedule, ReportSettings, ScheduleSettings, Settings


class Job(StrEnum):
    """The job functions a schedule can run; each scheduler maps them to its own wrapper."""

    evaluate = "evaluate"
    collect = "collect"
    prune = "prune"
    report = "report"
    discover = "discover"


@dataclass(frozen=True)
class ScheduledJob:
    """One row of the schedule: ``job`` runs at the instants ``cron`` names in ``timezone``."""

    name: str
    job: Job
    cron: str
    timezone: str

    def trigger(self) -> CronTrigger:
        """The APScheduler trigger of this row, with standard cron semantics."""
        expression = CronExpression.parse(self.cron)
        return OnceAtRepeatedTimesTrigger(timezone=ZoneInfo(self.timezone),
                                          **expression.for_apscheduler())


def schedule_table(schedule: ScheduleSettings,
                   report: ReportSettings | None = None) -> list[ScheduledJob]:
    """Every scheduled job, from the ``schedule`` settings, and the weekly report when
    ``report`` is given (see :func:`report_schedule`)."""
    table = [
        _entry("evaluate", Job.evaluate, schedule.evaluate, schedule.timezone),
        _entry("collect", Job.collect, schedule.collect, schedule.timezone),
        _entry("prune", Job.prune, schedule.prune, schedule.timezone),
    ]
    if schedule.discover is not None:
        table.append(_entry("discover", Job.discover, schedule.discover, schedule.timezone))
    if report is not None:
        table.append(ScheduledJob("report", Job.report, report.schedule, report.timezone))
    return table


def report_schedule(settings: Settings) -> ReportSettings | None:
    """The report settings when the weekly report is scheduled: a Slack webhook or token is
    configured for this process (the environment variable is set or a secret file named)."""
    from engine.notify.slack import configured

    return settings.report if configured(settings.report.slack) else None


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """The schedule table of ``settings``, as both schedulers run it."""
    return schedule_table(settings.schedule, report_schedule(settings))


def next_fire_times(job: ScheduledJob, now: datetime, count: int = 3) -> list[datetime]:
    """The next ``count`` instants after ``now`` at which ``job`` fires, in its time zone."""
    trigger = job.trigger()
    zone = ZoneInfo(job.timezone)
    times: list[datetime] = []
    previous = now
    while len(times) < count:
        # Asked as the scheduler asks after a run at ``previous``: the first instant after it.
        fire = trigger.get_next_fire_time(previous, previous)
        if fire is None:
            break
        # Through UTC: a local time that DST skips (02:30 +01:00) is shown as the real instant.
        times.append(fire.astimezone(UTC).astimezone(zone))
        previous = fire
    return times


def listing(schedule: ScheduleSettings, now: datetime,
            report: ReportSettings | None = None) -> list[ScheduledJobPublic]:
    """What users see of the schedule (``levelset schedule``, ``GET /schedule``)."""
    return [ScheduledJobPublic(name=job.name, cron=job.cron, timezone=job.timezone,
                               next=[moment.isoformat() for moment in next_fire_times(job, now)])
            for job in schedule_table(schedule, report)]


class OnceAtRepeatedTimesTrigger(CronTrigger):
    """APScheduler's cron trigger, firing once at a local time that occurs twice.

    When clocks go back, APScheduler fires at both occurrences of, say, 02:30; Celery beat only
    at the first (as cron does for a fixed time). The second occurrence is skipped so that both
    schedulers agree. A local time that does not exist (clocks going forward) fires at the same
    instant in both: 02:30 on the night clocks jump from 02:00 to 03:00 runs at 03:30.
    """

    def get_next_fire_time(self, previous_fire_time: datetime | None,
                           now: datetime) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and _second_occurrence(fire, self.timezone):
            fire = super().get_next_fire_time(fire, fire)
        return fire


def _second_occurrence(moment: datetime, zone: tzinfo) -> bool:
    local = moment.astimezone(UTC).astimezone(zone)  # through UTC, so that fold is set
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _entry(name: str, job: Job, setting: str | JobSchedule, default_zone: str) -> ScheduledJob:
    if isinstance(setting, str):
        return ScheduledJob(name, job, setting, default_zone)
    return ScheduledJob(name, job, setting.cron, setting.timezone or default_zone)
