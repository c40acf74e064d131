"""Results as they were at a moment, across all services: how many held each level, and
each result's level and the rules it did not satisfy.

Read from history rather than ``current_result``, so a report for a past week says what was
true then, and the same week read again says the same. "At a moment" is as of the last
complete run at or before it: each key's latest scorecard row (and each (service, rule)'s
latest rule row) up to that run, unless the row ends it. A query or two answer it for every
service at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from engine.evaluation import SATISFIED, RuleStatus
from engine.storage import runs
from engine.storage.models import (
    RuleOutcome,
    RuleState,
    ScorecardRecord,
    ScorecardRule,
    ScorecardState,
    ServiceRecord,
)
from engine.storage.scorecards import level_name, level_names_of, version_definitions


@dataclass(frozen=True)
class ResultAsOf:
    """A service's level rank on an active scorecard at a moment, and the rules it did not
    satisfy then (what blocks a level; most rules pass, and are left out)."""

    service: str
    owner: str
    scorecard: str
    rank: int
    unsatisfied: dict[str, RuleStatus]  # rule name -> fail, unknown or error


@dataclass(frozen=True)
class LevelCount:
    """How many services of one owner held one level of a scorecard."""

    scorecard: str
    owner: str
    level: str | None  # None: no level
    rank: int
    services: int


def level_counts_as_of(session: Session, *, at: datetime) -> list[LevelCount]:
    """Services per scorecard, owner and level as they were at ``at`` (the last complete run
    at or before it): each result's latest scorecard row up to that run, unless it ended."""
    run_id = runs.run_at(session, at=at)
    if run_id is None:
        return []
    query = _graded_at(run_id, lambda state: (
        col(ScorecardRecord.name), col(ServiceRecord.owner), state.version_id, state.level_rank,
        func.count()))
    rows = session.execute(query.group_by(*list(query.selected_columns)[:4])).all()
    names = level_names_of(version_definitions(session, {r[2] for r in rows}))
    counts: dict[tuple[str, str, str | None, int], int] = {}
    for scorecard, owner, version_id, rank, services in rows:
        key = (scorecard, owner, level_name(names, version_id, rank), rank)
        counts[key] = counts.get(key, 0) + services  # the same level in two versions
    return [LevelCount(*key, services) for key, services in sorted(
        counts.items(), key=lambda item: (item[0][0], item[0][1], item[0][3]))]


def results_as_of(session: Session, *, at: datetime) -> list[ResultAsOf]:
    """Every graded result on active scorecards as of the last complete run at or before
    ``at``, by scorecard and service."""
    run_id = runs.run_at(session, at=at)
    if run_id is None:
        return []
    unsatisfied: dict[tuple[int, int], dict[str, RuleStatus]] = {}
    for service_id, scorecard_id, rule, status in _unsatisfied_rules(session, run_id):
        unsatisfied.setdefault((service_id, scorecard_id), {})[rule] = RuleStatus(status)
    return [
        ResultAsOf(service, owner, scorecard, rank, unsatisfied.get((service_id, scorecard_id), {}))
        for service_id, scorecard_id, service, owner, scorecard, rank in _levels(session, run_id)
    ]


def _levels(session: Session, run_id: int) -> list[Any]:
    """(service id, scorecard id, service, owner, scorecard, rank) of each result graded at
    the run: its key's latest scorecard row up to the run, unless that row ends it."""
    query = _graded_at(run_id, lambda state: (
        state.service_id, state.scorecard_id, col(ServiceRecord.name), col(ServiceRecord.owner),
        col(ScorecardRecord.name), state.level_rank))
    return list(session.execute(
        query.order_by(col(ScorecardRecord.name), col(ServiceRecord.name))).all())


def _graded_at(run_id: int, columns: Callable[[Any], Sequence[Any]]) -> Any:
    """``columns`` (of the state row, its service and scorecard) of each result graded at the
    run: its key's latest scorecard row up to the run, unless that row ends it; active
    scorecards only."""
    state: Any = aliased(ScorecardState, name="state")
    latest = _latest_card_rows(run_id)
    return (
        select(*columns(state))
        .select_from(state)
        .join(latest, and_(latest.c.service_id == state.service_id,
                           latest.c.scorecard_id == state.scorecard_id,
                           latest.c.run == state.valid_from_run))
        .join(ServiceRecord, col(ServiceRecord.id) == state.service_id)
        .join(ScorecardRecord, col(ScorecardRecord.id) == state.scorecard_id)
        .where(state.version_id.is_not(None), col(ScorecardRecord.active))
    )


def _latest_card_rows(run_id: int) -> Any:
    """The run of each key's latest scorecard row up to ``run_id`` (through the primary key)."""
    return (
        select(col(ScorecardState.service_id), col(ScorecardState.scorecard_id),
               func.max(col(ScorecardState.valid_from_run)).label("run"))
        .where(col(ScorecardState.valid_from_run) <= run_id)
        .group_by(col(ScorecardState.service_id), col(ScorecardState.scorecard_id))
        .subquery("latest")
    )


def _unsatisfied_rules(session: Session, run_id: int) -> list[Any]:
    """(service id, scorecard id, rule, status) of each rule evaluated and not satisfied at
    the run: its latest rule row up to the run, unless that row ends it (no outcome)."""
    latest = (
        select(col(RuleState.service_id), col(RuleState.rule_id),
               func.max(col(RuleState.valid_from_run)).label("run"))
        .where(col(RuleState.valid_from_run) <= run_id)
        .group_by(col(RuleState.service_id), col(RuleState.rule_id))
        .subquery("latest")
    )
    return list(session.execute(
        select(col(RuleState.service_id), col(ScorecardRule.scorecard_id),
               col(ScorecardRule.name), col(RuleOutcome.status))
        .select_from(RuleState)
        .join(latest, and_(latest.c.service_id == col(RuleState.service_id),
                           latest.c.rule_id == col(RuleState.rule_id),
                           latest.c.run == col(RuleState.valid_from_run)))
        .join(RuleOutcome, col(RuleOutcome.id) == col(RuleState.outcome_id))
        .join(ScorecardRule, col(ScorecardRule.id) == col(RuleState.rule_id))
        .where(col(RuleOutcome.status).not_in(sorted(SATISFIED)))
    ).all())
