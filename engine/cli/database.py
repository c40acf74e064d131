"""Opening the database for a read command: never create it, never a traceback.

A read command (``runs``, ``facts``, ``gate --config``, ``doctor``) on a database that does
not exist or was never migrated says so in one line, with the command that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError

from core.errors import Problem
from engine.cli.app import EXIT_UNREACHABLE
from engine.cli.output import stderr
from engine.settings import Settings


def sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite"):
        return None
    _, _, rest = url.partition(":///")
    path = rest.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def migrate_hint(config: Path | None) -> str:
    return f"run levelset migrate --config {config}" if config else \
        "run levelset migrate --config levelset.yaml (or levelset init to start a project)"


def database_problem(settings: Settings, config: Path | None) -> Problem | None:
    """Why the database cannot be read, with the fix; None when it can."""
    from engine.storage.database import current_revision, engine_for

    url = settings.database_url
    where = str(sqlite_file(url) or url.split("@")[-1])
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        return Problem(where, None, f"no database here: {migrate_hint(config)}")
    try:
        revision = current_revision(engine_for(url))
    except SQLAlchemyError as error:
        reason = str(error.orig if hasattr(error, "orig") and error.orig else error).splitlines()[0]
        return Problem(where, None, f"cannot open the database: {reason}")
    if revision is None:
        return Problem(where, None, f"the database is not migrated: {migrate_hint(config)}")
    return None


def require_database(settings: Settings, config: Path | None) -> None:
    """Exit 3 with one line when the database cannot be read."""
    problem = database_problem(settings, config)
    if problem is not None:
        stderr().print(f"error: {problem}", markup=False)
        raise typer.Exit(EXIT_UNREACHABLE)
