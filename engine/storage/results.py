"""Every current result with its rules, read in bulk: what `evaluate --format json` prints.

An incremental run evaluates only what changed, so the full per-rule picture of a fleet is
the stored one; this reads it a few thousand results at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from engine.storage.database import chunks, table_of
from engine.storage.models import (
    CurrentResult,
    RuleOutcome,
    ScorecardRecord,
    ScorecardRule,
    ScorecardVersion,
    ServiceRecord,
)

PAGE = 2000


def current_results(
    session: Session, *, services: Collection[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Each current result (of ``services``) as ``ScorecardResult.to_dict`` gives it, by
    service and scorecard name."""
    rule_names = dict(session.execute(select(col(ScorecardRule.id), col(ScorecardRule.name))).all())
    current = table_of(CurrentResult)
    query = (select(col(ServiceRecord.name), col(ScorecardRecord.name), current.c.version_id,
                    current.c.level, current.c.level_rank, current.c.score, current.c.outcomes)
             .join(ServiceRecord, col(ServiceRecord.id) == current.c.service_id)
             .join(ScorecardRecord, col(ScorecardRecord.id) == current.c.scorecard_id)
             .where(col(ScorecardRecord.active))
             .order_by(col(ServiceRecord.name), col(ScorecardRecord.name)))
    if services is not None:
        query = query.where(col(ServiceRecord.name).in_(sorted(services)))
    definitions: dict[int, dict[str, Any]] = {}
    for page in chunks(session.execute(query), PAGE):
        _definitions(session, definitions, {row.version_id for row in page})
        outcomes = _outcomes(session, {o for row in page for _, o in row.outcomes})
        for row in page:
            yield _result(row, definitions[row.version_id], rule_names, outcomes)


def _definitions(session: Session, known: dict[int, dict[str, Any]], ids: set[int]) -> None:
    missing = sorted(ids - known.keys())
    for part in chunks(missing):
        for version_id, definition in session.execute(
                select(col(ScorecardVersion.id), col(ScorecardVersion.definition))
                .where(col(ScorecardVersion.id).in_(part))):
            known[version_id] = definition


def _outcomes(session: Session, ids: set[int]) -> dict[int, tuple[str, str, Any]]:
    found: dict[int, tuple[str, str, Any]] = {}
    for part in chunks(sorted(ids)):
        for row in session.execute(
                select(col(RuleOutcome.id), col(RuleOutcome.status), col(RuleOutcome.message),
                       col(RuleOutcome.evidence)).where(col(RuleOutcome.id).in_(part))):
            found[row.id] = (row.status, row.message, row.evidence)
    return found


def _result(row: Any, definition: dict[str, Any], rule_names: dict[int, str],
            outcomes: dict[int, tuple[str, str, Any]]) -> dict[str, Any]:
    by_name = {rule_names[rule_id]: outcomes[outcome_id] for rule_id, outcome_id in row.outcomes
               if rule_id in rule_names and outcome_id in outcomes}
    levels = [lv["name"] for lv in sorted(definition.get("levels", []), key=lambda lv: lv["rank"])]
    rules = [
        {"name": rule["name"], "level": rule.get("level"), "status": by_name[rule["name"]][0],
         "message": by_name[rule["name"]][1], "weight": rule.get("weight", 1.0),
         "evidence": by_name[rule["name"]][2] or {}}
        for rule in definition.get("rules", []) if rule["name"] in by_name
    ]
    return {"service": row[0], "scorecard": row[1], "level": row.level, "score": row.score,
            "next_level": levels[row.level_rank] if row.level_rank < len(levels) else None,
            "rules": rules}
