"""Evaluation runs: one row each, from requested (queued or running) to how it ended, with its
summary."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.sql.functions import coalesce
from sqlmodel import Session, col

from core.errors import LevelsetError, NotFoundError
from engine.storage.database import table_of
from engine.storage.models import EvaluationRun, RunStatus, RunTrigger
from engine.storage.public import EvaluationRunPublic


def open_run(
    session: Session,
    *,
    trigger: RunTrigger,
    now: datetime,
    service: str | None = None,
    run_key: str | None = None,
) -> tuple[int, bool]:
    """A run to report progress on: (id, already done). A ``run_key`` seen before is that run:
    done if it completed, else running again (a retried task)."""
    if run_key is not None:
        existing = session.execute(
            select(EvaluationRun).where(col(EvaluationRun.run_key) == run_key)
        ).scalars().first()
        if existing is not None and existing.id is not None:
            if existing.status in (RunStatus.COMPLETE, RunStatus.SUPERSEDED):
                return existing.id, True
            existing.status = RunStatus.RUNNING
            existing.error = None
            existing.heartbeat_at = datetime.now(UTC)
            return existing.id, False
    run = EvaluationRun(trigger=trigger, service=service, run_key=run_key, requested_at=now,
                        status=RunStatus.RUNNING, heartbeat_at=datetime.now(UTC))
    session.add(run)
    session.flush()
    assert run.id is not None
    return run.id, False


class RunQueueFull(LevelsetError):
    """The queue of runs waiting for the server's worker holds ``limit`` runs already."""

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(f"{limit} runs are queued already (api.max_queued_runs); "
                         f"try again in {retry_after} s")
        self.limit = limit
        self.retry_after = retry_after


@dataclass(frozen=True)
class QueuedRun:
    """A run waiting for the server's worker; ``reused``: an identical one was waiting already."""

    run_id: int
    reused: bool


QUEUE_LOCK = 0x4C53_5155  # PostgreSQL advisory lock: one queue decision at a time
DEFAULT_RETRY_AFTER = 5  # seconds, before any run has completed


def queue_run(
    session: Session, *, trigger: RunTrigger, now: datetime, service: str | None, limit: int
) -> QueuedRun:
    """A run waiting for the server's worker: the queued run of the same scope if there is
    one (it has not read its inputs yet, so it grades what this request would), else a new
    one; raises RunQueueFull when ``limit`` runs are queued. Queued runs hold no lease."""
    if session.get_bind().dialect.name == "postgresql":
        # Count and insert as one decision (SQLite's write transaction already is one).
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": QUEUE_LOCK})
    table = table_of(EvaluationRun)
    scope = table.c.service.is_(None) if service is None else table.c.service == service
    waiting = session.execute(
        select(table.c.id).where(table.c.status == RunStatus.QUEUED, scope)
        .order_by(table.c.id).limit(1)
    ).scalar()
    if waiting is not None:
        return QueuedRun(waiting, reused=True)
    queued = session.execute(
        select(func.count()).select_from(table).where(table.c.status == RunStatus.QUEUED)
    ).scalar_one()
    if queued >= limit:
        raise RunQueueFull(limit, _retry_after(session))
    run = EvaluationRun(trigger=trigger, service=service, requested_at=now,
                        status=RunStatus.QUEUED, heartbeat_at=None)
    session.add(run)
    session.flush()
    assert run.id is not None
    return QueuedRun(run.id, reused=False)


def _retry_after(session: Session) -> int:
    """Seconds until a queued run has likely started: the last complete run's duration."""
    duration = session.execute(
        select(col(EvaluationRun.duration_ms)).where(
            col(EvaluationRun.status) == RunStatus.COMPLETE)
        .order_by(col(EvaluationRun.id).desc()).limit(1)
    ).scalar()
    return DEFAULT_RETRY_AFTER if duration is None else max(1, -(-int(duration) // 1000))


def start_queued(session: Session, *, run_id: int, at: datetime) -> bool:
    """The run ``run_id``, queued (or created to run at once), starts: running, with its
    lease from ``at``. False when it has ended already (a server that started after the one
    that queued it marked it failed): it is not run."""
    table = table_of(EvaluationRun)
    started = session.execute(
        update(table).where(table.c.id == run_id,
                            table.c.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
        .values(status=RunStatus.RUNNING, heartbeat_at=at)
    )
    return bool(started.rowcount)  # type: ignore[attr-defined]


def abandon_queued(session: Session, *, now: datetime) -> list[int]:
    """Mark failed the runs still queued by a server that stopped (the queue lived in its
    process); their ids. Called by a server as it starts."""
    table = table_of(EvaluationRun)
    ids = list(session.execute(
        select(table.c.id).where(table.c.status == RunStatus.QUEUED)).scalars())
    if ids:
        session.execute(update(table).where(table.c.id.in_(ids)).values(
            status=RunStatus.FAILED, finished_at=now,
            error="the server that queued it stopped before it started",
        ))
    return ids


def finish_run(session: Session, *, run_id: int, status: RunStatus, **summary: Any) -> None:
    """Record how a run ended (``summary``: evaluated_at, counts, problems, error...). A run
    that completed carries no error, even if it had been marked failed meanwhile."""
    if status in (RunStatus.COMPLETE, RunStatus.SUPERSEDED):
        summary.setdefault("error", None)
    table = table_of(EvaluationRun)
    session.execute(update(table).where(table.c.id == run_id).values(status=status, **summary))


def beat(session: Session, *, run_id: int, at: datetime) -> None:
    """The process running ``run_id`` is alive at ``at`` (its lease is renewed)."""
    table = table_of(EvaluationRun)
    session.execute(update(table).where(table.c.id == run_id,
                                        table.c.status == RunStatus.RUNNING)
                    .values(heartbeat_at=at))


def reap(session: Session, *, now: datetime, lease: timedelta) -> list[int]:
    """Mark failed every running run whose process has not renewed its lease; their ids."""
    table = table_of(EvaluationRun)
    stale = coalesce(table.c.heartbeat_at, table.c.requested_at) < now - lease
    ids = list(session.execute(
        select(table.c.id).where(table.c.status == RunStatus.RUNNING, stale)
    ).scalars())
    if ids:
        session.execute(update(table).where(table.c.id.in_(ids)).values(
            status=RunStatus.FAILED, finished_at=now,
            error=f"the process running it stopped (no sign of life for {lease})",
        ))
    return ids


@dataclass(frozen=True)
class Coverage:
    """Services that runs newer than a given one have stored (``every``: all of them)."""

    every: bool
    services: frozenset[str]

    def covers(self, service: str) -> bool:
        return self.every or service in self.services


def stored_after(session: Session, *, run_id: int, services: Collection[str]) -> Coverage:
    """What complete runs newer than ``run_id`` stored among ``services``: their results are
    newer than this run's, which must not replace them."""
    rows = session.execute(
        select(col(EvaluationRun.service)).distinct().where(
            col(EvaluationRun.id) > run_id,
            col(EvaluationRun.status) == RunStatus.COMPLETE,
        )
    ).scalars().all()
    every = any(service is None for service in rows)
    return Coverage(every, frozenset(s for s in rows if s is not None and s in services))


def get_run(session: Session, *, run_id: int) -> EvaluationRunPublic:
    run = session.get(EvaluationRun, run_id)
    if run is None:
        raise NotFoundError(f"unknown run {run_id}")
    return EvaluationRunPublic.model_validate(run, from_attributes=True)


def list_runs(
    session: Session, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[EvaluationRunPublic]]:
    total = session.execute(select(func.count()).select_from(EvaluationRun)).scalar_one()
    rows = session.execute(
        select(EvaluationRun).order_by(col(EvaluationRun.id).desc()).limit(limit).offset(offset)
    ).scalars()
    return total, [EvaluationRunPublic.model_validate(r, from_attributes=True) for r in rows]


def latest_ended(session: Session) -> EvaluationRunPublic | None:
    """The newest run that has ended (complete, superseded or failed)."""
    run = session.execute(
        select(EvaluationRun)
        .where(col(EvaluationRun.status).in_([RunStatus.COMPLETE, RunStatus.SUPERSEDED,
                                              RunStatus.FAILED]))
        .order_by(col(EvaluationRun.id).desc()).limit(1)
    ).scalars().first()
    return EvaluationRunPublic.model_validate(run, from_attributes=True) if run else None


def last_run(session: Session) -> EvaluationRunPublic | None:
    run = session.execute(
        select(EvaluationRun)
        .where(col(EvaluationRun.status) == RunStatus.COMPLETE)
        .order_by(col(EvaluationRun.id).desc())
        .limit(1)
    ).scalars().first()
    return EvaluationRunPublic.model_validate(run, from_attributes=True) if run else None


def run_at(session: Session, *, at: datetime) -> int | None:
    """The last complete run evaluated at or before ``at``."""
    return session.execute(
        select(func.max(col(EvaluationRun.id))).where(
            col(EvaluationRun.status) == RunStatus.COMPLETE, col(EvaluationRun.evaluated_at) <= at
        )
    ).scalar()


def run_times(session: Session, ids: set[int]) -> dict[int, datetime | None]:
    """When each run evaluated (its clock)."""
    if not ids:
        return {}
    rows = session.execute(
        select(col(EvaluationRun.id), col(EvaluationRun.evaluated_at)).where(
            col(EvaluationRun.id).in_(sorted(ids))
        )
    )
    return {row.id: row.evaluated_at for row in rows}


def last_evaluated(session: Session, service: str) -> datetime | None:
    """When the service was last graded: the last complete run that covered it."""
    run_id = session.execute(
        select(func.max(col(EvaluationRun.id))).where(
            col(EvaluationRun.status) == RunStatus.COMPLETE,
            or_(col(EvaluationRun.service).is_(None), col(EvaluationRun.service) == service),
        )
    ).scalar()
    return run_times(session, {run_id}).get(run_id) if run_id is not None else None
