"""The server's queue of requested runs: a run waits as ``queued`` (no lease: no process holds
it yet) until the server's worker starts it, and is running, with a lease, from then on."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from engine.settings import Settings
from engine.storage import runs
from engine.storage.database import engine_for, write_scope
from engine.storage.models import RunTrigger
from engine.storage.runs import QueuedRun, RunQueueFull

log = logging.getLogger("levelset.jobs")


def queue_run(settings: Settings, *, service: str | None, trigger: RunTrigger = RunTrigger.API,
              now: datetime | None = None) -> QueuedRun:
    """A queued run of ``service`` (None: every service), or the identical one already
    waiting; raises RunQueueFull when ``api.max_queued_runs`` runs wait."""
    with write_scope(engine_for(settings.database_url)) as session:
        return runs.queue_run(session, trigger=trigger, service=service,
                              now=now or datetime.now(UTC), limit=settings.api.max_queued_runs)


def start_queued_run(settings: Settings, run_id: int) -> bool:
    """Take a queued run out of the queue: running from now, its lease renewed by the
    process that runs it. False when it is no longer queued (nothing to run)."""
    with write_scope(engine_for(settings.database_url)) as session:
        return runs.start_queued(session, run_id=run_id, at=datetime.now(UTC))


def abandon_queued_runs(settings: Settings) -> list[int]:
    """Fail the runs a stopped server left queued (its queue was in its memory); their ids."""
    with write_scope(engine_for(settings.database_url)) as session:
        abandoned = runs.abandon_queued(session, now=datetime.now(UTC))
    if abandoned:
        log.warning("runs %s were queued by a server that stopped: marked failed", abandoned)
    return abandoned


__all__ = ["QueuedRun", "RunQueueFull", "abandon_queued_runs", "queue_run", "start_queued_run"]
