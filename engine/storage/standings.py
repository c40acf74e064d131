"""Current standings: each service's level, score and rule outcomes on each scorecard now.

``current_result`` is read here (pages, lists, leaderboards, metrics); history.record writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlmodel import Session, col

from core.errors import NotFoundError
from engine.storage import runs
from engine.storage.models import (
    CurrentResult,
    RuleOutcome,
    RuleState,
    ScorecardRecord,
    ScorecardRule,
    ScorecardVersion,
    ServiceRecord,
)
from engine.storage.public import (
    LeaderboardRow,
    RulePublic,
    ServiceDetail,
    ServicePublic,
    StandingPublic,
    StoredResult,
)
from engine.storage.scorecards import NO_LEVEL, get_scorecard, levels_of
from engine.storage.services import get_service

SortKey = Literal["score", "level", "name"]
Order = Literal["asc", "desc"]


def graded_on(session: Session, *, scorecard: str, level: str | None = None) -> Any:
    """A subquery of the ids of services graded on ``scorecard`` (at ``level``, or "none")."""
    card, version = get_scorecard(session, scorecard)
    state = select(col(CurrentResult.service_id)).where(col(CurrentResult.scorecard_id) == card.id)
    if level is None:
        return state
    names = {lv.name.lower(): lv.name for lv in levels_of(version)}
    if level.lower() == NO_LEVEL:
        return state.where(col(CurrentResult.level).is_(None))
    if level.lower() not in names:
        raise NotFoundError(
            f'scorecard "{scorecard}" has no level "{level}" (levels: '
            f"{', '.join(names.values())}, {NO_LEVEL})"
        )
    return state.where(col(CurrentResult.level) == names[level.lower()])


def service_detail(session: Session, *, name: str) -> ServiceDetail:
    record = get_service(session, name)
    rows = session.execute(
        select(CurrentResult, col(ScorecardRecord.name), ScorecardVersion)
        .join(ScorecardRecord, col(ScorecardRecord.id) == col(CurrentResult.scorecard_id))
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(CurrentResult.version_id))
        .where(col(CurrentResult.service_id) == record.id, col(ScorecardRecord.active))
        .order_by(col(ScorecardRecord.name))
    ).all()
    times = runs.run_times(session, {r[0].since_run for r in rows})
    evaluated = runs.last_evaluated(session, name)
    standings = [
        StandingPublic(
            scorecard=card_name, level=state.level, rank=state.level_rank, score=state.score,
            levels=len(version.definition.get("levels", [])), since=times.get(state.since_run),
            evaluated_at=evaluated, version=version.content_hash,
        )
        for state, card_name, version in rows
    ]
    public = ServicePublic.model_validate(record, from_attributes=True)
    return ServiceDetail(**public.model_dump(), scorecards=standings)


def leaderboard(
    session: Session,
    *,
    scorecard: str,
    sort: SortKey = "score",
    order: Order = "desc",
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[LeaderboardRow]]:
    card, _ = get_scorecard(session, scorecard)
    base = (
        select(col(ServiceRecord.name), col(ServiceRecord.owner), col(CurrentResult.level),
               col(CurrentResult.level_rank), col(CurrentResult.score))
        .join(ServiceRecord, col(ServiceRecord.id) == col(CurrentResult.service_id))
        .where(col(CurrentResult.scorecard_id) == card.id)
    )
    total = session.execute(
        select(func.count()).where(col(CurrentResult.scorecard_id) == card.id)
    ).scalar_one()
    keys: dict[str, Sequence[Any]] = {
        "score": (col(CurrentResult.score), col(CurrentResult.level_rank)),
        "level": (col(CurrentResult.level_rank), col(CurrentResult.score)),
        "name": (col(ServiceRecord.name),),
    }
    columns = [c.desc() if order == "desc" else c.asc() for c in keys[sort]]
    tiebreak = col(ServiceRecord.name).asc() if sort != "name" else col(ServiceRecord.id).asc()
    rows = session.execute(base.order_by(*columns, tiebreak).limit(limit).offset(offset))
    # Up to 10,000 rows: plain dicts validated in one call are several times faster than
    # building each model and reading each Row attribute by name.
    return total, _LEADERBOARD_ROWS.validate_python([
        {"position": offset + i, "service": name, "owner": owner, "level": level,
         "rank": rank, "score": value}
        for i, (name, owner, level, rank, value) in enumerate(rows, start=1)
    ])


_LEADERBOARD_ROWS = TypeAdapter(list[LeaderboardRow])


def stored_result(session: Session, *, service: str, scorecard: str) -> StoredResult:
    record = get_service(session, service)
    card, _ = get_scorecard(session, scorecard)
    row = session.execute(
        select(CurrentResult, ScorecardVersion)
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(CurrentResult.version_id))
        .where(col(CurrentResult.service_id) == record.id,
               col(CurrentResult.scorecard_id) == card.id)
    ).first()
    if row is None:
        raise NotFoundError(
            f'service "{service}" is not graded on scorecard "{scorecard}" '
            "(its filter excludes it, or it has not been evaluated yet)"
        )
    state, version = row
    assert record.id is not None and card.id is not None
    return StoredResult(
        service=service, scorecard=scorecard, level=state.level, rank=state.level_rank,
        score=state.score, levels=[lv.name for lv in levels_of(version)],
        evaluated_at=runs.last_evaluated(session, service), version=version.content_hash,
        rules=_rules(session, state, version, service_id=record.id, scorecard_id=card.id),
    )


def _rules(
    session: Session, state: CurrentResult, version: ScorecardVersion, *, service_id: int,
    scorecard_id: int,
) -> list[RulePublic]:
    """Each rule's current outcome, in the scorecard's order, with when its status began."""
    rule_names = dict(session.execute(
        select(col(ScorecardRule.id), col(ScorecardRule.name))
        .where(col(ScorecardRule.scorecard_id) == scorecard_id)
    ).all())
    outcome_of = {rule_id: outcome_id for rule_id, outcome_id in state.outcomes}
    found = {o.id: o for o in session.execute(
        select(RuleOutcome).where(col(RuleOutcome.id).in_(sorted(set(outcome_of.values()))))
    ).scalars()}
    current = {rule_names[rule_id]: found[outcome_id]
               for rule_id, outcome_id in outcome_of.items() if rule_id in rule_names}
    # A rule's history has a row only when its status changes, so the current status began
    # with its latest row.
    since_run = {
        rule_names[r.rule_id]: r.since_run
        for r in session.execute(
            select(col(RuleState.rule_id),
                   func.max(col(RuleState.valid_from_run)).label("since_run"))
            .where(col(RuleState.service_id) == service_id,
                   col(RuleState.rule_id).in_(sorted(outcome_of)))
            .group_by(col(RuleState.rule_id))
        ) if r.rule_id in rule_names
    }
    times = runs.run_times(session, set(since_run.values()))
    return [
        RulePublic(
            name=name, title=definition.get("title") or name, level=definition.get("level"),
            weight=definition.get("weight", 1.0), status=current[name].status,
            message=current[name].message, evidence=current[name].evidence or {},
            remediation=definition.get("remediation"),
            since=times.get(since_run[name]) if name in since_run else None,
        )
        for name, definition in ((d["name"], d) for d in version.definition.get("rules", []))
        if name in current
    ]


def current_standings(session: Session) -> list[tuple[str, str, int, float]]:
    """(service, scorecard, rank, score) of every current result: the metrics' source."""
    rows = session.execute(
        select(col(ServiceRecord.name), col(ScorecardRecord.name),
               col(CurrentResult.level_rank), col(CurrentResult.score))
        .join(ServiceRecord, col(ServiceRecord.id) == col(CurrentResult.service_id))
        .join(ScorecardRecord, col(ScorecardRecord.id) == col(CurrentResult.scorecard_id))
        .where(col(ScorecardRecord.active))
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def level_counts(
    session: Session, *, services: Sequence[str] | None = None
) -> dict[str, dict[str, int]]:
    """How many current results reach each level, per scorecard in use (of ``services``)."""
    query = (select(col(ScorecardRecord.name), col(CurrentResult.level), func.count())
             .join(ScorecardRecord, col(ScorecardRecord.id) == col(CurrentResult.scorecard_id))
             .where(col(ScorecardRecord.active))
             .group_by(col(ScorecardRecord.name), col(CurrentResult.level)))
    if services is not None:
        query = query.join(ServiceRecord, col(ServiceRecord.id) == col(CurrentResult.service_id)
                           ).where(col(ServiceRecord.name).in_(list(services)))
    levels: dict[str, dict[str, int]] = {}
    for card, level, count in session.execute(query):
        levels.setdefault(card, {})[level or NO_LEVEL] = int(count)
    return levels
