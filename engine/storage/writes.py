"""Writing: services, scorecard versions, fact snapshots and evaluation results.

Every function takes the session first and keywords after; none commits (the caller owns the
transaction, so a run is stored whole or not at all). History is appended, never updated: a
changed state is a new row, and the row it replaces ends where the new one begins.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlmodel import Session, SQLModel, col

from core.service import Service
from engine.evaluation import ScorecardResult
from engine.scorecard import Scorecard
from engine.storage.models import (
    CurrentResult,
    EvaluationRun,
    FactSnapshot,
    RuleOutcome,
    RuleState,
    RunStatus,
    ScorecardRecord,
    ScorecardRule,
    ScorecardState,
    ScorecardVersion,
    ServiceRecord,
    SnapshotStatus,
)

CHUNK = 500
# One writer of history at a time (PostgreSQL); SQLite serializes writers itself.
HISTORY_LOCK = 0x1E7E15E7
T = TypeVar("T")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def jsonable(value: Any) -> Any:
    """Evidence may hold datetimes; store what JSON can hold."""
    return json.loads(canonical_json(value))


def digest64(text_value: str) -> int:
    """A signed 64-bit digest (fits BIGINT) of a canonical text."""
    return int.from_bytes(hashlib.sha256(text_value.encode()).digest()[:8], "big", signed=True)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def table_of(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


def lock_history(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": HISTORY_LOCK})


# --- services ------------------------------------------------------------------------------


def sync_services(
    session: Session, *, services: Iterable[Service], now: datetime, complete: bool
) -> dict[str, int]:
    """Insert or update services from the catalog; ``complete``: others have left it."""
    existing = {row.name: row for row in session.execute(select(ServiceRecord)).scalars()}
    seen = set()
    for service in services:
        seen.add(service.name)
        values: dict[str, Any] = {
            "namespace": service.namespace,
            "title": service.title,
            "description": service.description,
            "owner": service.owner,
            "lifecycle": service.lifecycle,
            "type": service.type,
            "system": service.system,
            "tier": service.tier,
            "tags": list(service.tags),
            "annotations": dict(service.annotations),
            "in_catalog": True,
        }
        record = existing.get(service.name)
        if record is None:
            record = ServiceRecord(name=service.name, first_seen=now, last_seen=now, **values)
            session.add(record)
            existing[service.name] = record
        else:
            for key, value in values.items():
                setattr(record, key, value)
            record.last_seen = now
    if complete:
        for name, record in existing.items():
            if name not in seen and record.in_catalog:
                record.in_catalog = False
    session.flush()
    return {name: record.id for name, record in existing.items() if record.id is not None}


# --- scorecards ----------------------------------------------------------------------------


def scorecard_definition(scorecard: Scorecard) -> dict[str, Any]:
    return {
        "title": scorecard.title,
        "description": scorecard.description,
        "owner": scorecard.owner,
        "levels": [
            {"name": lv.name, "rank": lv.rank, "description": lv.description, "color": lv.color}
            for lv in scorecard.levels
        ],
        "rules": [
            {
                "name": r.name,
                "title": r.title,
                "description": r.description,
                "level": r.level,
                "weight": r.weight,
                "remediation": r.remediation,
                "expression": r.expression.source,
            }
            for r in scorecard.rules
        ],
    }


@dataclass
class StoredScorecards:
    """Ids of the scorecards in use: name -> scorecard id, version id, rule name -> rule id."""

    scorecard_ids: dict[str, int] = field(default_factory=dict)
    version_ids: dict[str, int] = field(default_factory=dict)
    rule_ids: dict[str, dict[str, int]] = field(default_factory=dict)
    level_ranks: dict[str, dict[str, int]] = field(default_factory=dict)

    def rank(self, scorecard: str, level: str | None) -> int:
        return 0 if level is None else self.level_ranks[scorecard].get(level, 0)


def sync_scorecards(
    session: Session,
    *,
    scorecards: Mapping[str, Scorecard],
    now: datetime,
    retired: Iterable[str] = (),
) -> StoredScorecards:
    """Store each scorecard's version (once per content hash) and make it the one in use."""
    stored = StoredScorecards()
    records = {r.name: r for r in session.execute(select(ScorecardRecord)).scalars()}
    for name, card in scorecards.items():
        record = records.get(name)
        if record is None:
            record = ScorecardRecord(name=name)
            session.add(record)
            session.flush()
            records[name] = record
        assert record.id is not None
        version = (
            session.execute(
                select(ScorecardVersion).where(
                    col(ScorecardVersion.scorecard_id) == record.id,
                    col(ScorecardVersion.content_hash) == card.content_hash,
                )
            )
            .scalars()
            .first()
        )
        if version is None:
            version = ScorecardVersion(
                scorecard_id=record.id,
                content_hash=card.content_hash,
                path=card.path,
                source_text=card.source_text,
                definition=scorecard_definition(card),
                first_seen=now,
            )
            session.add(version)
            session.flush()
        assert version.id is not None
        record.version_id = version.id
        record.active = True
        stored.scorecard_ids[name] = record.id
        stored.version_ids[name] = version.id
        stored.level_ranks[name] = {level.name: level.rank for level in card.levels}
        rules = {
            r.name: r.id
            for r in session.execute(
                select(ScorecardRule).where(col(ScorecardRule.scorecard_id) == record.id)
            ).scalars()
        }
        for rule in card.rules:
            if rule.name not in rules:
                new = ScorecardRule(scorecard_id=record.id, name=rule.name)
                session.add(new)
                session.flush()
                rules[rule.name] = new.id
        stored.rule_ids[name] = {k: v for k, v in rules.items() if v is not None}
    for name in retired:
        if name in records and name not in scorecards:
            records[name].active = False
    session.flush()
    return stored


def last_good_versions(session: Session) -> list[ScorecardVersion]:
    """The version in use of every active scorecard."""
    return list(
        session.execute(
            select(ScorecardVersion)
            .join(ScorecardRecord, col(ScorecardRecord.version_id) == col(ScorecardVersion.id))
            .where(col(ScorecardRecord.active))
        ).scalars()
    )


# --- facts ---------------------------------------------------------------------------------


def store_snapshot(
    session: Session,
    *,
    service: str,
    source: str,
    collected_at: datetime,
    facts: Mapping[str, Any] | None = None,
    error: str | None = None,
) -> FactSnapshot:
    """Append a snapshot when the content changed; else confirm the latest one."""
    status = SnapshotStatus.FAILED if error is not None else SnapshotStatus.OK
    values = jsonable(dict(facts or {}))
    digest = hashlib.sha256(canonical_json([status, values, error]).encode()).hexdigest()
    latest = (
        session.execute(
            select(FactSnapshot)
            .where(col(FactSnapshot.service) == service, col(FactSnapshot.source) == source)
            .order_by(col(FactSnapshot.id).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
    if latest is not None and latest.digest == digest:
        if collected_at > latest.confirmed_at:
            latest.confirmed_at = collected_at
        return latest
    snapshot = FactSnapshot(
        service=service,
        source=source,
        status=status,
        error=error,
        facts=values,
        digest=digest,
        collected_at=collected_at,
        confirmed_at=collected_at,
    )
    session.add(snapshot)
    session.flush()
    return snapshot


# --- runs ----------------------------------------------------------------------------------


def begin_run(
    session: Session,
    *,
    trigger: str,
    now: datetime,
    service: str | None = None,
    run_key: str | None = None,
) -> EvaluationRun:
    run = EvaluationRun(
        trigger=trigger,
        service=service,
        run_key=run_key,
        requested_at=now,
        status=RunStatus.RUNNING,
    )
    session.add(run)
    session.flush()
    return run


@dataclass
class StoreOutcome:
    changed_results: int = 0
    opened_rules: int = 0
    closed_results: int = 0
    superseded: bool = False


@dataclass
class _Standing:
    """What ``current_result`` holds of a result before this run changes it."""

    version_id: int
    level_rank: int
    score: float
    since_run: int
    outcomes: dict[int, int]  # rule id -> outcome id


def _rule_digest(status: str, message: str, evidence: Any) -> tuple[int, str]:
    body = canonical_json([status, message, evidence])
    return digest64(body), body


def _outcome_ids(session: Session, wanted: dict[int, tuple[str, str, Any]]) -> dict[int, int]:
    """Ids of outcomes by digest, inserting the new ones."""
    ids: dict[int, int] = {}
    digests = list(wanted)
    for part in chunks(digests):
        for row in session.execute(
            select(col(RuleOutcome.id), col(RuleOutcome.digest)).where(
                col(RuleOutcome.digest).in_(part)
            )
        ):
            ids[row.digest] = row.id
    missing = [d for d in digests if d not in ids]
    if missing:
        rows = [
            {"digest": d, "status": wanted[d][0], "message": wanted[d][1], "evidence": wanted[d][2]}
            for d in missing
        ]
        for batch in chunks(rows, 2000):
            session.execute(insert(RuleOutcome), batch)
        for part in chunks(missing):
            for row in session.execute(
                select(col(RuleOutcome.id), col(RuleOutcome.digest)).where(
                    col(RuleOutcome.digest).in_(part)
                )
            ):
                ids[row.digest] = row.id
    return ids


def _statuses(session: Session, ids: Iterable[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for part in chunks(sorted(set(ids))):
        for row in session.execute(
            select(col(RuleOutcome.id), col(RuleOutcome.status)).where(
                col(RuleOutcome.id).in_(part)
            )
        ):
            found[row.id] = row.status
    return found


def _standings(session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], _Standing]:
    wanted = set(keys)
    found: dict[tuple[int, int], _Standing] = {}
    query = select(
        col(CurrentResult.service_id),
        col(CurrentResult.scorecard_id),
        col(CurrentResult.version_id),
        col(CurrentResult.level_rank),
        col(CurrentResult.score),
        col(CurrentResult.since_run),
        col(CurrentResult.outcomes),
    )
    for part in chunks(sorted({service_id for service_id, _ in wanted})):
        for row in session.execute(query.where(col(CurrentResult.service_id).in_(part))):
            key = (row.service_id, row.scorecard_id)
            if key in wanted:
                found[key] = _Standing(
                    row.version_id,
                    row.level_rank,
                    row.score,
                    row.since_run,
                    {rule_id: outcome_id for rule_id, outcome_id in row.outcomes},
                )
    return found


def record_results(
    session: Session,
    *,
    run: EvaluationRun,
    results: Sequence[ScorecardResult],
    service_ids: Mapping[str, int],
    scorecards: StoredScorecards,
    scope: Iterable[int] | None = None,
) -> StoreOutcome:
    """Append what changed since the current state; end results that no longer exist.

    ``scope`` limits which services' absent results are ended (None: every service).
    Idempotent: storing the same results again changes nothing.
    """
    assert run.id is not None
    run_id = run.id
    outcome = StoreOutcome()
    lock_history(session)
    newer = session.execute(
        select(func.max(col(EvaluationRun.id))).where(
            col(EvaluationRun.status) == RunStatus.COMPLETE, col(EvaluationRun.id) > run_id
        )
    ).scalar()
    if newer is not None:
        outcome.superseded = True
        return outcome

    scope_ids = None if scope is None else set(scope)
    current: dict[tuple[int, int], int] = {}
    query = select(
        col(CurrentResult.service_id), col(CurrentResult.scorecard_id), col(CurrentResult.digest)
    )
    if scope_ids is not None:
        for part in chunks(sorted(scope_ids)):
            for row in session.execute(query.where(col(CurrentResult.service_id).in_(part))):
                current[(row.service_id, row.scorecard_id)] = row.digest
    else:
        for row in session.execute(query):
            current[(row.service_id, row.scorecard_id)] = row.digest

    outcomes: dict[int, tuple[str, str, Any]] = {}
    changed: list[tuple[tuple[int, int], ScorecardResult, int, list[tuple[int, int]]]] = []
    present: set[tuple[int, int]] = set()
    for result in results:
        key = (service_ids[result.service], scorecards.scorecard_ids[result.scorecard])
        present.add(key)
        version_id = scorecards.version_ids[result.scorecard]
        # One digest of the whole result first: most results are unchanged, and those cost
        # one serialization instead of one per rule.
        whole = digest64(
            canonical_json(
                [
                    version_id,
                    result.level,
                    result.score,
                    [[r.rule, r.status.value, r.message, r.evidence] for r in result.rules],
                ]
            )
        )
        if current.get(key) == whole:
            continue
        rule_ids = scorecards.rule_ids[result.scorecard]
        rule_digests = []
        for rule in result.rules:
            evidence = jsonable(dict(rule.evidence))
            d, _ = _rule_digest(rule.status.value, rule.message, evidence)
            rule_digests.append((rule_ids[rule.rule], d))
            if d not in outcomes:
                outcomes[d] = (rule.status.value, rule.message, evidence)
        changed.append((key, result, whole, rule_digests))

    gone = [
        key for key in current if key not in present and (scope_ids is None or key[0] in scope_ids)
    ]
    outcome.changed_results = len(changed)
    outcome.closed_results = len(gone)
    if not changed and not gone:
        return outcome

    before = _standings(session, [key for key, *_ in changed if key in current] + gone)
    needed = {d for _, _, _, rds in changed for _, d in rds}
    outcome_ids = _outcome_ids(session, {d: outcomes[d] for d in needed})
    status_of = _statuses(
        session, {o for standing in before.values() for o in standing.outcomes.values()}
    )
    status_of.update({outcome_ids[d]: outcomes[d][0] for d in needed})

    # History: a rule's row when its status changes, carrying the scorecard's score; a
    # scorecard's row when its version or level changes, or its score does with no rule row
    # to carry it. Nothing already written is updated.
    rule_rows: list[dict[str, Any]] = []
    card_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for (service_id, scorecard_id), result, whole, rule_digests in changed:
        was = before.get((service_id, scorecard_id))
        was_outcomes = was.outcomes if was is not None else {}
        now_outcomes = {rule_id: outcome_ids[d] for rule_id, d in rule_digests}
        written = len(rule_rows)
        for rule_id, outcome_id in now_outcomes.items():
            old = was_outcomes.get(rule_id)
            if old is None or status_of[old] != status_of[outcome_id]:
                rule_rows.append(
                    _rule_row(service_id, rule_id, run_id, outcome_id, result.score)
                )
        for rule_id in sorted(was_outcomes.keys() - now_outcomes.keys()):
            rule_rows.append(_rule_row(service_id, rule_id, run_id, None, result.score))
        version_id = scorecards.version_ids[result.scorecard]
        rank = scorecards.rank(result.scorecard, result.level)
        level_changed = was is None or (was.version_id, was.level_rank) != (version_id, rank)
        score_changed = was is None or was.score != result.score
        # A score moves with a rule's status, so this run's rule rows carry it; a scorecard
        # row for it only if none was written.
        if level_changed or (score_changed and len(rule_rows) == written):
            card_rows.append(
                _card_row(service_id, scorecard_id, run_id, version_id, rank, result.score)
            )
        unchanged = was is not None and not (level_changed or score_changed)
        since_run = was.since_run if was is not None and unchanged else run_id
        rows.append(
            {
                "service_id": service_id,
                "scorecard_id": scorecard_id,
                "digest": whole,
                "run_id": run_id,
                "since_run": since_run,
                "version_id": version_id,
                "level": result.level,
                "level_rank": rank,
                "score": result.score,
                "outcomes": sorted([rule_id, o] for rule_id, o in now_outcomes.items()),
            }
        )
    for service_id, scorecard_id in gone:
        # Results that are gone (service left, filter now false, scorecard retired): a row
        # that marks the end, for the result and for each of its rules.
        card_rows.append(_card_row(service_id, scorecard_id, run_id, None, 0, 0.0))
        was = before.get((service_id, scorecard_id))
        for rule_id in sorted(was.outcomes if was is not None else {}):
            rule_rows.append(_rule_row(service_id, rule_id, run_id, None, 0.0))
    for batch in chunks(rule_rows, 5000):
        session.execute(insert(RuleState), batch)
    for batch in chunks(card_rows, 5000):
        session.execute(insert(ScorecardState), batch)
    outcome.opened_rules = sum(1 for row in rule_rows if row["outcome_id"] is not None)

    # Current results: update changed rows in place, add new ones, drop removed ones.
    table = table_of(CurrentResult)
    fresh = [row for row in rows if (row["service_id"], row["scorecard_id"]) in current]
    added = [row for row in rows if (row["service_id"], row["scorecard_id"]) not in current]
    if fresh:
        session.execute(
            update(table)
            .where(
                table.c.service_id == bindparam("service_id_"),
                table.c.scorecard_id == bindparam("scorecard_id_"),
            )
            .values(
                {
                    name: bindparam(f"{name}_")
                    for name in (
                        "digest", "run_id", "since_run", "version_id", "level", "level_rank",
                        "score", "outcomes",
                    )
                }
            ),
            [{f"{k}_": v for k, v in row.items()} for row in fresh],
        )
    for digest_batch in chunks(added, 5000):
        session.execute(insert(CurrentResult), digest_batch)
    for pairs in chunks(gone):
        session.execute(
            delete(CurrentResult).where(
                tuple_(col(CurrentResult.service_id), col(CurrentResult.scorecard_id)).in_(pairs)
            )
        )
    session.flush()
    return outcome


def _rule_row(
    service_id: int, rule_id: int, run_id: int, outcome_id: int | None, score: float
) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "rule_id": rule_id,
        "valid_from_run": run_id,
        "outcome_id": outcome_id,
        "score": score,
    }


def _card_row(
    service_id: int,
    scorecard_id: int,
    run_id: int,
    version_id: int | None,
    level_rank: int,
    score: float,
) -> dict[str, Any]:
    return {
        "service_id": service_id,
        "scorecard_id": scorecard_id,
        "valid_from_run": run_id,
        "version_id": version_id,
        "level_rank": level_rank,
        "score": score,
    }


def prune(session: Session, *, before: datetime) -> dict[str, int]:
    """Delete history that ended before ``before`` (replaced states, superseded snapshots)."""
    old_runs = select(col(EvaluationRun.id)).where(col(EvaluationRun.evaluated_at) < before)
    counts = {}
    rules = table_of(RuleState)
    cards = table_of(ScorecardState)
    later_rule = rules.alias("later_rule")
    later_card = cards.alias("later_card")
    own = table_of(ScorecardRule).alias("own")
    other = table_of(ScorecardRule).alias("other")
    # A rule row is kept while it holds its rule's status or its scorecard's score at the
    # cutoff: it goes once its rule changed again and a later row carried the score, both
    # before the cutoff.
    scorecard_of_rule = (
        select(own.c.scorecard_id)
        .where(own.c.id == rules.c.rule_id)
        .correlate_except(own)
        .scalar_subquery()
    )
    status_replaced = (
        select(later_rule.c.valid_from_run)
        .where(
            later_rule.c.service_id == rules.c.service_id,
            later_rule.c.rule_id == rules.c.rule_id,
            later_rule.c.valid_from_run > rules.c.valid_from_run,
            later_rule.c.valid_from_run.in_(old_runs),
        )
        .exists()
    )
    score_replaced = or_(
        select(later_rule.c.valid_from_run)
        .join(other, other.c.id == later_rule.c.rule_id)
        .where(
            later_rule.c.service_id == rules.c.service_id,
            other.c.scorecard_id == scorecard_of_rule,
            later_rule.c.valid_from_run > rules.c.valid_from_run,
            later_rule.c.valid_from_run.in_(old_runs),
        )
        .exists(),
        select(later_card.c.valid_from_run)
        .where(
            later_card.c.service_id == rules.c.service_id,
            later_card.c.scorecard_id == scorecard_of_rule,
            later_card.c.valid_from_run >= rules.c.valid_from_run,
            later_card.c.valid_from_run.in_(old_runs),
        )
        .exists(),
    )
    pruned = _rowcount(
        session.execute(
            delete(rules).where(
                or_(status_replaced, rules.c.outcome_id.is_(None)),
                rules.c.valid_from_run.in_(old_runs),
                score_replaced,
            )
        )
    )
    counts[rules.name] = pruned
    # A scorecard row goes once the key's next scorecard row began before the cutoff; an end
    # marker from before the cutoff, once what it ended is gone.
    level_replaced = (
        select(later_card.c.valid_from_run)
        .where(
            later_card.c.service_id == cards.c.service_id,
            later_card.c.scorecard_id == cards.c.scorecard_id,
            later_card.c.valid_from_run > cards.c.valid_from_run,
            later_card.c.valid_from_run.in_(old_runs),
        )
        .exists()
    )
    pruned = _rowcount(session.execute(delete(cards).where(level_replaced)))
    ends = session.execute(
        delete(cards).where(cards.c.version_id.is_(None), cards.c.valid_from_run.in_(old_runs))
    )
    counts[cards.name] = pruned + _rowcount(ends)
    # Snapshots replaced by a newer one of the same (service, source) and not confirmed since.
    table = table_of(FactSnapshot)
    newer = table.alias("newer")
    result = session.execute(
        delete(table).where(
            table.c.confirmed_at < before,
            select(newer.c.id)
            .where(
                and_(
                    newer.c.service == table.c.service,
                    newer.c.source == table.c.source,
                    newer.c.id > table.c.id,
                )
            )
            .exists(),
        )
    )
    counts["fact_snapshot"] = _rowcount(result)
    # Outcomes neither a history row nor a current result points at any more.
    unused = [
        row.id
        for row in session.execute(
            select(col(RuleOutcome.id)).where(
                ~select(col(RuleState.outcome_id))
                .where(col(RuleState.outcome_id) == col(RuleOutcome.id))
                .exists()
            )
        )
    ]
    if unused:
        in_use = {
            outcome_id
            for (pairs,) in session.execute(select(col(CurrentResult.outcomes)))
            for _, outcome_id in pairs
        }
        unused = [outcome_id for outcome_id in unused if outcome_id not in in_use]
    for part in chunks(unused):
        session.execute(delete(RuleOutcome).where(col(RuleOutcome.id).in_(part)))
    counts["rule_outcome"] = len(unused)
    # Runs older than retention that no remaining state starts at.
    referenced = or_(
        select(col(ScorecardState.valid_from_run))
        .where(col(ScorecardState.valid_from_run) == col(EvaluationRun.id))
        .exists(),
        select(col(RuleState.valid_from_run))
        .where(col(RuleState.valid_from_run) == col(EvaluationRun.id))
        .exists(),
        select(col(CurrentResult.run_id))
        .where(col(CurrentResult.run_id) == col(EvaluationRun.id))
        .exists(),
        select(col(CurrentResult.since_run))
        .where(col(CurrentResult.since_run) == col(EvaluationRun.id))
        .exists(),
    )
    result = session.execute(
        delete(EvaluationRun).where(col(EvaluationRun.requested_at) < before, ~referenced)
    )
    counts["evaluation_run"] = _rowcount(result)
    return counts
