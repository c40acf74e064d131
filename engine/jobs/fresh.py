"""What the gate reads from a server: a stored result graded by the scorecard as it is now.

A stored result graded by an older version of the scorecard (or none yet) is not answered
with: the service is evaluated again first, and the gate waits for that a bounded time. A
service that the evaluation leaves without a result is one the scorecard does not apply to.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from datetime import UTC, datetime

from core.errors import NotFoundError, StorageError
from engine.gate import not_applicable
from engine.jobs.context import schemas_for
from engine.jobs.drops import DropSender, evaluate_and_notify
from engine.jobs.evaluation import EvaluationFailed, RunOutcome
from engine.jobs.inputs import resolve_scorecards
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.models import RunTrigger
from engine.storage.public import StoredResult
from engine.storage.services import get_service
from engine.storage.standings import stored_result

GATE_TRIGGER = RunTrigger.GATE


class StaleResult(StorageError):
    """The stored result predates the current scorecard and a fresh one was not ready in
    time: no decision."""


class NotApplicable(NotFoundError):
    """The scorecard's filter excludes the service."""


def fresh_result(settings: Settings, *, service: str, scorecard: str, wait: float,
                 send_drops: DropSender) -> StoredResult:
    """The service's stored result on the scorecard, graded by the scorecard's current
    version (a broken file's last good version); the level drops of a run this takes are
    handed to ``send_drops``, as every run's are. NotFoundError for an unknown service or
    scorecard, NotApplicable when the filter excludes the service, StaleResult when no fresh
    result was stored within ``wait`` seconds."""
    with session_scope(engine_for(settings.database_url)) as session:
        get_service(session, service)
        current = resolve_scorecards(session, settings.scorecards, schemas_for(settings))
        card = current.scorecards.get(scorecard)
        if card is None:
            raise NotFoundError(f'unknown scorecard "{scorecard}" '
                                f'(known: {", ".join(sorted(current.scorecards))})')
    stored = _stored(database_url=settings.database_url, service=service, scorecard=scorecard)
    if stored is not None and stored.version == card.content_hash:
        return stored
    try:
        outcome = _evaluated_within(settings, service, wait, send_drops)
    except EvaluationFailed as error:
        if isinstance(error.__cause__, NotFoundError):  # stored, but gone from the catalog
            raise NotFoundError(str(error.__cause__)) from None
        raise
    if outcome is None:
        graded = ("nothing is stored yet, and evaluating it" if stored is None else
                  f"the stored result was graded by version {stored.version[:12]}, not the "
                  f"current {card.content_hash[:12]}, and evaluating it again")
        raise StaleResult(f'stale: "{service}" on "{scorecard}": {graded} took longer than '
                          f"{wait:g} s; try again when the run finishes")
    stored = _stored(database_url=settings.database_url, service=service, scorecard=scorecard)
    if stored is None:
        problem = (outcome.evaluation.filter_errors.get((service, scorecard))
                   if outcome.evaluation is not None else None)
        raise NotApplicable(not_applicable(scorecard, service, problem))
    if stored.version != card.content_hash:  # the scorecard changed again meanwhile
        raise StaleResult(f'stale: "{service}" on "{scorecard}": graded by version '
                          f"{stored.version[:12]}, but the scorecard is now "
                          f"{card.content_hash[:12]}")
    return stored


def _stored(*, database_url: str, service: str, scorecard: str) -> StoredResult | None:
    with session_scope(engine_for(database_url)) as session:
        try:
            return stored_result(session, service=service, scorecard=scorecard)
        except NotFoundError:  # a scorecard new to storage, or no result for this service
            return None


_running: dict[str, Future[RunOutcome]] = {}
_lock = threading.Lock()


def _evaluated_within(settings: Settings, service: str, wait: float,
                      send_drops: DropSender) -> RunOutcome | None:
    """Evaluate the service (one evaluation however many gates ask at once) and wait for it
    up to ``wait`` seconds; None if it is still running (it goes on, and stores its result)."""
    key = f"{settings.database_url}\0{service}"
    with _lock:
        done = _running.get(key)
        if done is None:
            done = _running[key] = Future()
            threading.Thread(target=_evaluate, args=(settings, service, key, done, send_drops),
                             name=f"levelset-gate-{service}"[:60], daemon=True).start()
    try:
        return done.result(timeout=wait)
    except TimeoutError:
        return None


def _evaluate(settings: Settings, service: str, key: str, done: Future[RunOutcome],
              send_drops: DropSender) -> None:
    try:
        outcome = evaluate_and_notify(settings, trigger=GATE_TRIGGER, service=service,
                                      now=datetime.now(UTC), send_drops=send_drops)
    except BaseException as error:  # handed to every waiting gate (EvaluationFailed: 503)
        with _lock:
            _running.pop(key, None)
        done.set_exception(error)
        return
    with _lock:
        _running.pop(key, None)
    done.set_result(outcome)
