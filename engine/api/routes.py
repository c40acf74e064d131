"""The /api/v1 endpoints. Handlers are thin: validate, call storage or a job, shape output."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status

from engine.api.badges import badge_color, badge_message, badge_svg
from engine.api.bodies import StrictJSONRoute
from engine.api.deps import (
    DispatcherDep,
    Limit,
    Offset,
    ReadAccess,
    ScorecardName,
    ServiceName,
    SessionDep,
    SettingsDep,
    Text,
    WriteAccess,
    as_utc,
)
from engine.api.paths import stored_service_name
from engine.custom_facts import FactsLimitError
from engine.gate import explain, service_scorecard
from engine.jobs import RunQueueFull, delete_custom_fact, push_custom_facts, queue_run
from engine.jobs.fresh import fresh_result
from engine.notify.jobs import level_drops_in_background
from engine.scheduling.schedule import listing, report_schedule
from engine.storage import facts as fact_store
from engine.storage import runs as run_store
from engine.storage import scorecards as scorecard_store
from engine.storage import services as service_store
from engine.storage import standings
from engine.storage.history import timeline
from engine.storage.models import RunStatus
from engine.storage.public import (
    CustomFactsIn,
    ErrorOut,
    EvaluationRunPublic,
    FactSnapshotPublic,
    HistoryPoint,
    LeaderboardRow,
    LevelChange,
    Page,
    RunAccepted,
    ScheduledJobPublic,
    ScorecardDetail,
    ScorecardSummary,
    ServiceDetail,
    ServicePublic,
    ServiceScorecard,
    TriggerIn,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing or wrong bearer token."},
    404: {"model": ErrorOut, "description": "Unknown service, scorecard, level or run."},
    413: {"model": ErrorOut, "description": "The body is larger than api.max_body_bytes."},
    422: {"model": ErrorOut, "description": "Invalid parameters or body."},
}
QUEUE_FULL: dict[int | str, dict[str, Any]] = {429: {"model": ErrorOut, "description": (
    "A run would be queued and api.max_queued_runs runs wait already; Retry-After says when "
    "to try again.")}}
RunId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Since = Annotated[datetime | None, Query(description="From this time (ISO-8601; UTC if naive).")]
Until = Annotated[datetime | None, Query(description="Up to this time (ISO-8601; UTC if naive).")]

# Every JSON body is parsed strictly: UTF-8, bounded depth, nothing JSON cannot write back.
reads_router = APIRouter(dependencies=[ReadAccess], responses=ERRORS, route_class=StrictJSONRoute)
writes_router = APIRouter(dependencies=[WriteAccess], responses=ERRORS,
                          route_class=StrictJSONRoute)


# --- services ------------------------------------------------------------------------------

@reads_router.get("/services", response_model=Page[ServicePublic], tags=["services"])
def list_services(
    session: SessionDep, owner: Text = None, lifecycle: Text = None,
    scorecard: Annotated[str | None, Query(max_length=63, pattern=r"^[^\x00]*$",
                                           description="Only services graded on it.")] = None,
    level: Annotated[str | None, Query(
        max_length=40, pattern=r"^[^\x00]*$", description='With scorecard: at this level ("none").',
    )] = None,
    limit: Limit = 50, offset: Offset = 0,
) -> Page[ServicePublic]:
    """Services in the catalog, by name; filter by owner, lifecycle, scorecard and level."""
    if level is not None and scorecard is None:
        raise HTTPException(422, "level needs scorecard")
    total, items = service_store.list_services(
        session, owner=owner, lifecycle=lifecycle, limit=limit, offset=offset,
        graded=None if scorecard is None else standings.graded_on(
            session, scorecard=scorecard, level=level))
    return Page(total=total, limit=limit, offset=offset, items=items)


@reads_router.get("/services/{service}", response_model=ServiceDetail, tags=["services"])
def get_service(session: SessionDep, service: ServiceName) -> ServiceDetail:
    """One service with its current level and score on every scorecard."""
    return standings.service_detail(session, name=service)


@reads_router.get("/services/{service}/scorecards/{scorecard}", response_model=ServiceScorecard,
                  tags=["services"])
def get_service_scorecard(
    session: SessionDep, service: ServiceName, scorecard: ScorecardName
) -> ServiceScorecard:
    """Every rule's status, message, evidence and remediation, and what to fix next."""
    return service_scorecard(session, service=service, scorecard=scorecard)


@reads_router.get("/services/{service}/scorecards/{scorecard}/gate", response_model=ServiceScorecard,
                  tags=["services"], responses={503: {"model": ErrorOut, "description": (
                      "The stored result predates the scorecard and evaluating the service "
                      "again took longer than api.gate_wait_seconds.")}})
def get_gate_result(
    settings: SettingsDep, service: ServiceName, scorecard: ScorecardName
) -> ServiceScorecard:
    """The result a CI gate decides on: as the service scorecard, but graded by the current
    version of the scorecard. A result graded by an older version (or none yet) is evaluated
    again for this service first; 404 when the scorecard's filter excludes the service."""
    return explain(fresh_result(settings, service=service, scorecard=scorecard,
                                wait=settings.api.gate_wait_seconds,
                                send_drops=level_drops_in_background))


@reads_router.get("/services/{service}/scorecards/{scorecard}/history",
                  response_model=list[HistoryPoint], tags=["history"])
def get_history(
    session: SessionDep, service: ServiceName, scorecard: ScorecardName, since: Since = None,
    until: Until = None,
) -> list[HistoryPoint]:
    """Each level and score the service held on the scorecard, within the range."""
    return timeline.history(session, service=service, scorecard=scorecard,
                         since=as_utc(since, "since"), until=as_utc(until, "until"))


@reads_router.get("/services/{service}/scorecards/{scorecard}/as-of",
                  response_model=HistoryPoint, tags=["history"])
def get_as_of(
    session: SessionDep, service: ServiceName, scorecard: ScorecardName,
    at: Annotated[datetime, Query(description="The moment (ISO-8601; UTC if naive).")],
) -> HistoryPoint:
    """Level and score as they were at a past moment."""
    point = timeline.level_as_of(session, service=service, scorecard=scorecard,
                              at=as_utc(at, "at") or at)
    if point is None:
        raise HTTPException(404, f'"{service}" was not graded on "{scorecard}" at {at.isoformat()}')
    return point


@reads_router.get("/services/{service}/facts", response_model=list[FactSnapshotPublic],
                  tags=["facts"])
def get_facts(session: SessionDep, service: ServiceName) -> list[FactSnapshotPublic]:
    """The latest facts of the service from each source, with their age; for ``custom``,
    where each value came from (``file`` or ``push``) and since when (``origins``)."""
    return fact_store.latest_snapshots(session, service=service, now=datetime.now(UTC))


class FactsPushed(FactSnapshotPublic):
    run: RunAccepted | None = None  # with ?evaluate=true: the evaluation of the service


@writes_router.post("/services/{service}/facts", response_model=FactsPushed,
                    status_code=status.HTTP_201_CREATED, tags=["facts"], responses=QUEUE_FULL)
def post_facts(
    request: Request, settings: SettingsDep, dispatcher: DispatcherDep,
    service: ServiceName, body: CustomFactsIn,
    evaluate: Annotated[bool, Query(description=(
        "Also start an evaluation of this service; poll `run.url`. Otherwise a push shows "
        "in grades after the next run."))] = False,
) -> FactsPushed:
    """Push custom facts, merged into the service's ``custom`` namespace: objects key by key
    at every depth, ``null`` removes a key, anything else replaces it. A pushed value is
    kept across runs; where the facts file holds the same key, the more recent value wins.

    Refused with 422: NaN and infinities, unpaired surrogates, nesting deeper than 32 levels;
    with ``custom_facts`` declared, an undeclared name and a value that does not convert to
    its declared type (an integer for a ``double`` is stored as a double); more than 1,000
    keys in a push or 10,000 in a service. With 413: more than 1 MiB of facts in a push or
    4 MiB in a service.
    """
    _reject_nul(body.facts, "facts")
    try:
        stored = push_custom_facts(settings, service=service, facts=body.facts)
    except FactsLimitError as error:
        raise HTTPException(413 if error.too_large else 422, str(error.problems[0])) from None
    pushed = FactsPushed.model_validate(stored, from_attributes=True)
    if evaluate:
        pushed.run = _queue(request, settings, dispatcher, service)
    return pushed


@writes_router.delete("/services/{service}/facts/{key:path}", response_model=FactSnapshotPublic,
                      tags=["facts"])
def delete_fact(
    settings: SettingsDep, service: ServiceName,
    key: Annotated[str, Path(max_length=1000, description="A custom key, as GET shows it.")],
) -> FactSnapshotPublic:
    """Remove a key from the service's ``custom`` namespace (history keeps its values); a
    value from the facts file stays removed until the file changes it. Repairs a bad push: a
    key listed under ``invalid`` can be removed by the name GET shows."""
    return delete_custom_fact(settings, service=service, key=key)


def _reject_nul(value: Any, where: str) -> None:
    """PostgreSQL cannot store NUL in text; say so instead of failing."""
    if isinstance(value, str) and "\x00" in value:
        raise HTTPException(422, f"{where}: NUL characters are not allowed")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key, where)
            _reject_nul(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_nul(item, f"{where}[{index}]")


# --- scorecards ----------------------------------------------------------------------------

@reads_router.get("/scorecards", response_model=list[ScorecardSummary], tags=["scorecards"])
def list_scorecards(session: SessionDep) -> list[ScorecardSummary]:
    """Every scorecard in use, with its levels and how many services it grades."""
    return scorecard_store.list_scorecards(session)


@reads_router.get("/scorecards/{scorecard}", response_model=ScorecardDetail, tags=["scorecards"])
def get_scorecard(session: SessionDep, scorecard: ScorecardName) -> ScorecardDetail:
    """A scorecard's definition and the number of services at each level."""
    return scorecard_store.scorecard_detail(session, name=scorecard)


@reads_router.get("/scorecards/{scorecard}/leaderboard", response_model=Page[LeaderboardRow],
                  tags=["scorecards"])
def get_leaderboard(
    session: SessionDep, scorecard: ScorecardName,
    sort: Annotated[standings.SortKey, Query(description="score, level or name")] = "score",
    order: Annotated[standings.Order, Query()] = "desc",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100, offset: Offset = 0,
) -> Page[LeaderboardRow]:
    """Services ranked on the scorecard."""
    total, rows = standings.leaderboard(session, scorecard=scorecard, sort=sort, order=order,
                                    limit=limit, offset=offset)
    page = Page[LeaderboardRow](total=total, limit=limit, offset=offset, items=rows)
    # Up to 10,000 rows: serialized once, by pydantic's own JSON encoder (the documented
    # response model is the same), instead of validated again and encoded by json.dumps.
    return Response(page.model_dump_json(), media_type="application/json")  # type: ignore[return-value]


@reads_router.get("/changes", response_model=Page[LevelChange], tags=["history"])
def get_changes(
    session: SessionDep,
    scorecard: Annotated[str | None, Query(max_length=63, pattern=r"^[^\x00]*$")] = None,
    since: Since = None, until: Until = None, limit: Limit = 100, offset: Offset = 0,
) -> Page[LevelChange]:
    """Promotions and regressions across all services, newest first."""
    total, rows = timeline.level_changes(session, scorecard=scorecard, since=as_utc(since, "since"),
                                      until=as_utc(until, "until"), limit=limit, offset=offset)
    return Page(total=total, limit=limit, offset=offset, items=rows)


# --- badges --------------------------------------------------------------------------------

def _badge_inputs(
    session: SessionDep, service: str, scorecard: str
) -> tuple[ServiceScorecard, dict[str, str | None]]:
    card = service_scorecard(session, service=service, scorecard=scorecard)
    detail = scorecard_store.scorecard_detail(session, name=scorecard)
    return card, {lv.name: lv.color for lv in detail.levels}


@reads_router.get("/badges/{service}/{scorecard}/badge.svg", tags=["badges"],
                  response_class=Response,
                  responses={200: {"content": {"image/svg+xml": {}}, "description": "SVG badge"}})
def get_badge_svg(session: SessionDep, service: ServiceName, scorecard: ScorecardName) -> Response:
    """An SVG badge: the service's level and score on the scorecard."""
    card, colors = _badge_inputs(session, service, scorecard)
    svg = badge_svg(scorecard, badge_message(card), badge_color(card, colors)[0])
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "max-age=300"})


@reads_router.get("/badges/{service}/{scorecard}/shields.json", tags=["badges"])
def get_badge_shields(
    session: SessionDep, service: ServiceName, scorecard: ScorecardName
) -> dict[str, Any]:
    """A shields.io endpoint document (https://shields.io/badges/endpoint-badge)."""
    card, colors = _badge_inputs(session, service, scorecard)
    return {"schemaVersion": 1, "label": scorecard, "message": badge_message(card),
            "color": badge_color(card, colors)[1].lstrip("#")}


# --- runs ----------------------------------------------------------------------------------

@writes_router.post("/runs", response_model=RunAccepted, status_code=status.HTTP_202_ACCEPTED,
                    tags=["runs"], responses=QUEUE_FULL)
def trigger_run(
    request: Request, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep,
    body: TriggerIn | None = None,
) -> RunAccepted:
    """Queue an evaluation of every service, or of one; poll the returned run (``queued``,
    then ``running``, then how it ended). An identical run still queued is returned instead
    of a second one (``reused``)."""
    service = stored_service_name(body.service) if body and body.service is not None else None
    if service is not None:
        _reject_nul(service, "service")
        standings.service_detail(session, name=service)
    return _queue(request, settings, dispatcher, service)


def _queue(request: Request, settings: SettingsDep, dispatcher: DispatcherDep,
           service: str | None) -> RunAccepted:
    """Queue a run for the server's worker (or point at the identical one waiting already)."""
    try:
        queued = queue_run(settings, service=service)
    except RunQueueFull as full:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(full),
                            headers={"Retry-After": str(full.retry_after)}) from None
    if not queued.reused:
        dispatcher.submit(queued.run_id, service)
    return RunAccepted(run_id=queued.run_id, status=RunStatus.QUEUED, reused=queued.reused,
                       url=str(request.url_for("get_run", run_id=queued.run_id).path))


@reads_router.get("/runs", response_model=Page[EvaluationRunPublic], tags=["runs"])
def list_runs(
    session: SessionDep, limit: Limit = 50, offset: Offset = 0
) -> Page[EvaluationRunPublic]:
    """Evaluation runs, newest first."""
    total, rows = run_store.list_runs(session, limit=limit, offset=offset)
    return Page(total=total, limit=limit, offset=offset, items=rows)


@reads_router.get("/runs/{run_id}", response_model=EvaluationRunPublic, tags=["runs"])
def get_run(session: SessionDep, run_id: RunId) -> EvaluationRunPublic:
    """A run's status, timing, counts and problems."""
    return run_store.get_run(session, run_id=run_id)


@reads_router.get("/schedule", response_model=list[ScheduledJobPublic], tags=["runs"])
def get_schedule(settings: SettingsDep) -> list[ScheduledJobPublic]:
    """The scheduled jobs: cron, time zone and the next three times each runs."""
    now = datetime.now(UTC)
    return listing(settings.schedule, now, report_schedule(settings))
