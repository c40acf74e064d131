"""Storing a run's results: read the standings it may change, diff, append, replace.

The caller's transaction holds the locks of the services being stored (``sync_services(lock=)``)
before this reads anything, so a concurrent run storing the same services waits, and then sees
what this one wrote.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, tuple_, update
from sqlmodel import Session, col

from engine.evaluation import RuleStatus, ScorecardResult
from engine.storage import runs
from engine.storage.database import bulk_insert, chunks, insert_missing, table_of
from engine.storage.history.diff import (
    Event,
    HistoryDiff,
    Key,
    RuleWas,
    ScorecardIds,
    Standing,
    diff,
    result_digest,
)
from engine.storage.models import CurrentResult, RuleOutcome, RuleState, ScorecardState


@dataclass
class Recorded:
    """What storing a run did: the diff it wrote and the services a newer run had stored."""

    diff: HistoryDiff = field(default_factory=HistoryDiff)
    skipped: frozenset[str] = frozenset()

    @property
    def events(self) -> list[Event]:
        return self.diff.events


def record_results(
    session: Session,
    *,
    run_id: int,
    results: Sequence[ScorecardResult],
    service_ids: Mapping[str, int],
    scorecards: Mapping[str, ScorecardIds],
    scope: Collection[str] | None = None,
    graded: Collection[tuple[str, str]] | None = None,
) -> Recorded:
    """Append what changed since the current standings; end results that no longer exist.

    ``scope``: the services the run graded (None: every service); only their absent results
    end. ``graded`` instead: the (service, scorecard) pairs the run graded (an incremental
    run); only their absent results end. A (service, scorecard) that a newer complete run
    already stored is left as that run wrote it. Idempotent: storing the same results again
    changes nothing.
    """
    names = {r.service for r in results} | set(scope or ()) | {s for s, _ in graded or ()}
    newer = runs.stored_after(session, run_id=run_id, services=names)
    kept = [r for r in results if not newer.covers(r.service)]
    skipped = frozenset(s for s in names if newer.covers(s))
    if newer.every:
        return Recorded(skipped=skipped)
    if graded is not None:
        scope = {s for s, _ in graded}
    scope_ids = None if scope is None else {service_ids[s] for s in scope if s not in skipped}
    skipped_ids = {service_ids[s] for s in skipped if s in service_ids}
    digests = _digests(session, scope_ids)
    pending, present, computed = [], set(), {}
    for result in kept:
        ids = scorecards[result.scorecard]
        key = (service_ids[result.service], ids.scorecard_id)
        present.add(key)
        whole = result_digest(ids.version_id, result)
        if digests.get(key) != whole:
            pending.append(result)
            computed[id(result)] = whole
    ending = sorted(key for key in digests if key not in present and key[0] not in skipped_ids)
    if graded is not None:
        graded_ids = {(service_ids[s], scorecards[c].scorecard_id) for s, c in graded
                      if c in scorecards}
        ending = [key for key in ending if key in graded_ids]
    changing = [(service_ids[r.service], scorecards[r.scorecard].scorecard_id) for r in pending]
    standings = _standings(session, [k for k in changing if k in digests] + ending)
    found = diff(run_id=run_id, results=pending, service_ids=service_ids, scorecards=scorecards,
                 standings=standings, ending=ending, digests=computed)
    _write(session, run_id, found)
    return Recorded(found, skipped)


def end_departed(
    session: Session, *, run_id: int, service_ids: Mapping[str, int],
    scorecards: Mapping[str, ScorecardIds], catalog: Collection[str],
) -> Recorded:
    """End the results of services that left the ``catalog`` and of scorecards no longer in
    use (what a whole run does after storing what it graded)."""
    if runs.stored_after(session, run_id=run_id, services=()).every:
        return Recorded()
    services = {service_ids[name] for name in catalog}
    cards = {ids.scorecard_id for ids in scorecards.values()}
    ending = sorted(key for key in _digests(session, None)
                    if key[0] not in services or key[1] not in cards)
    if not ending:
        return Recorded()
    found = diff(run_id=run_id, results=[], service_ids=service_ids, scorecards=scorecards,
                 standings=_standings(session, ending), ending=ending)
    _write(session, run_id, found)
    return Recorded(found)


def _digests(session: Session, scope_ids: set[int] | None) -> dict[Key, int]:
    """The digest of every stored result of the services in scope (None: all)."""
    table = table_of(CurrentResult)
    query = select(table.c.service_id, table.c.scorecard_id, table.c.digest)
    if scope_ids is None:
        return {(r.service_id, r.scorecard_id): r.digest for r in session.execute(query)}
    found: dict[Key, int] = {}
    for part in chunks(sorted(scope_ids)):
        for r in session.execute(query.where(table.c.service_id.in_(part))):
            found[(r.service_id, r.scorecard_id)] = r.digest
    return found


def _standings(session: Session, keys: Sequence[Key]) -> dict[Key, Standing]:
    """The full standing of each key: level, score and each rule's outcome and status."""
    wanted = set(keys)
    table = table_of(CurrentResult)
    rows = []
    for part in chunks(sorted({service_id for service_id, _ in wanted})):
        rows += [r for r in session.execute(select(table).where(table.c.service_id.in_(part)))
                 if (r.service_id, r.scorecard_id) in wanted]
    outcome_ids = sorted({o for r in rows for _, o in r.outcomes})
    outcomes: dict[int, RuleWas] = {}
    for part in chunks(outcome_ids):
        for o in session.execute(select(col(RuleOutcome.id), col(RuleOutcome.digest),
                                        col(RuleOutcome.status))
                                 .where(col(RuleOutcome.id).in_(part))):
            outcomes[o.id] = RuleWas(o.digest, RuleStatus(o.status))
    return {
        (r.service_id, r.scorecard_id): Standing(
            r.digest, r.version_id, r.level, r.level_rank, r.score, r.since_run,
            {rule_id: outcomes[outcome_id] for rule_id, outcome_id in r.outcomes},
        )
        for r in rows
    }


def _outcome_ids(session: Session, found: HistoryDiff) -> dict[int, int]:
    """Ids of the diff's outcomes by digest, inserting the new ones."""
    insert_missing(session, RuleOutcome, [
        {"digest": d, "status": o.status.value, "message": o.message, "evidence": o.evidence}
        for d, o in sorted(found.outcomes.items())
    ], ["digest"])
    ids: dict[int, int] = {}
    for part in chunks(sorted(found.outcomes)):
        for row in session.execute(select(col(RuleOutcome.id), col(RuleOutcome.digest))
                                   .where(col(RuleOutcome.digest).in_(part))):
            ids[row.digest] = row.id
    return ids


def _write(session: Session, run_id: int, found: HistoryDiff) -> None:
    if found.empty:
        return
    ids = _outcome_ids(session, found)
    _append_history(session, run_id, found, ids)
    current: list[dict[str, Any]] = [{
        "service_id": c.service_id, "scorecard_id": c.scorecard_id, "digest": c.digest,
        "run_id": run_id, "since_run": c.since_run, "version_id": c.version_id, "level": c.level,
        "level_rank": c.level_rank, "score": c.score,
        "outcomes": [[rule_id, ids[digest]] for rule_id, digest in c.outcomes],
    } for c in found.current]
    new = [c.new for c in found.current]
    _replace_current(session, [row for row, is_new in zip(current, new, strict=True)
                               if not is_new])
    added = sorted((row for row, is_new in zip(current, new, strict=True) if is_new),
                   key=lambda row: (row["service_id"], row["scorecard_id"]))
    for batch in chunks(added, 5000):
        session.execute(insert(table_of(CurrentResult)), batch)
    for pairs in chunks(found.ended):
        session.execute(delete(CurrentResult).where(
            tuple_(col(CurrentResult.service_id), col(CurrentResult.scorecard_id)).in_(pairs)))


def _append_history(session: Session, run_id: int, found: HistoryDiff, ids: dict[int, int]) -> None:
    """The rule and scorecard rows of the run, all keyed by it (appended, never updated).

    Inserted in primary-key order: B-tree pages then fill as an append does instead of
    splitting in the middle (a first run of 1,000,000 rows is a fifth smaller). Scores are
    stored as hundredths (``Hundredths``).
    """
    rule_rows = [(r.service_id, r.rule_id, run_id, None if r.outcome is None else ids[r.outcome],
                  round(r.score * 100))
                 for r in sorted(found.rule_rows, key=lambda r: (r.service_id, r.rule_id))]
    card_rows = [(c.service_id, c.scorecard_id, run_id, c.version_id, c.level_rank,
                  round(c.score * 100))
                 for c in sorted(found.card_rows, key=lambda c: (c.service_id, c.scorecard_id))]
    bulk_insert(session, table_of(RuleState),
                ("service_id", "rule_id", "valid_from_run", "outcome_id", "score"), rule_rows)
    bulk_insert(session, table_of(ScorecardState),
                ("service_id", "scorecard_id", "valid_from_run", "version_id", "level_rank",
                 "score"), card_rows)


def _replace_current(session: Session, rows: list[dict[str, Any]]) -> None:
    """Current standings are the one table updated in place (it is not history)."""
    if not rows:
        return
    table = table_of(CurrentResult)
    columns = ("digest", "run_id", "since_run", "version_id", "level", "level_rank", "score",
               "outcomes")
    session.execute(
        update(table)
        .where(table.c.service_id == bindparam("service_id_"),
               table.c.scorecard_id == bindparam("scorecard_id_"))
        .values({name: bindparam(f"{name}_") for name in columns}),
        [{f"{k}_": v for k, v in row.items()} for row in rows],
    )
