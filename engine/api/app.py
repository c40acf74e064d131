"""The HTTP API: ``create_app(settings)`` serves /api/v1, /healthz, /metrics and /docs."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import DataError, OperationalError
from sqlmodel import Session

from core.errors import InputError, NotFoundError, StorageError
from engine import __version__
from engine.api.bodies import BodyLimit
from engine.api.deps import Credentials, ReadAccess, RunDispatcher, SessionDep, SettingsDep
from engine.api.routes import reads_router, writes_router
from engine.jobs import start_queued_run
from engine.jobs.drops import evaluate_and_notify
from engine.notify.jobs import level_drops_in_background
from engine.settings import Settings, get_settings
from engine.storage import runs, standings
from engine.storage.database import engine_for, ping
from engine.storage.models import RunStatus, RunTrigger
from engine.storage.public import Health

log = logging.getLogger("levelset.api")

# Swagger UI's files, served by the API itself: the docs page asks no other host for anything.
DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))
DOCS_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' "
               "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self' data:")


class ThreadDispatcher:
    """Runs requested evaluations one at a time on a background thread: a submitted run is
    queued until the thread takes it, and running (with a lease) from then on."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="levelset-run")

    def submit(self, run_id: int, service: str | None) -> None:
        self.executor.submit(self._run, run_id, service)

    def _run(self, run_id: int, service: str | None) -> None:
        try:
            if not start_queued_run(self.settings, run_id):
                log.warning("run %s is no longer queued: not started", run_id)
                return
            # Drops go on a thread of their own: the next requested run does not wait for Slack.
            evaluate_and_notify(self.settings, trigger=RunTrigger.API, service=service,
                                run_id=run_id, send_drops=level_drops_in_background)
        except Exception:  # recorded on the run; the thread must survive
            log.exception("run %s failed", run_id)

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True)


class StandingsCollector(Collector):
    """Prometheus metrics read from the current state at scrape time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterable[Metric]:
        level = GaugeMetricFamily("levelset_service_level", "Level rank reached (0: none, 1: "
                                  "lowest level)", labels=["service", "scorecard"])
        score = GaugeMetricFamily("levelset_service_score", "Weighted share of rules passed, "
                                  "percent", labels=["service", "scorecard"])
        last = GaugeMetricFamily("levelset_last_run_timestamp_seconds",
                                 "When the last complete evaluation ran")
        duration = GaugeMetricFamily("levelset_last_run_duration_seconds",
                                     "How long the last complete evaluation took")
        with Session(engine_for(self.settings.database_url)) as session:
            for service, scorecard, rank, value in standings.current_standings(session):
                level.add_metric([service, scorecard], rank)
                score.add_metric([service, scorecard], value)
            run = runs.last_run(session)
        if run is not None and run.evaluated_at is not None:
            last.add_metric([], run.evaluated_at.timestamp())
            duration.add_metric([], (run.duration_ms or 0) / 1000)
        yield from (level, score, last, duration)


def _error(status: int, detail: object) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def create_app(
    settings: Settings | None = None, dispatcher: RunDispatcher | None = None
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Levelset", version=__version__,
        description="Scorecards for every service: levels, rules, history and badges.",
        openapi_url="/openapi.json", docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.dispatcher = dispatcher or ThreadDispatcher(settings)
    app.include_router(reads_router, prefix="/api/v1")
    app.include_router(writes_router, prefix="/api/v1")
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.mount("/docs/assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StandingsCollector(settings))

    @app.exception_handler(NotFoundError)
    def _not_found(_request: Request, error: NotFoundError) -> JSONResponse:
        return _error(404, str(error))

    @app.exception_handler(RequestValidationError)
    def _invalid(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, [{k: v for k, v in e.items() if k in ("loc", "msg", "type")}
                            for e in error.errors()])

    @app.exception_handler(DataError)
    def _data(_request: Request, error: DataError) -> JSONResponse:
        return _error(422, f"value cannot be stored or compared: {error.orig}")

    @app.exception_handler(OperationalError)
    def _unavailable(_request: Request, _problem: OperationalError) -> JSONResponse:
        return _error(503, "the database is unavailable")

    @app.exception_handler(StorageError)
    def _storage(_request: Request, error: StorageError) -> JSONResponse:
        return _error(503, str(error))

    @app.exception_handler(InputError)
    def _input(_request: Request, error: InputError) -> JSONResponse:
        return _error(422, [str(problem) for problem in error.problems])

    @app.exception_handler(Exception)
    def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # The server logs the traceback too; the caller gets JSON and no internals.
        log.error("%s %s: unexpected %s", request.method, request.url.path,
                  type(error).__name__)
        return _error(500, "internal error: see the server's log")

    @app.get("/healthz", response_model=Health, response_model_exclude_unset=True,
             tags=["operations"], responses={503: {"model": Health}})
    def healthz(session: SessionDep, settings: SettingsDep, credentials: Credentials
                ) -> Health | JSONResponse:
        """Up (200) or down (503); up is ``ok``, or ``degraded`` when the newest run that ended
        failed (still 200: the server answers, its grades are older than they should be). The
        database's state, the last complete run and the newest run that ended are shown to
        callers who may read: anyone, or with api.read_token_required only with a token."""
        detailed = settings.check_read_token(credentials.credentials if credentials else None)
        try:
            ping(session)
            latest = runs.latest_ended(session)
            failed = latest is not None and latest.status == RunStatus.FAILED
            up: Literal["ok", "degraded"] = "degraded" if failed else "ok"
            if not detailed:
                return Health(status=up)
            return Health(status=up, database="ok", last_run=runs.last_run(session),
                          latest_run=latest)
        except OperationalError:  # also answered by _unavailable; here the body is Health
            down = Health(status="unavailable", database="unreachable", last_run=None)
            return JSONResponse(down.model_dump(include=None if detailed else {"status"},
                                                exclude_unset=True),
                                status_code=503)

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        """Swagger UI, from the files this server serves (no CDN, no online validator)."""
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json", title=f"{app.title} API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs/assets/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
        page.headers["Content-Security-Policy"] = DOCS_POLICY
        return page

    @app.get("/metrics", tags=["operations"], dependencies=[ReadAccess], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text"}})
    def metrics() -> Response:
        """Prometheus metrics: level and score per service and scorecard."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
