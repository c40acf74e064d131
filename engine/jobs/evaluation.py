"""Evaluation runs: load the inputs, evaluate (in the evaluation process), store what
changed, and keep runs honest (a lease while they run, reaping when their process dies)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from core.errors import InputError, NotFoundError, StorageError
from engine.evaluation import Evaluation
from engine.jobs.grading import Grader, Plan, ResultSpool, grade
from engine.jobs.grading import plan as plan_run
from engine.jobs.inputs import InputSources, RunInputs, assemble
from engine.settings import Settings
from engine.storage import runs
from engine.storage.database import engine_for, session_scope, write_scope
from engine.storage.history.diff import Event, LevelChanged
from engine.storage.history.record import Recorded, end_departed, record_results
from engine.storage.history.retention import prune
from engine.storage.inputs import drop_inputs_outside, replace_inputs
from engine.storage.models import RunStatus, RunTrigger
from engine.storage.scorecards import sync_scorecards
from engine.storage.services import sync_services
from engine.storage.standings import level_counts

log = logging.getLogger("levelset.jobs")

class EvaluationFailed(StorageError):
    """A run could not complete; history is as it was before it."""

    def __init__(self, run_id: int, message: str) -> None:
        self.run_id = run_id
        super().__init__(f"run {run_id} failed: {message}")


# --- evaluation ----------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """What a run did, for whoever triggered it: its status, evaluation and events.

    ``evaluation``: the results this run evaluated, while they stayed in memory (a large run
    spools them to disk: None; the stored standings are the full picture either way).
    ``skipped``: services whose results a newer run had already stored.
    """

    run_id: int
    status: RunStatus
    evaluation: Evaluation | None = None
    events: list[Event] = field(default_factory=list)
    changed_results: int = 0
    skipped: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    evaluated: int = 0  # results evaluated by this run (the others were unchanged)
    already_stored: bool = False  # the run key had been stored: nothing was done

    @property
    def level_changes(self) -> list[LevelChanged]:
        return [e for e in self.events if isinstance(e, LevelChanged) and not e.first]


def create_run(
    settings: Settings,
    *,
    trigger: RunTrigger,
    service: str | None = None,
    now: datetime | None = None,
    run_key: str | None = None,
) -> tuple[int, bool]:
    """A run row to report progress on; (id, already complete) when ``run_key`` was seen."""
    with write_scope(engine_for(settings.database_url)) as session:
        _reap(session, settings)
        return runs.open_run(session, trigger=trigger, service=service,
                             now=now or datetime.now(UTC), run_key=run_key)


def run_evaluation(
    settings: Settings,
    *,
    trigger: RunTrigger,
    service: str | None = None,
    now: datetime | None = None,
    run_key: str | None = None,
    run_id: int | None = None,
) -> RunOutcome:
    """Load catalog, scorecards and facts; evaluate; store what changed.

    Inputs are read and rules evaluated with no write transaction open; storing the results
    and completing the run is one transaction that locks only the services it stores. A run
    that dies half-way leaves history as it was and is marked failed. The same ``run_key``
    twice stores once.
    """
    now = now or datetime.now(UTC)
    if run_id is None:
        run_id, done = create_run(
            settings, trigger=trigger, service=service, now=now, run_key=run_key
        )
        if done:
            return RunOutcome(run_id, RunStatus.COMPLETE, already_stored=True)
    with _heartbeat(settings, run_id):
        return store_run(settings, evaluate_run(settings, run_id=run_id, service=service, now=now))


@contextmanager
def _heartbeat(settings: Settings, run_id: int) -> Iterator[None]:
    """Renew the run's lease while it runs, so only a run whose process died is reaped."""
    stop = threading.Event()
    interval = settings.evaluation.lease_seconds / 4

    def beat() -> None:
        while not stop.wait(interval):
            try:
                with session_scope(engine_for(settings.database_url)) as session:
                    runs.beat(session, run_id=run_id, at=datetime.now(UTC))
            except Exception as error:  # a missed beat is retried; the lease allows four
                log.warning("run %s: heartbeat not stored: %s", run_id, error)

    thread = threading.Thread(target=beat, name=f"levelset-run-{run_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def reap_runs(settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Mark failed the runs whose process died (their lease ran out); their ids."""
    with write_scope(engine_for(settings.database_url)) as session:
        return _reap(session, settings, now=now)


def _reap(session: Session, settings: Settings, *, now: datetime | None = None) -> list[int]:
    reaped = runs.reap(session, now=now or datetime.now(UTC),
                       lease=timedelta(seconds=settings.evaluation.lease_seconds))
    if reaped:
        log.warning("runs %s were running in a process that stopped: marked failed", reaped)
    return reaped


@dataclass
class EvaluatedRun:
    """A run evaluated and not yet stored: what it graded (a spool of results) and the
    digest of every pair's inputs."""

    run_id: int
    service: str | None
    now: datetime
    started: float
    inputs: RunInputs
    plan: Plan
    spool: ResultSpool
    problems: list[str]

    @property
    def evaluation(self) -> Evaluation | None:
        return self.spool.in_memory()


def evaluate_run(
    settings: Settings, *, run_id: int, service: str | None = None, now: datetime | None = None
) -> EvaluatedRun:
    """Read the run's inputs and evaluate what changed (no write transaction is open
    meanwhile): only the (service, scorecard) pairs whose inputs differ from those their
    stored result was graded on, and the rules that read the clock."""
    now = now or datetime.now(UTC)
    started = time.monotonic()
    with _failing_run(settings, run_id, started):
        inputs = _load_inputs(settings, service=service, now=now)
        grader = Grader(settings, inputs.selected, inputs.scorecards.scorecards, inputs.schemas,
                        now, inputs.facts)
        phase = time.perf_counter()
        plan = plan_run(grader)
        inputs.timings["plan"] = time.perf_counter() - phase
        phase = time.perf_counter()
        spool, notes = grade(grader, plan.graded)
        inputs.timings["evaluate"] = time.perf_counter() - phase
    problems = inputs.problems + sorted(set(notes)) + [
        f'scorecard "{card}" filter on "{svc}": {why}'
        for (svc, card), why in sorted(spool.filter_errors.items())
    ]
    return EvaluatedRun(run_id, service, now, started, inputs, plan, spool, problems)


def store_run(settings: Settings, run: EvaluatedRun) -> RunOutcome:
    """Store an evaluated run's results and complete it, in one transaction."""
    phase = time.perf_counter()
    evaluation = run.evaluation
    try:
        with _failing_run(settings, run.run_id, run.started), \
                write_scope(engine_for(settings.database_url)) as session:
            outcome = _store(session, run, whole=run.service is None)
            outcome.problems = list(run.problems)
            _finish(session, outcome, run)
    finally:
        run.spool.close()
    outcome.timings = {**run.inputs.timings, "store": time.perf_counter() - phase}
    outcome.evaluated = run.spool.results
    outcome.evaluation = evaluation
    return outcome


@contextmanager
def _failing_run(settings: Settings, run_id: int, started: float) -> Iterator[None]:
    """Whatever fails inside marks the run failed (history is as it was) and is raised as
    EvaluationFailed; that includes BaseExceptions from native code (a Rust panic), while an
    interrupt or exit is re-raised as itself once the run is marked."""
    try:
        yield
    except BaseException as error:
        message = (
            str(error)
            if isinstance(error, InputError | NotFoundError)
            else (f"{type(error).__name__}: {str(error)[:500]}")
        )
        with session_scope(engine_for(settings.database_url)) as session:
            runs.finish_run(session, run_id=run_id, status=RunStatus.FAILED, error=message,
                            finished_at=datetime.now(UTC),
                            duration_ms=int((time.monotonic() - started) * 1000))
        log.warning("evaluation run %s failed: %s", run_id, message)
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        raise EvaluationFailed(run_id, message) from error


def _load_inputs(settings: Settings, *, service: str | None, now: datetime) -> RunInputs:
    """The run's inputs, as every caller assembles them (see engine/jobs/inputs.py)."""
    return assemble(InputSources.of_settings(settings), now=now,
                    services=None if service is None else [service])


def _store(session: Session, run: EvaluatedRun, *, whole: bool) -> RunOutcome:
    """Store the spooled batches: each one's results diffed against the standings and
    written, each graded pair's input digest kept; then, for a whole run, the results of
    departed services and scorecards ended."""
    inputs = run.inputs
    selected = [s.name for s in inputs.selected]
    service_ids = sync_services(session, services=inputs.catalog, now=run.now, complete=True,
                                lock=selected)
    stored = sync_scorecards(session, scorecards=inputs.scorecards.scorecards, now=run.now,
                             retired=inputs.scorecards.retired)
    outcome = RunOutcome(run.run_id, RunStatus.COMPLETE)
    skipped: set[str] = set()
    for batch in run.spool:
        graded = dict.fromkeys([r.service for r in batch.results]
                               + [p[0] for p in [*batch.inapplicable, *batch.filter_errors]])
        pairs = [(s, c) for s in graded for c in sorted(run.plan.graded.get(s, ()))]
        recorded = record_results(session, run_id=run.run_id, results=batch.results,
                                  service_ids=service_ids, scorecards=stored, graded=pairs)
        _keep(outcome, recorded)
        skipped |= recorded.skipped
        replace_inputs(session, digests={
            (service_ids[s], stored[c].scorecard_id):
                None if (s, c) in batch.filter_errors or c in batch.unsettled
                else run.plan.digests.get((s, c))
            for s, c in pairs if s not in recorded.skipped})
    if whole:
        catalog = [s.name for s in inputs.catalog]
        _keep(outcome, end_departed(session, run_id=run.run_id, service_ids=service_ids,
                                    scorecards=stored, catalog=catalog))
        drop_inputs_outside(session, services=[service_ids[name] for name in catalog],
                            scorecards=[ids.scorecard_id for ids in stored.values()])
    outcome.skipped = frozenset(skipped)
    newer = runs.stored_after(session, run_id=run.run_id, services=selected)
    if selected and all(newer.covers(name) for name in selected):
        outcome.status = RunStatus.SUPERSEDED
    return outcome


def _keep(outcome: RunOutcome, recorded: Recorded) -> None:
    """Count what was recorded and keep its events (a result graded for the first time has
    one level event, not one per rule: see ``diff``)."""
    outcome.changed_results += recorded.diff.changed_results
    outcome.events.extend(recorded.events)


def _finish(session: Session, outcome: RunOutcome, run: EvaluatedRun) -> None:
    spool = run.spool
    if outcome.skipped and outcome.status == RunStatus.COMPLETE:
        outcome.problems.append(f"{len(outcome.skipped)} service(s) were stored by a newer run first: "
                        f"{', '.join(sorted(outcome.skipped)[:10])}")
    levels = level_counts(session, services=None if run.service is None else [run.service])
    runs.finish_run(
        session, run_id=outcome.run_id, status=outcome.status, evaluated_at=run.now,
        services=len(run.inputs.selected),
        results=sum(sum(by_level.values()) for by_level in levels.values()),
        evaluated=spool.results, rule_results=spool.rule_results,
        changed_results=outcome.changed_results, counts=spool.counts, levels=levels,
        problems=outcome.problems, finished_at=datetime.now(UTC),
        duration_ms=int((time.monotonic() - run.started) * 1000),
    )


def prune_history(settings: Settings, *, now: datetime | None = None) -> dict[str, int]:
    """Delete history older than ``retention_days``."""
    now = now or datetime.now(UTC)
    with write_scope(engine_for(settings.database_url)) as session:
        return prune(session, before=now - timedelta(days=settings.retention_days))
