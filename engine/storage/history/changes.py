"""Level changes across services within a period, with the rules that caused each one.

What a report reads: every service and scorecard at once (two queries, not one per
service), so a week over 10,000 services stays cheap.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from engine.evaluation import RuleStatus
from engine.storage.database import chunks
from engine.storage.history.diff import Direction
from engine.storage.history.timeline import level_change_query
from engine.storage.models import RuleOutcome, RuleState, ScorecardRule, ServiceRecord
from engine.storage.scorecards import level_name, level_names_of, version_definitions


@dataclass(frozen=True)
class RuleCause:
    """A rule whose status change moved a level: its status from then (None: no longer graded)."""

    rule: str
    status: RuleStatus | None


@dataclass(frozen=True)
class CausedChange:
    """A promotion or regression, with the rules whose status change caused it."""

    service: str
    owner: str
    scorecard: str
    at: datetime
    run_id: int
    previous: str | None
    level: str | None
    previous_rank: int
    rank: int
    direction: Direction
    causes: tuple[RuleCause, ...]
    version_changed: bool  # the scorecard's version changed in the same run


def level_changes_with_causes(
    session: Session, *, since: datetime, until: datetime
) -> list[CausedChange]:
    """Every level change evaluated in (since, until], oldest first, each with its causes.

    A regression's causes are the rules of the levels it lost (above the new level, up to the
    old one) whose status became unsatisfied in that run; a promotion's, the rules of the
    levels it gained whose status became satisfied (or that stopped being graded).
    """
    query = level_change_query(None, since, until)
    rows = [r for r in session.execute(query).all() if r.evaluated_at > since]
    transitions = _rule_transitions(session, query.order_by(None).subquery("change"))
    definitions = version_definitions(
        session, {v for r in rows for v in (r.version_id, r.previous_version)})
    names = level_names_of(definitions)
    changes = []
    for r in sorted(rows, key=lambda r: (r.valid_from_run, r.service, r.scorecard)):
        promotion = r.level_rank > r.previous_rank
        ranks = {**_rule_ranks(definitions.get(r.previous_version, {})),
                 **_rule_ranks(definitions.get(r.version_id, {}))}
        changes.append(CausedChange(
            service=r.service, owner=r.owner, scorecard=r.scorecard, at=r.evaluated_at,
            run_id=r.valid_from_run, previous=level_name(names, r.previous_version,
                                                         r.previous_rank),
            level=level_name(names, r.version_id, r.level_rank), previous_rank=r.previous_rank,
            rank=r.level_rank,
            direction=Direction.PROMOTION if promotion else Direction.REGRESSION,
            causes=causes_of(transitions.get((r.service_id, r.scorecard_id, r.valid_from_run), []),
                             ranks, r.previous_rank, r.level_rank),
            version_changed=r.version_id != r.previous_version,
        ))
    return changes


Transition = tuple[str, RuleStatus | None, RuleStatus | None]  # rule, status before, after


def _rule_transitions(session: Session, change: Any) -> dict[tuple[int, int, int], list[Transition]]:
    """The rule rows each change's run wrote for its service on its scorecard, with the status
    each rule had before (its latest earlier row), keyed by (service, scorecard, run) ids."""
    earlier: Any = aliased(RuleState, name="earlier")
    before_row: Any = aliased(RuleState, name="before_row")
    after_outcome: Any = aliased(RuleOutcome, name="after_outcome")
    before_outcome: Any = aliased(RuleOutcome, name="before_outcome")
    previous_run = (
        select(func.max(earlier.valid_from_run))
        .where(earlier.service_id == col(RuleState.service_id),
               earlier.rule_id == col(RuleState.rule_id),
               earlier.valid_from_run < col(RuleState.valid_from_run))
        .correlate(RuleState)
        .scalar_subquery()
    )
    rows = session.execute(
        select(change.c.service_id, change.c.scorecard_id, change.c.valid_from_run,
               col(ScorecardRule.name), before_outcome.status.label("before"),
               after_outcome.status.label("after"))
        .select_from(RuleState)
        .join(change, and_(change.c.service_id == col(RuleState.service_id),
                           change.c.valid_from_run == col(RuleState.valid_from_run)))
        .join(ScorecardRule, and_(col(ScorecardRule.id) == col(RuleState.rule_id),
                                  col(ScorecardRule.scorecard_id) == change.c.scorecard_id))
        .outerjoin(after_outcome, after_outcome.id == col(RuleState.outcome_id))
        .outerjoin(before_row, and_(before_row.service_id == col(RuleState.service_id),
                                    before_row.rule_id == col(RuleState.rule_id),
                                    before_row.valid_from_run == previous_run))
        .outerjoin(before_outcome, before_outcome.id == before_row.outcome_id)
    )
    found: dict[tuple[int, int, int], list[Transition]] = {}
    for r in rows:
        found.setdefault((r.service_id, r.scorecard_id, r.valid_from_run), []).append((
            r.name, None if r.before is None else RuleStatus(r.before),
            None if r.after is None else RuleStatus(r.after)))
    return found


def causes_of(
    transitions: Sequence[Transition], ranks: Mapping[str, int], before_rank: int, rank: int
) -> tuple[RuleCause, ...]:
    """The rules that moved a level from ``before_rank`` to ``rank`` (ordered by rule name).

    Only rules of the levels in between count: a rule of a higher level, or one that counts
    for the score only, changes no level.
    """
    low, high = min(before_rank, rank), max(before_rank, rank)
    causes = []
    for rule, before, after in sorted(transitions):
        if not low < ranks.get(rule, 0) <= high:
            continue
        if rank > before_rank:
            caused = before is not None and not before.satisfied and (
                after is None or after.satisfied)
        else:
            caused = after is not None and not after.satisfied and (
                before is None or before.satisfied)
        if caused:
            causes.append(RuleCause(rule, after))
    return tuple(causes)


@dataclass(frozen=True)
class ServiceLevelChange:
    """A level change of one service on one scorecard."""

    service: str
    owner: str
    scorecard: str
    run_id: int
    at: datetime
    previous_rank: int
    rank: int


def service_level_changes(
    session: Session, *, services: Collection[str]
) -> dict[tuple[str, str], list[ServiceLevelChange]]:
    """Each level change of these services, newest first, by (service, scorecard)."""
    query = level_change_query(None, None, None)
    found: dict[tuple[str, str], list[ServiceLevelChange]] = {}
    for part in chunks(sorted(set(services))):
        for r in session.execute(query.where(col(ServiceRecord.name).in_(part))):
            found.setdefault((r.service, r.scorecard), []).append(ServiceLevelChange(
                r.service, r.owner, r.scorecard, r.valid_from_run, r.evaluated_at,
                r.previous_rank, r.level_rank))
    return found


def _rule_ranks(definition: Mapping[str, Any]) -> dict[str, int]:
    """The rank of each rule's level (0: the rule counts for the score only)."""
    ranks = {lv["name"]: lv["rank"] for lv in definition.get("levels", [])}
    return {r["name"]: ranks.get(r.get("level"), 0) for r in definition.get("rules", [])}
