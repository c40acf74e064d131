"""Retention: delete history that ended before a cutoff; what still answers a question stays.

A scorecard row goes once the key's next row began before the cutoff; a rule row once its
rule changed again and a later row carried its score, both before the cutoff; end markers
once what they ended is gone; snapshots replaced and not confirmed since; custom fact values
replaced before the cutoff; outcomes and runs nothing points at any more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select
from sqlmodel import Session, col

from engine.storage.database import chunks, rowcount, table_of
from engine.storage.facts import prune_custom
from engine.storage.models import (
    CurrentResult,
    EvaluationRun,
    FactSnapshot,
    RuleOutcome,
    RuleState,
    ScorecardRule,
    ScorecardState,
)


def prune(session: Session, *, before: datetime) -> dict[str, int]:
    """Delete history that ended before ``before``; returns rows deleted per table."""
    old_runs = select(col(EvaluationRun.id)).where(col(EvaluationRun.evaluated_at) < before)
    return {
        "rule_state": _prune_rule_states(session, old_runs),
        "scorecard_state": _prune_scorecard_states(session, old_runs),
        "fact_snapshot": _prune_snapshots(session, before),
        "custom_fact": prune_custom(session, before=before),
        "rule_outcome": _prune_outcomes(session),
        "evaluation_run": _prune_runs(session, before),
    }


def _prune_rule_states(session: Session, old_runs: Any) -> int:
    """A rule row is kept while it holds its rule's status or its scorecard's score at the
    cutoff: it goes once its rule changed again and a later row carried the score."""
    rules = table_of(RuleState)
    cards = table_of(ScorecardState)
    later_rule = rules.alias("later_rule")
    later_card = cards.alias("later_card")
    own = table_of(ScorecardRule).alias("own")
    other = table_of(ScorecardRule).alias("other")
    scorecard_of_rule = (
        select(own.c.scorecard_id).where(own.c.id == rules.c.rule_id)
        .correlate_except(own).scalar_subquery()
    )
    status_replaced = select(later_rule.c.valid_from_run).where(
        later_rule.c.service_id == rules.c.service_id,
        later_rule.c.rule_id == rules.c.rule_id,
        later_rule.c.valid_from_run > rules.c.valid_from_run,
        later_rule.c.valid_from_run.in_(old_runs),
    ).exists()
    score_replaced = or_(
        select(later_rule.c.valid_from_run)
        .join(other, other.c.id == later_rule.c.rule_id)
        .where(
            later_rule.c.service_id == rules.c.service_id,
            other.c.scorecard_id == scorecard_of_rule,
            later_rule.c.valid_from_run > rules.c.valid_from_run,
            later_rule.c.valid_from_run.in_(old_runs),
        ).exists(),
        select(later_card.c.valid_from_run).where(
            later_card.c.service_id == rules.c.service_id,
            later_card.c.scorecard_id == scorecard_of_rule,
            later_card.c.valid_from_run >= rules.c.valid_from_run,
            later_card.c.valid_from_run.in_(old_runs),
        ).exists(),
    )
    return rowcount(session.execute(delete(rules).where(
        or_(status_replaced, rules.c.outcome_id.is_(None)),
        rules.c.valid_from_run.in_(old_runs),
        score_replaced,
    )))


def _prune_scorecard_states(session: Session, old_runs: Any) -> int:
    """A scorecard row goes once the key's next scorecard row began before the cutoff; an end
    marker from before the cutoff, once what it ended is gone."""
    cards = table_of(ScorecardState)
    later_card = cards.alias("later_card")
    level_replaced = select(later_card.c.valid_from_run).where(
        later_card.c.service_id == cards.c.service_id,
        later_card.c.scorecard_id == cards.c.scorecard_id,
        later_card.c.valid_from_run > cards.c.valid_from_run,
        later_card.c.valid_from_run.in_(old_runs),
    ).exists()
    replaced = rowcount(session.execute(delete(cards).where(level_replaced)))
    ends = session.execute(
        delete(cards).where(cards.c.version_id.is_(None), cards.c.valid_from_run.in_(old_runs))
    )
    return replaced + rowcount(ends)


def _prune_snapshots(session: Session, before: datetime) -> int:
    """Snapshots replaced by a newer one of the same (service, source) and not confirmed since."""
    table = table_of(FactSnapshot)
    newer = table.alias("newer")
    return rowcount(session.execute(delete(table).where(
        table.c.confirmed_at < before,
        select(newer.c.id).where(and_(
            newer.c.service == table.c.service,
            newer.c.source == table.c.source,
            newer.c.id > table.c.id,
        )).exists(),
    )))


def _prune_outcomes(session: Session) -> int:
    """Outcomes neither a history row nor a current result points at any more."""
    unused = [
        row.id for row in session.execute(select(col(RuleOutcome.id)).where(
            ~select(col(RuleState.outcome_id))
            .where(col(RuleState.outcome_id) == col(RuleOutcome.id)).exists()
        ))
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
    return len(unused)


def _prune_runs(session: Session, before: datetime) -> int:
    """Runs older than retention that no remaining state starts at."""
    referenced = or_(
        select(col(ScorecardState.valid_from_run))
        .where(col(ScorecardState.valid_from_run) == col(EvaluationRun.id)).exists(),
        select(col(RuleState.valid_from_run))
        .where(col(RuleState.valid_from_run) == col(EvaluationRun.id)).exists(),
        select(col(CurrentResult.run_id))
        .where(col(CurrentResult.run_id) == col(EvaluationRun.id)).exists(),
        select(col(CurrentResult.since_run))
        .where(col(CurrentResult.since_run) == col(EvaluationRun.id)).exists(),
    )
    return rowcount(session.execute(
        delete(EvaluationRun).where(col(EvaluationRun.requested_at) < before, ~referenced)
    ))
