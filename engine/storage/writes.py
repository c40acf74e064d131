"""Writing: services, scorecard versions, fact snapshots and evaluation results.

Every function takes the session first and keywords after; none commits (the caller owns the
transaction, so a run is stored whole or not at all). History is appended: a changed state
closes the current interval (sets ``valid_to_run``) and opens a new one.
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

from engine.catalog import Service
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
# One writer of interval history at a time (PostgreSQL); SQLite serializes writers itself.
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


def record_results(
    session: Session,
    *,
    run: EvaluationRun,
    results: Sequence[ScorecardResult],
    service_ids: Mapping[str, int],
    scorecards: StoredScorecards,
    scope: Iterable[int] | None = None,
) -> StoreOutcome:
    """Write what changed since the current state; close results that no longer exist.

    ``scope`` limits which services' absent results are closed (None: every service).
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

    if changed:
        needed = {d for _, _, _, rds in changed for _, d in rds}
        outcome_ids = _outcome_ids(session, {d: outcomes[d] for d in needed})
        changed_services = sorted({key[0] for key, _, _, _ in changed})
        rule_now: dict[tuple[int, int], int] = {}
        card_now: dict[tuple[int, int], tuple[int, str | None, float]] = {}
        for part in chunks(changed_services):
            for row in session.execute(
                select(
                    col(RuleState.service_id), col(RuleState.rule_id), col(RuleState.outcome_id)
                ).where(col(RuleState.service_id).in_(part), col(RuleState.valid_to_run).is_(None))
            ):
                rule_now[(row.service_id, row.rule_id)] = row.outcome_id
            for srow in session.execute(
                select(
                    col(ScorecardState.service_id),
                    col(ScorecardState.scorecard_id),
                    col(ScorecardState.version_id),
                    col(ScorecardState.level),
                    col(ScorecardState.score),
                ).where(
                    col(ScorecardState.service_id).in_(part),
                    col(ScorecardState.valid_to_run).is_(None),
                )
            ):
                card_now[(srow.service_id, srow.scorecard_id)] = (
                    srow.version_id,
                    srow.level,
                    srow.score,
                )
        close_rules: list[dict[str, int]] = []
        open_rules: list[dict[str, Any]] = []
        close_cards: list[dict[str, int]] = []
        open_cards: list[dict[str, Any]] = []
        for (service_id, scorecard_id), result, _whole, rule_digests in changed:
            wanted_rules = {rule_id: outcome_ids[d] for rule_id, d in rule_digests}
            for rule_id in scorecards.rule_ids[result.scorecard].values():
                was = rule_now.get((service_id, rule_id))
                now_id = wanted_rules.get(rule_id)
                if was == now_id:
                    continue
                if was is not None:
                    close_rules.append({"s": service_id, "r": rule_id})
                if now_id is not None:
                    open_rules.append(
                        {
                            "service_id": service_id,
                            "rule_id": rule_id,
                            "valid_from_run": run_id,
                            "outcome_id": now_id,
                        }
                    )
            version_id = scorecards.version_ids[result.scorecard]
            state = (version_id, result.level, result.score)
            was_card = card_now.get((service_id, scorecard_id))
            if was_card != state:
                if was_card is not None:
                    close_cards.append({"s": service_id, "c": scorecard_id})
                open_cards.append(
                    {
                        "service_id": service_id,
                        "scorecard_id": scorecard_id,
                        "valid_from_run": run_id,
                        "version_id": version_id,
                        "level": result.level,
                        "level_rank": scorecards.rank(result.scorecard, result.level),
                        "score": result.score,
                    }
                )
        _close(session, RuleState, "rule_id", "r", close_rules, run_id)
        _close(session, ScorecardState, "scorecard_id", "c", close_cards, run_id)
        for batch in chunks(open_rules, 5000):
            session.execute(insert(RuleState), batch)
        for batch in chunks(open_cards, 5000):
            session.execute(insert(ScorecardState), batch)
        outcome.opened_rules = len(open_rules)

    if gone:
        _close_results(session, gone, scorecards, run_id)

    # Current results: update changed rows in place, add new ones, drop removed ones.
    table = table_of(CurrentResult)
    rows = [
        {
            "service_id": key[0],
            "scorecard_id": key[1],
            "digest": whole,
            "run_id": run_id,
            "level": result.level,
            "score": result.score,
            "level_rank": scorecards.rank(result.scorecard, result.level),
        }
        for key, result, whole, _ in changed
    ]
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
                    for name in ("digest", "run_id", "level", "level_rank", "score")
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


def _close(
    session: Session,
    model: type[RuleState] | type[ScorecardState],
    column: str,
    param: str,
    keys: list[dict[str, int]],
    run_id: int,
) -> None:
    if not keys:
        return
    table = table_of(model)
    statement = (
        update(table)
        .where(
            table.c.service_id == bindparam("s"),
            table.c[column] == bindparam(param),
            table.c.valid_to_run.is_(None),
        )
        .values(valid_to_run=run_id)
    )
    session.execute(statement, keys)


def _close_results(
    session: Session, keys: list[tuple[int, int]], scorecards: StoredScorecards, run_id: int
) -> None:
    """Results that are gone (service left, filter now false, scorecard retired)."""
    for service_id, scorecard_id in keys:
        session.execute(
            update(ScorecardState)
            .where(
                col(ScorecardState.service_id) == service_id,
                col(ScorecardState.scorecard_id) == scorecard_id,
                col(ScorecardState.valid_to_run).is_(None),
            )
            .values(valid_to_run=run_id)
        )
        rule_ids = select(col(ScorecardRule.id)).where(
            col(ScorecardRule.scorecard_id) == scorecard_id
        )
        session.execute(
            update(RuleState)
            .where(
                col(RuleState.service_id) == service_id,
                col(RuleState.rule_id).in_(rule_ids),
                col(RuleState.valid_to_run).is_(None),
            )
            .values(valid_to_run=run_id)
        )


def prune(session: Session, *, before: datetime) -> dict[str, int]:
    """Delete history that ended before ``before`` (closed intervals, superseded snapshots)."""
    old_runs = select(col(EvaluationRun.id)).where(col(EvaluationRun.evaluated_at) < before)
    counts = {}
    for model in (RuleState, ScorecardState):
        table = table_of(model)
        result = session.execute(
            delete(table).where(
                table.c.valid_to_run.is_not(None), table.c.valid_to_run.in_(old_runs)
            )
        )
        counts[table.name] = _rowcount(result)
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
    # Outcomes no interval points at any more.
    used = (
        select(col(RuleState.outcome_id))
        .where(col(RuleState.outcome_id) == col(RuleOutcome.id))
        .exists()
    )
    result = session.execute(delete(RuleOutcome).where(~used))
    counts["rule_outcome"] = _rowcount(result)
    # Runs older than retention that no remaining interval starts or ends at.
    referenced = or_(
        select(col(ScorecardState.valid_from_run))
        .where(col(ScorecardState.valid_from_run) == col(EvaluationRun.id))
        .exists(),
        select(col(RuleState.valid_from_run))
        .where(col(RuleState.valid_from_run) == col(EvaluationRun.id))
        .exists(),
        select(col(ScorecardState.valid_to_run))
        .where(col(ScorecardState.valid_to_run) == col(EvaluationRun.id))
        .exists(),
        select(col(CurrentResult.run_id))
        .where(col(CurrentResult.run_id) == col(EvaluationRun.id))
        .exists(),
    )
    result = session.execute(
        delete(EvaluationRun).where(col(EvaluationRun.requested_at) < before, ~referenced)
    )
    counts["evaluation_run"] = _rowcount(result)
    return counts
