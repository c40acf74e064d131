"""Reading history: what a result held over time, as of a moment, and level changes.

A result's level and score at any run are its latest scorecard row at or before the run, with
the score of any later rule row of its scorecard up to the run (models.py explains the rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from engine.storage import runs
from engine.storage.history.diff import Direction
from engine.storage.models import (
    EvaluationRun,
    RuleState,
    ScorecardRecord,
    ScorecardRule,
    ScorecardState,
    ServiceRecord,
)
from engine.storage.public import HistoryPoint, LevelChange
from engine.storage.scorecards import get_scorecard, level_name, level_names
from engine.storage.services import get_service


@dataclass
class _Point:
    """One level and score a result held: from ``start`` until ``end`` (run ids)."""

    version_id: int
    level_rank: int
    score: float
    start: int
    end: int | None = None


def _timeline(session: Session, *, service_id: int, scorecard_id: int) -> list[_Point]:
    """What a result held, oldest first, from its scorecard rows and the rule rows between.

    A scorecard row sets version, level and score; a rule row that changed a status in
    between carries the new score. An end marker ends the point before it.
    """
    events: dict[int, tuple[bool, int | None, int, float]] = {}
    for row in session.execute(
        select(
            col(RuleState.valid_from_run), col(RuleState.score)
        ).where(
            col(RuleState.service_id) == service_id,
            col(RuleState.rule_id).in_(
                select(col(ScorecardRule.id)).where(col(ScorecardRule.scorecard_id) == scorecard_id)
            ),
        )
    ):
        events[row.valid_from_run] = (False, None, 0, row.score)
    for card in session.execute(
        select(ScorecardState).where(
            col(ScorecardState.service_id) == service_id,
            col(ScorecardState.scorecard_id) == scorecard_id,
        )
    ).scalars():  # a scorecard row outweighs rule rows of the same run
        events[card.valid_from_run] = (True, card.version_id, card.level_rank, card.score)
    points: list[_Point] = []
    current: _Point | None = None
    for run_id in sorted(events):
        is_card, version_id, rank, score = events[run_id]
        if is_card:
            nxt = None if version_id is None else _Point(version_id, rank, score, run_id)
        elif current is None:
            continue  # a rule row from before the oldest kept scorecard row, or after an end
        else:
            nxt = _Point(current.version_id, current.level_rank, score, run_id)
        if current is not None and nxt is not None and (
            current.version_id, current.level_rank, current.score
        ) == (nxt.version_id, nxt.level_rank, nxt.score):
            continue
        if current is not None:
            current.end = run_id
        current = nxt
        if nxt is not None:
            points.append(nxt)
    return points


def level_as_of(
    session: Session, *, service: str, scorecard: str, at: datetime
) -> HistoryPoint | None:
    """Level and score of a service on a scorecard as they were at ``at`` (None: not graded)."""
    record = get_service(session, service)
    card, _ = get_scorecard(session, scorecard)
    run_id = runs.run_at(session, at=at)
    if run_id is None:
        return None
    assert record.id is not None and card.id is not None
    timeline = _timeline(session, service_id=record.id, scorecard_id=card.id)
    point = next(
        (p for p in reversed(timeline) if p.start <= run_id and (p.end is None or p.end > run_id)),
        None,
    )
    if point is None:
        return None
    times = runs.run_times(session, {point.start, point.end or point.start})
    names = level_names(session, {point.version_id})
    return HistoryPoint(
        level=level_name(names, point.version_id, point.level_rank),
        rank=point.level_rank,
        score=point.score,
        start=times.get(point.start),
        end=times.get(point.end) if point.end is not None else None,
    )


def history(
    session: Session,
    *,
    service: str,
    scorecard: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[HistoryPoint]:
    """Every level and score the service held on the scorecard within [since, until]."""
    record = get_service(session, service)
    card, _ = get_scorecard(session, scorecard)
    assert record.id is not None and card.id is not None
    timeline = _timeline(session, service_id=record.id, scorecard_id=card.id)
    times = runs.run_times(
        session, {p.start for p in timeline} | {p.end for p in timeline if p.end is not None}
    )
    names = level_names(session, {p.version_id for p in timeline})
    points = []
    for p in timeline:
        start = times.get(p.start)
        end = times.get(p.end) if p.end is not None else None
        if until is not None and start is not None and start > until:
            continue
        if since is not None and end is not None and end <= since:
            continue
        points.append(
            HistoryPoint(
                level=level_name(names, p.version_id, p.level_rank),
                rank=p.level_rank,
                score=p.score,
                start=start,
                end=end,
            )
        )
    return points


def level_change_query(
    scorecard_id: int | None, since: datetime | None, until: datetime | None
) -> Any:
    """Consecutive scorecard rows of a key with different ranks, with when, names and owner."""
    state: Any = aliased(ScorecardState, name="state")
    previous: Any = aliased(ScorecardState, name="previous")
    earlier: Any = aliased(ScorecardState, name="earlier")
    run: Any = aliased(EvaluationRun)
    # The row before a state is the key's latest earlier row (found through the primary key).
    before = (
        select(func.max(earlier.valid_from_run))
        .where(earlier.service_id == state.service_id,
               earlier.scorecard_id == state.scorecard_id,
               earlier.valid_from_run < state.valid_from_run)
        .correlate(state)
        .scalar_subquery()
    )
    query = (
        select(col(ServiceRecord.name).label("service"), col(ServiceRecord.owner),
               col(ScorecardRecord.name).label("scorecard"), run.evaluated_at,
               state.service_id, state.scorecard_id, state.valid_from_run,
               previous.version_id.label("previous_version"),
               previous.level_rank.label("previous_rank"), state.version_id, state.level_rank)
        .select_from(state)
        .join(run, run.id == state.valid_from_run)
        .join(previous, and_(previous.service_id == state.service_id,
                             previous.scorecard_id == state.scorecard_id,
                             previous.valid_from_run == before))
        .join(ServiceRecord, col(ServiceRecord.id) == state.service_id)
        .join(ScorecardRecord, col(ScorecardRecord.id) == state.scorecard_id)
        .where(previous.level_rank != state.level_rank, state.version_id.is_not(None),
               previous.version_id.is_not(None))
        .order_by(state.valid_from_run.desc(), col(ServiceRecord.name), col(ScorecardRecord.name))
    )
    if scorecard_id is not None:
        query = query.where(state.scorecard_id == scorecard_id)
    if since is not None:
        query = query.where(run.evaluated_at >= since)
    if until is not None:
        query = query.where(run.evaluated_at <= until)
    return query


def level_changes(
    session: Session,
    *,
    scorecard: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[LevelChange]]:
    """Promotions and regressions across all services within [since, until], newest first."""
    scorecard_id = get_scorecard(session, scorecard)[0].id if scorecard is not None else None
    query = level_change_query(scorecard_id, since, until)
    total = session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = session.execute(query.limit(limit).offset(offset)).all()
    names = level_names(session, {v for r in rows for v in (r.version_id, r.previous_version)})
    return total, [
        LevelChange(
            service=r.service, scorecard=r.scorecard, at=r.evaluated_at, run_id=r.valid_from_run,
            previous=level_name(names, r.previous_version, r.previous_rank),
            level=level_name(names, r.version_id, r.level_rank),
            direction=Direction.PROMOTION if r.level_rank > r.previous_rank
            else Direction.REGRESSION,
        )
        for r in rows
    ]
