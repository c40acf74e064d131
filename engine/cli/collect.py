"""Commands that gather and show facts: collect, facts."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from collectors import registry
from core.errors import InputError, NotFoundError, Problem, StorageError
from engine.cli.app import EXIT_INPUT, EXIT_OK, EXIT_UNREACHABLE, ConfigOpt, FormatOpt, app, split_names
from engine.cli.local import fail_input
from engine.cli.output import print_table, stderr, stdout
from engine.cli.server import load_settings_or_exit


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


@app.command()
def collect(
    config: ConfigOpt = None,
    service: Annotated[list[str] | None, typer.Option(
        help="Only these services (repeat, or separate with commas).")] = None,
    source: Annotated[list[str] | None, typer.Option(
        help=f"Only these sources: {', '.join(registry.names())}.")] = None,
) -> None:
    """Collect facts from the configured sources and store them.

    A source that fails for a service records the failure; that service's rules on those
    facts become unknown, and every other service is still collected. Exit 0 when every
    source collected something, 2 on bad input (no catalog, no services, bad settings), 3 when
    a source failed for every service (a missing token, an unreachable endpoint).
    """
    from engine.jobs import prepare_database, run_collection

    for name in source or ():
        if name not in registry:
            raise fail_input([Problem("--source", None, f"{name!r}: use {', '.join(registry.names())}")])
    settings = load_settings_or_exit(config)
    if not settings.collectors:
        raise fail_input([Problem(str(config or "settings"), None,
                                  "no collectors configured (add a collectors: section)")])
    if not settings.catalog.exists():
        raise fail_input([Problem(str(settings.catalog), None, "catalog path does not exist "
                                  f"(set catalog: in {config or 'the settings'}, or run "
                                  "levelset init / levelset discover)")])
    service = split_names(service)
    console = stderr()
    try:
        prepare_database(settings)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True, disable=not console.is_terminal) as bar:
            tasks: dict[str, Any] = {}

            def progress(name: str, result: Any) -> None:
                if result is None:
                    tasks[name] = bar.add_task(f"collecting {name}", total=1)
                else:
                    bar.update(tasks[name], completed=1)

            results = run_collection(settings, sources=source, services=service or None,
                                     progress=progress)
    except (InputError, NotFoundError) as error:
        problems = error.problems if isinstance(error, InputError) else [
            Problem("--service", None, str(error))]
        raise fail_input(problems) from None
    except StorageError as error:
        raise fail_input([Problem(settings.database_url, None, str(error))]) from None
    rows = []
    for result, _stored in results:
        took = (result.finished_at - result.started_at).total_seconds() if result.finished_at else 0
        cost = getattr(result, "cost", None)
        rows.append([result.source, str(len(result.facts)), str(len(result.failures)),
                     str(result.requests), str(getattr(result, "not_modified", 0)),
                     "-" if cost is None else str(cost), f"{took:.1f}s"])
    print_table(["source", "collected", "failed", "requests", "not modified", "rate-limit cost",
                 "took"], rows)
    raise typer.Exit(report_collection([result for result, _ in results], settings.catalog))


def report_collection(results: list[Any], catalog: Path) -> int:
    """Failures grouped by reason, and the exit code: 2 when the catalog has no service, 3
    when a source failed for every service (nothing was collected from it), else 0."""
    console = stderr()
    for result in results:
        failures = sorted(result.failures.items())
        notes = [tuple(str(note).split(": ", 1)) for note in getattr(result, "errors", [])]
        for items in (failures, notes):
            by_reason: dict[str, list[str]] = {}
            for item in items:
                name, why = item if len(item) == 2 else ("", item[0])
                by_reason.setdefault(why, []).append(name)
            for why, names in by_reason.items():
                named = [n for n in names if n]
                shown = ", ".join(named[:3]) + (
                    f" and {len(named) - 3} more" if len(named) > 3 else "")
                console.print(f"{result.source}: {shown + ': ' if shown else ''}{why}",
                              markup=False)
    if results and all(not r.facts and not r.failures for r in results):
        console.print(f"error: {catalog}: no services in the catalog: nothing collected",
                      markup=False)
        return EXIT_INPUT
    dead = [r for r in results if r.failures and not r.facts]
    for result in dead:
        reason = max(set(result.failures.values()), key=list(result.failures.values()).count)
        console.print(f"error: {result.source}: failed for every service "
                      f"({len(result.failures)}): {reason}", markup=False)
    return EXIT_UNREACHABLE if dead else EXIT_OK


@app.command()
def facts(
    service: Annotated[str, typer.Argument(help="Service name.")],
    config: ConfigOpt = None,
    output_format: FormatOpt = "table",
) -> None:
    """Show the latest stored facts of a service, per source, with their age; custom facts
    with where each value came from (the facts file or a push) and since when."""
    from engine.cli.database import require_database
    from engine.storage import facts as fact_store
    from engine.storage.database import engine_for, session_scope
    from engine.storage.models import SnapshotStatus

    settings = load_settings_or_exit(config)
    require_database(settings, config)
    try:
        with session_scope(engine_for(settings.database_url)) as session:
            snapshots = fact_store.latest_snapshots(session, service=service, now=datetime.now(UTC))
    except NotFoundError:
        stderr().print(f'error: no facts stored for service "{service}"', markup=False)
        raise typer.Exit(EXIT_INPUT) from None
    except StorageError as error:
        raise fail_input([Problem(settings.database_url, None, str(error))]) from None
    for snapshot in snapshots:  # stored before pushes were checked; DELETE removes them
        for path, problem in snapshot.invalid.items():
            stderr().print(f"warning: {snapshot.source}.{path}: {problem} (shown repaired)",
                           markup=False)
    if output_format == "json":
        document = {s.source: s.facts if s.status == SnapshotStatus.OK else {"$error": s.error} for s in snapshots}
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        raise typer.Exit(EXIT_OK)
    for snapshot in snapshots:
        if snapshot.origins:  # custom: each value from the facts file or a push, since when
            heading = (f"{snapshot.source}: {snapshot.status}, last changed "
                       f"{_age(snapshot.age_seconds)} ago "
                       f"({snapshot.confirmed_at.isoformat(timespec='seconds')})")
            rows = [[path, json.dumps(value, default=str), _provenance(snapshot, path)]
                    for path, value in _flatten(snapshot.facts)]
            print_table(["fact", "value", "from"], rows, title=heading)
            continue
        heading = (f"{snapshot.source}: {snapshot.status}, collected {_age(snapshot.age_seconds)} ago "
                   f"({snapshot.confirmed_at.isoformat(timespec='seconds')})")
        if snapshot.status != SnapshotStatus.OK:
            stdout().print(f"{heading}: {snapshot.error}", markup=False)
            continue
        rows = [[path, json.dumps(value, default=str)] for path, value in _flatten(snapshot.facts)]
        print_table(["fact", "value"], rows, title=heading)


def _provenance(snapshot: Any, path: str) -> str:
    """``push 2026-05-01T10:00:00+00:00``: where the top-level key of ``path`` came from."""
    keys = [k for k in snapshot.origins if path == k or path.startswith(f"{k}.")]
    if not keys:
        return ""
    key = max(keys, key=len)  # a key may hold a dot: the longest that matches
    origin = snapshot.origins[key]
    return f"{origin.origin.value} {origin.at.isoformat(timespec='seconds')}"


def _flatten(values: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(values, dict) and values:
        out: list[tuple[str, Any]] = []
        for key, value in values.items():
            out.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return [(prefix, values)]
