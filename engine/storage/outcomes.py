"""Current rule outcomes of some services: each current result with its rules' statuses and
messages (what a level-drop alert says blocks the service now).

``current_result`` points at outcomes stored once (``rule_outcome``): a query per 500
services for the results, one for rule names and one per 500 distinct outcomes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from engine.evaluation import RuleStatus
from engine.storage.database import chunks
from engine.storage.models import (
    CurrentResult,
    RuleOutcome,
    ScorecardRecord,
    ScorecardRule,
    ServiceRecord,
)


@dataclass(frozen=True)
class CurrentRules:
    """A service's current result on an active scorecard with each rule's status and message."""

    service: str
    owner: str
    scorecard: str
    rank: int
    score: float
    statuses: dict[str, RuleStatus]  # rule name -> status
    messages: dict[str, str]  # rule name -> message


def current_rules(session: Session, *, services: Collection[str]) -> list[CurrentRules]:
    """The current results of ``services`` on active scorecards, by scorecard and service."""
    query = (
        select(col(ServiceRecord.name), col(ServiceRecord.owner), col(ScorecardRecord.name),
               col(CurrentResult.level_rank), col(CurrentResult.score),
               col(CurrentResult.outcomes))
        .join(ServiceRecord, col(ServiceRecord.id) == col(CurrentResult.service_id))
        .join(ScorecardRecord, col(ScorecardRecord.id) == col(CurrentResult.scorecard_id))
        .where(col(ScorecardRecord.active))
        .order_by(col(ScorecardRecord.name), col(ServiceRecord.name))
    )
    rows = sorted((r for part in chunks(sorted(set(services)))
                   for r in session.execute(query.where(col(ServiceRecord.name).in_(part)))),
                  key=lambda r: (r[2], r[0]))
    rule_names = dict(session.execute(
        select(col(ScorecardRule.id), col(ScorecardRule.name))
        .join(ScorecardRecord, col(ScorecardRecord.id) == col(ScorecardRule.scorecard_id))
        .where(col(ScorecardRecord.active))
    ).all())
    outcomes = _outcomes(session, {o for r in rows for _, o in r[5]})
    return [
        CurrentRules(
            service=service, owner=owner, scorecard=scorecard, rank=rank, score=score,
            statuses={rule_names[rule]: outcomes[o][0] for rule, o in pairs if rule in rule_names},
            messages={rule_names[rule]: outcomes[o][1] for rule, o in pairs if rule in rule_names},
        )
        for service, owner, scorecard, rank, score, pairs in rows
    ]


def _outcomes(session: Session, ids: set[int]) -> dict[int, tuple[RuleStatus, str]]:
    """Status and message of each outcome."""
    found: dict[int, tuple[RuleStatus, str]] = {}
    for part in chunks(sorted(ids)):
        for row in session.execute(
            select(col(RuleOutcome.id), col(RuleOutcome.status), col(RuleOutcome.message))
            .where(col(RuleOutcome.id).in_(part))
        ):
            found[row.id] = (RuleStatus(row.status), row.message)
    return found
