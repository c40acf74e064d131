"""Reading current state and history. Keyword-only; each query is served by an index.

Only what complete runs wrote is visible: a run's writes commit together with its status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from core.errors import NotFoundError
from engine.gate import GatedRule, GateVerdict
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
)
from engine.storage.public import (
    EvaluationRunPublic,
    FactSnapshotPublic,
    HistoryPoint,
    LeaderboardRow,
    LevelChange,
    LevelPublic,
    RuleDefinition,
    RulePublic,
    ScorecardDetail,
    ScorecardSummary,
    ServiceDetail,
    ServicePublic,
    ServiceScorecard,
    StandingPublic,
)

NO_LEVEL = "none"
SortKey = Literal["score", "level", "name"]
Order = Literal["asc", "desc"]


def _service(session: Session, name: str) -> ServiceRecord:
    record = (
        session.execute(select(ServiceRecord).where(col(ServiceRecord.name) == name))
        .scalars()
        .first()
    )
    if record is None:
        raise NotFoundError(f'unknown service "{name}"')
    return record


def _scorecard(session: Session, name: str) -> tuple[ScorecardRecord, ScorecardVersion]:
    row = session.execute(
        select(ScorecardRecord, ScorecardVersion)
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(ScorecardRecord.version_id))
        .where(col(ScorecardRecord.name) == name, col(ScorecardRecord.active))
    ).first()
    if row is None:
        raise NotFoundError(f'unknown scorecard "{name}"')
    return row[0], row[1]


def _levels(version: ScorecardVersion) -> list[LevelPublic]:
    return [LevelPublic(**lv) for lv in version.definition.get("levels", [])]


def _run_times(session: Session, ids: set[int]) -> dict[int, datetime | None]:
    if not ids:
        return {}
    rows = session.execute(
        select(col(EvaluationRun.id), col(EvaluationRun.evaluated_at)).where(
            col(EvaluationRun.id).in_(sorted(ids))
        )
    )
    return {row.id: row.evaluated_at for row in rows}


def _last_evaluated(session: Session, service: str) -> datetime | None:
    """When the service was last graded: the last complete run that covered it."""
    run_id = session.execute(
        select(func.max(col(EvaluationRun.id))).where(
            col(EvaluationRun.status) == RunStatus.COMPLETE,
            or_(col(EvaluationRun.service).is_(None), col(EvaluationRun.service) == service),
        )
    ).scalar()
    return _run_times(session, {run_id}).get(run_id) if run_id is not None else None


# --- services ------------------------------------------------------------------------------


def list_services(
    session: Session,
    *,
    owner: str | None = None,
    lifecycle: str | None = None,
    scorecard: str | None = None,
    level: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[ServicePublic]]:
    query = select(ServiceRecord).where(col(ServiceRecord.in_catalog))
    if owner is not None:
        query = query.where(col(ServiceRecord.owner) == owner)
    if lifecycle is not None:
        query = query.where(col(ServiceRecord.lifecycle) == lifecycle)
    if level is not None and scorecard is None:
        raise ValueError("level needs scorecard")
    if scorecard is not None:
        card, version = _scorecard(session, scorecard)
        state = select(col(CurrentResult.service_id)).where(
            col(CurrentResult.scorecard_id) == card.id
        )
        if level is not None:
            names = {lv.name.lower(): lv.name for lv in _levels(version)}
            if level.lower() == NO_LEVEL:
                state = state.where(col(CurrentResult.level).is_(None))
            elif level.lower() in names:
                state = state.where(col(CurrentResult.level) == names[level.lower()])
            else:
                raise NotFoundError(
                    f'scorecard "{scorecard}" has no level "{level}" (levels: '
                    f"{', '.join(names.values())}, {NO_LEVEL})"
                )
        query = query.where(col(ServiceRecord.id).in_(state))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(col(ServiceRecord.name)).limit(limit).offset(offset)
    ).scalars()
    return total, [ServicePublic.model_validate(r, from_attributes=True) for r in rows]


def service_detail(session: Session, *, name: str) -> ServiceDetail:
    record = _service(session, name)
    rows = session.execute(
        select(CurrentResult, col(ScorecardRecord.name), ScorecardVersion)
        .join(ScorecardRecord, col(ScorecardRecord.id) == col(CurrentResult.scorecard_id))
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(CurrentResult.version_id))
        .where(col(CurrentResult.service_id) == record.id, col(ScorecardRecord.active))
        .order_by(col(ScorecardRecord.name))
    ).all()
    times = _run_times(session, {r[0].since_run for r in rows})
    evaluated = _last_evaluated(session, name)
    standings = [
        StandingPublic(
            scorecard=card_name,
            level=state.level,
            rank=state.level_rank,
            score=state.score,
            levels=len(version.definition.get("levels", [])),
            since=times.get(state.since_run),
            evaluated_at=evaluated,
            version=version.content_hash,
        )
        for state, card_name, version in rows
    ]
    public = ServicePublic.model_validate(record, from_attributes=True)
    return ServiceDetail(**public.model_dump(), scorecards=standings)


# --- scorecards ----------------------------------------------------------------------------


def _distribution(session: Session, scorecard_id: int) -> dict[str, int]:
    rows = session.execute(
        select(col(CurrentResult.level), func.count())
        .where(
            col(CurrentResult.scorecard_id) == scorecard_id,
        )
        .group_by(col(CurrentResult.level))
    )
    return {(level or NO_LEVEL): count for level, count in rows}


def _summary(card: ScorecardRecord, version: ScorecardVersion, services: int) -> dict[str, Any]:
    definition = version.definition
    return {
        "name": card.name,
        "title": definition.get("title"),
        "description": definition.get("description"),
        "owner": definition.get("owner"),
        "version": version.content_hash,
        "levels": _levels(version),
        "rules": len(definition.get("rules", [])),
        "services": services,
    }


def list_scorecards(session: Session) -> list[ScorecardSummary]:
    rows = session.execute(
        select(ScorecardRecord, ScorecardVersion)
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(ScorecardRecord.version_id))
        .where(col(ScorecardRecord.active))
        .order_by(col(ScorecardRecord.name))
    ).all()
    counts = dict(
        session.execute(
            select(col(CurrentResult.scorecard_id), func.count())
            .group_by(col(CurrentResult.scorecard_id))
        ).all()
    )
    return [
        ScorecardSummary(**_summary(card, version, counts.get(card.id, 0)))
        for card, version in rows
    ]


def scorecard_detail(session: Session, *, name: str) -> ScorecardDetail:
    card, version = _scorecard(session, name)
    assert card.id is not None
    distribution = _distribution(session, card.id)
    full = {lv.name: distribution.get(lv.name, 0) for lv in _levels(version)}
    full[NO_LEVEL] = distribution.get(NO_LEVEL, 0)
    return ScorecardDetail(
        **_summary(card, version, sum(distribution.values())),
        definition=[RuleDefinition(**r) for r in version.definition.get("rules", [])],
        distribution=full,
        source=version.source_text,
        path=version.path,
    )


def leaderboard(
    session: Session,
    *,
    scorecard: str,
    sort: SortKey = "score",
    order: Order = "desc",
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[LeaderboardRow]]:
    card, _ = _scorecard(session, scorecard)
    base = (
        select(
            col(ServiceRecord.name),
            col(ServiceRecord.owner),
            col(CurrentResult.level),
            col(CurrentResult.level_rank),
            col(CurrentResult.score),
        )
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
    rows = session.execute(base.order_by(*columns, tiebreak).limit(limit).offset(offset)).tuples()
    # Up to 10,000 rows: plain dicts validated in one call are several times faster than
    # building each model and reading each Row attribute by name.
    return total, _LEADERBOARD_ROWS.validate_python([
        {"position": offset + i, "service": name, "owner": owner, "level": level,
         "rank": rank, "score": value}
        for i, (name, owner, level, rank, value) in enumerate(rows, start=1)
    ])


_LEADERBOARD_ROWS = TypeAdapter(list[LeaderboardRow])


# --- one service on one scorecard ----------------------------------------------------------


def service_scorecard(session: Session, *, service: str, scorecard: str) -> ServiceScorecard:
    record = _service(session, service)
    card, _ = _scorecard(session, scorecard)
    row = session.execute(
        select(CurrentResult, ScorecardVersion)
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(CurrentResult.version_id))
        .where(
            col(CurrentResult.service_id) == record.id,
            col(CurrentResult.scorecard_id) == card.id,
        )
    ).first()
    if row is None:
        raise NotFoundError(
            f'service "{service}" is not graded on scorecard "{scorecard}" '
            "(its filter excludes it, or it has not been evaluated yet)"
        )
    state, version = row
    definitions = {r["name"]: r for r in version.definition.get("rules", [])}
    rule_names = dict(
        session.execute(
            select(col(ScorecardRule.id), col(ScorecardRule.name)).where(
                col(ScorecardRule.scorecard_id) == card.id
            )
        ).all()
    )
    outcome_of = {rule_id: outcome_id for rule_id, outcome_id in state.outcomes}
    found = {
        o.id: o
        for o in session.execute(
            select(RuleOutcome).where(col(RuleOutcome.id).in_(sorted(set(outcome_of.values()))))
        ).scalars()
    }
    current: dict[str, RuleOutcome] = {
        rule_names[rule_id]: found[outcome_id]
        for rule_id, outcome_id in outcome_of.items()
        if rule_id in rule_names
    }
    # A rule's history has a row only when its status changes, so the current status began
    # with its latest row.
    since_run = {
        rule_names[r.rule_id]: r.since_run
        for r in session.execute(
            select(
                col(RuleState.rule_id), func.max(col(RuleState.valid_from_run)).label("since_run")
            )
            .where(
                col(RuleState.service_id) == record.id,
                col(RuleState.rule_id).in_(sorted(outcome_of)),
            )
            .group_by(col(RuleState.rule_id))
        )
        if r.rule_id in rule_names
    }
    times = _run_times(session, set(since_run.values()))
    rules = []
    for name, definition in definitions.items():
        if name not in current:
            continue
        r = current[name]
        rules.append(
            RulePublic(
                name=name,
                title=definition.get("title") or name,
                level=definition.get("level"),
                weight=definition.get("weight", 1.0),
                status=r.status,
                message=r.message,
                evidence=r.evidence or {},
                remediation=definition.get("remediation"),
                since=times.get(since_run[name]) if name in since_run else None,
            )
        )
    level_names = [lv.name for lv in _levels(version)]
    next_level = level_names[state.level_rank] if state.level_rank < len(level_names) else None
    to_fix: list[RulePublic] = []
    if next_level is not None:
        verdict = gate_verdict_from(
            rules,
            service=service,
            scorecard=scorecard,
            current=state.level,
            score=state.score,
            levels=level_names,
            required=next_level,
        )
        blocking = {r.name for r in verdict.blocking}
        to_fix = [r for r in rules if r.name in blocking]
    return ServiceScorecard(
        service=service,
        scorecard=scorecard,
        level=state.level,
        rank=state.level_rank,
        score=state.score,
        levels=level_names,
        next_level=next_level,
        evaluated_at=_last_evaluated(session, service),
        version=version.content_hash,
        rules=rules,
        to_fix_for_next_level=to_fix,
    )


def gate_verdict_from(
    rules: Sequence[RulePublic],
    *,
    service: str,
    scorecard: str,
    current: str | None,
    score: float,
    levels: Sequence[str],
    required: str,
) -> GateVerdict:
    """The same verdict the local gate builds, from a stored result."""
    return GateVerdict.build(
        service=service,
        scorecard=scorecard,
        required=required,
        current=current,
        score=score,
        levels=levels,
        rules=[
            GatedRule(r.name, r.title, r.level, r.status, r.message, r.remediation) for r in rules
        ],
    )


# --- history -------------------------------------------------------------------------------


def run_at(session: Session, *, at: datetime) -> int | None:
    """The last complete run evaluated at or before ``at``."""
    return session.execute(
        select(func.max(col(EvaluationRun.id))).where(
            col(EvaluationRun.status) == RunStatus.COMPLETE, col(EvaluationRun.evaluated_at) <= at
        )
    ).scalar()


def _level_names(session: Session, version_ids: set[int]) -> dict[int, list[str]]:
    """Level names of scorecard versions, lowest first: a rank's name is ``names[rank - 1]``."""
    if not version_ids:
        return {}
    rows = session.execute(
        select(col(ScorecardVersion.id), col(ScorecardVersion.definition)).where(
            col(ScorecardVersion.id).in_(sorted(version_ids))
        )
    )
    return {
        row.id: [
            lv["name"] for lv in sorted(row.definition.get("levels", []), key=lambda lv: lv["rank"])
        ]
        for row in rows
    }


def _level_name(names: dict[int, list[str]], version_id: int | None, rank: int) -> str | None:
    levels = names.get(version_id, []) if version_id is not None else []
    return levels[rank - 1] if 0 < rank <= len(levels) else None


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
    record = _service(session, service)
    card, _ = _scorecard(session, scorecard)
    run_id = run_at(session, at=at)
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
    times = _run_times(session, {point.start, point.end or point.start})
    names = _level_names(session, {point.version_id})
    return HistoryPoint(
        level=_level_name(names, point.version_id, point.level_rank),
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
    record = _service(session, service)
    card, _ = _scorecard(session, scorecard)
    assert record.id is not None and card.id is not None
    timeline = _timeline(session, service_id=record.id, scorecard_id=card.id)
    times = _run_times(
        session, {p.start for p in timeline} | {p.end for p in timeline if p.end is not None}
    )
    names = _level_names(session, {p.version_id for p in timeline})
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
                level=_level_name(names, p.version_id, p.level_rank),
                rank=p.level_rank,
                score=p.score,
                start=start,
                end=end,
            )
        )
    return points


def level_changes(
    session: Session,
    *,
    scorecard: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[LevelChange]]:
    """Promotions and regressions across all services within [since, until]."""
    state: Any = aliased(ScorecardState, name="state")
    previous: Any = aliased(ScorecardState, name="previous")
    earlier: Any = aliased(ScorecardState, name="earlier")
    run: Any = aliased(EvaluationRun)
    # The row before a state is the key's latest earlier row (found through the primary key).
    before = (
        select(func.max(earlier.valid_from_run))
        .where(
            earlier.service_id == state.service_id,
            earlier.scorecard_id == state.scorecard_id,
            earlier.valid_from_run < state.valid_from_run,
        )
        .correlate(state)
        .scalar_subquery()
    )
    query = (
        select(
            col(ServiceRecord.name).label("service"),
            col(ScorecardRecord.name).label("scorecard"),
            run.evaluated_at,
            state.valid_from_run,
            previous.version_id.label("previous_version"),
            previous.level_rank.label("previous_rank"),
            state.version_id,
            state.level_rank,
        )
        .select_from(state)
        .join(run, run.id == state.valid_from_run)
        .join(
            previous,
            and_(
                previous.service_id == state.service_id,
                previous.scorecard_id == state.scorecard_id,
                previous.valid_from_run == before,
            ),
        )
        .join(ServiceRecord, col(ServiceRecord.id) == state.service_id)
        .join(ScorecardRecord, col(ScorecardRecord.id) == state.scorecard_id)
        .where(
            previous.level_rank != state.level_rank,
            state.version_id.is_not(None),
            previous.version_id.is_not(None),
        )
    )
    if scorecard is not None:
        card, _ = _scorecard(session, scorecard)
        query = query.where(state.scorecard_id == card.id)
    if since is not None:
        query = query.where(run.evaluated_at >= since)
    if until is not None:
        query = query.where(run.evaluated_at <= until)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(
            state.valid_from_run.desc(),
            col(ServiceRecord.name),
            col(ScorecardRecord.name),
        )
        .limit(limit)
        .offset(offset)
    ).all()
    names = _level_names(
        session, {v for r in rows for v in (r.version_id, r.previous_version)}
    )
    return total, [
        LevelChange(
            service=r.service,
            scorecard=r.scorecard,
            at=r.evaluated_at,
            run_id=r.valid_from_run,
            previous=_level_name(names, r.previous_version, r.previous_rank),
            level=_level_name(names, r.version_id, r.level_rank),
            direction="promotion" if r.level_rank > r.previous_rank else "regression",
        )
        for r in rows
    ]


# --- facts and runs ------------------------------------------------------------------------


def latest_snapshots(
    session: Session, *, service: str, now: datetime | None = None
) -> list[FactSnapshotPublic]:
    now = now or datetime.now(UTC)
    latest = (
        select(func.max(col(FactSnapshot.id)))
        .where(col(FactSnapshot.service) == service)
        .group_by(col(FactSnapshot.source))
    )
    rows = list(session.execute(
        select(FactSnapshot)
        .where(col(FactSnapshot.id).in_(latest))
        .order_by(col(FactSnapshot.source))
    ).scalars())
    if not rows:
        _service(session, service)  # facts may be collected before the first evaluation
    return [
        FactSnapshotPublic(
            **FactSnapshotPublic.model_validate(
                {**r.model_dump(), "age_seconds": (now - r.confirmed_at).total_seconds()}
            ).model_dump()
        )
        for r in rows
    ]


def get_run(session: Session, *, run_id: int) -> EvaluationRunPublic:
    run = session.get(EvaluationRun, run_id)
    if run is None:
        raise NotFoundError(f"unknown run {run_id}")
    return EvaluationRunPublic.model_validate(run, from_attributes=True)


def list_runs(
    session: Session, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[EvaluationRunPublic]]:
    total = session.execute(select(func.count()).select_from(EvaluationRun)).scalar_one()
    rows = session.execute(
        select(EvaluationRun).order_by(col(EvaluationRun.id).desc()).limit(limit).offset(offset)
    ).scalars()
    return total, [EvaluationRunPublic.model_validate(r, from_attributes=True) for r in rows]


def last_run(session: Session) -> EvaluationRunPublic | None:
    run = (
        session.execute(
            select(EvaluationRun)
            .where(col(EvaluationRun.status) == RunStatus.COMPLETE)
            .order_by(col(EvaluationRun.id).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
    return EvaluationRunPublic.model_validate(run, from_attributes=True) if run else None


def current_standings(session: Session) -> list[tuple[str, str, int, float]]:
    """(service, scorecard, rank, score) of every current result: the metrics' source."""
    rows = session.execute(
        select(
            col(ServiceRecord.name),
            col(ScorecardRecord.name),
            col(CurrentResult.level_rank),
            col(CurrentResult.score),
        )
        .join(ServiceRecord, col(ServiceRecord.id) == col(CurrentResult.service_id))
        .join(ScorecardRecord, col(ScorecardRecord.id) == col(CurrentResult.scorecard_id))
        .where(col(ScorecardRecord.active))
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


__all__ = [
    "NO_LEVEL",
    "current_standings",
    "get_run",
    "history",
    "last_run",
    "latest_snapshots",
    "leaderboard",
    "level_as_of",
    "level_changes",
    "list_runs",
    "list_scorecards",
    "list_services",
    "scorecard_detail",
    "service_detail",
    "service_scorecard",
]
