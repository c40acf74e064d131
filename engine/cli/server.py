"""Commands that run the server side: serve, migrate, schedule, runs, prune."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from typer._click.core import ParameterSource
from typer._click.globals import get_current_context

from core.errors import InputError, Problem, StorageError
from core.redaction import install_log_redaction
from engine.cli.app import EXIT_INPUT, SAMPLE_FACTS, ConfigOpt, FormatOpt, app, in_own_checkout
from engine.cli.local import fail_input
from engine.cli.output import print_table, stderr, stdout
from engine.scheduling.schedule import listing, report_schedule
from engine.settings import CONFIG_ENV, ConfigChoice, Settings, find_config, get_settings, use_config

# The --config given before the command (``levelset --config F runs``): a command's own
# --config, read from LEVELSET_CONFIG that the option set, is then the given file too.
_given_before: list[Path | None] = [None]


def _given(config: Path | None) -> bool:
    """``config`` was given on the command line (not read from LEVELSET_CONFIG)."""
    if config is None:
        return False
    if config == _given_before[0]:
        return True
    context = get_current_context(silent=True)
    if context is None or "config" not in context.params:
        return True  # called with a file by code, not from an option
    return context.get_parameter_source("config") is not ParameterSource.ENVIRONMENT


def _point_at(config: Path | None) -> None:
    """Make ``config`` the settings file of this process, or exit 2 if it does not exist."""
    if config is not None and not config.is_file():
        raise fail_input([Problem(str(config), None, "settings file does not exist")])
    use_config(config)


def load_settings_with_file(config: Path | None) -> tuple[Settings, Path | None]:
    """The settings and the file they came from (None: built-in defaults); exit 2 on a
    problem. Without --config, LEVELSET_CONFIG or ./levelset.yaml is read, and stderr says
    which, or that the built-in defaults are used."""
    choice = find_config(config)
    if not _given(config):
        if config is not None:  # the option's value, read from LEVELSET_CONFIG
            choice = ConfigChoice(config, CONFIG_ENV)
        stderr().print(choice.describe(), markup=False)
    _point_at(choice.path.absolute() if choice.path is not None else None)
    try:
        settings = get_settings()
    except InputError as error:
        raise fail_input(error.problems) from None
    if choice.path is None and settings.facts is None and in_own_checkout():
        # Pointed at nothing: serve the shipped sample catalog, scorecards and facts.
        settings = settings.model_copy(update={"facts": SAMPLE_FACTS})
    return settings, choice.path


def load_settings_or_exit(config: Path | None) -> Settings:
    return load_settings_with_file(config)[0]


@app.callback()
def options(config: ConfigOpt = None) -> None:
    """Scorecards as code: grade every service against your standards."""
    install_log_redaction()
    _given_before[0] = config if _given(config) else None
    if _given_before[0] is not None:
        _point_at(config)


def _migrate(settings: Settings) -> None:
    from engine.jobs import prepare_database

    try:
        prepare_database(settings)
    except StorageError as error:
        stderr().print(f"error: {error}", markup=False)
        raise typer.Exit(EXIT_INPUT) from None


@app.command()
def migrate(config: ConfigOpt = None) -> None:
    """Create or upgrade the database schema."""
    settings = load_settings_or_exit(config)
    _migrate(settings)
    from engine.storage.database import current_revision, engine_for

    revision = current_revision(engine_for(settings.database_url))
    stdout().print(f"database at revision {revision}", markup=False)


def refuse_without_inputs(settings: Settings) -> None:
    """A server starts only with something to grade: a catalog with services and at least one
    scorecard that loads (a broken file among good ones is a problem of each run, as it is
    when a file breaks while the server runs). Else exit 2 with one line: what, and the fix."""
    from engine.catalog import load_catalog
    from engine.jobs import schemas_for
    from engine.loading import load_scorecards

    catalog = load_catalog(settings.catalog)
    if not catalog.services:
        _refuse(catalog.problems or [Problem(str(settings.catalog), None, "no services in the catalog")],
                "point catalog (in the settings file, or LEVELSET_CATALOG) at a catalog-info.yaml "
                "or a folder of entity files; `levelset init DIR` writes a starter one")
    try:
        schemas = schemas_for(settings)
    except InputError as error:
        _refuse(error.problems, "correct the settings file")
    cards = load_scorecards(settings.scorecards, schemas)
    if not cards.scorecards:
        _refuse(cards.problems or [Problem(str(settings.scorecards), None, "no scorecards found")],
                f"`levelset validate {settings.scorecards}` lists every problem; correct them, or "
                "point scorecards (in the settings file, or LEVELSET_SCORECARDS) at your scorecards")


def _refuse(problems: list[Problem], fix: str) -> NoReturn:
    more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
    first = " ".join(str(problems[0]).split())  # one line, whatever the problem's text holds
    stderr().print(f"error: {first}{more}; fix: {fix}", markup=False)
    raise typer.Exit(EXIT_INPUT)


def _evaluate_on_start(settings: Settings) -> None:
    """The schedule's evaluation, once as the server starts; a failure was logged by the job."""
    from engine.scheduling import jobs

    with contextlib.suppress(jobs.JobFailed):
        jobs.evaluate(settings)


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    scheduler: Annotated[bool, typer.Option(
        "--scheduler/--no-scheduler",
        help="Evaluate on the cron schedule in this process (off when a Celery beat does it).",
    )] = True,
    evaluate_on_start: Annotated[bool, typer.Option(
        "--evaluate-on-start/--no-evaluate-on-start", help="Run an evaluation at start.",
    )] = True,
) -> None:
    """Migrate, evaluate, and serve the API (with the schedule) in one process."""
    import uvicorn

    from engine.api.app import ThreadDispatcher, create_app

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    settings = load_settings_or_exit(config)
    refuse_without_inputs(settings)
    _migrate(settings)
    from engine.jobs import abandon_queued_runs, reap_runs

    reap_runs(settings)  # runs of a process that died before this one started
    abandon_queued_runs(settings)  # its queue died with it
    from engine.scheduling.embedded import build_scheduler

    dispatcher = ThreadDispatcher(settings)
    background = build_scheduler(settings) if scheduler else None
    if background is not None:
        background.start()  # type: ignore[attr-defined]
    if evaluate_on_start:
        threading.Thread(target=_evaluate_on_start, args=[settings], name="levelset-start",
                         daemon=True).start()
    try:
        uvicorn.run(create_app(settings, dispatcher), host=host, port=port, log_level="info")
    finally:
        if background is not None:
            background.shutdown(wait=False)  # type: ignore[attr-defined]
        dispatcher.shutdown()


@app.command()
def schedule(
    config: ConfigOpt = None,
    output_format: FormatOpt = "table",
) -> None:
    """List the scheduled jobs: cron, time zone and the next three times each runs."""
    settings = load_settings_or_exit(config)
    now = datetime.now(UTC)
    jobs = listing(settings.schedule, now, report_schedule(settings))
    if output_format == "json":
        sys.stdout.write(json.dumps([job.model_dump() for job in jobs], indent=2) + "\n")
        return
    print_table(["job", "cron", "timezone", "next"],
                [[job.name, job.cron, job.timezone, ", ".join(job.next)] for job in jobs])


@app.command()
def runs(
    config: ConfigOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
) -> None:
    """List recent evaluation runs."""
    from sqlmodel import Session

    from engine.cli.database import require_database
    from engine.storage import runs as run_store
    from engine.storage.database import engine_for

    settings = load_settings_or_exit(config)
    require_database(settings, config)
    with Session(engine_for(settings.database_url)) as session:
        _, items = run_store.list_runs(session, limit=limit)
    rows = [[str(r.id), r.trigger, r.status, r.service or "all",
             r.evaluated_at.isoformat(timespec="seconds") if r.evaluated_at else "-",
             f"{(r.duration_ms or 0) / 1000:.1f}s", str(r.results), str(r.changed_results),
             str(len(r.problems))] for r in items]
    print_table(["id", "trigger", "status", "scope", "evaluated", "took", "results", "changed",
                 "problems"], rows)


@app.command()
def prune(config: ConfigOpt = None) -> None:
    """Delete history older than retention_days."""
    from engine.jobs import prune_history

    settings = load_settings_or_exit(config)
    counts = prune_history(settings)
    stdout().print(", ".join(f"{k}: {v}" for k, v in counts.items()), markup=False)
