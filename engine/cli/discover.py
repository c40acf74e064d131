"""``levelset discover``: the catalog of a GitHub organisation, from its repositories."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import CollectorError, InputError, Problem
from engine.cli.app import EXIT_OK, EXIT_UNREACHABLE, ConfigOpt, app
from engine.cli.local import fail_input
from engine.cli.output import stderr, stdout
from engine.cli.server import load_settings_or_exit
from engine.discovery import Discovered, RemovalRefused, discover_into
from engine.settings import DiscoverySettings


def discover_or_exit(section: Mapping[str, Any], output: Path, *, generate: bool,
                     include_archived: bool = False, allow_removals: bool = False,
                     discovery: DiscoverySettings | None = None) -> Discovered:
    """``discover_into`` for a command: bad settings exit 2, GitHub out of reach or an answer
    that would remove too much exits 3, and each refused entity or name is printed."""
    try:
        result = discover_into(section, output, generate=generate,
                               include_archived=include_archived, allow_removals=allow_removals,
                               discovery=discovery)
    except InputError as error:
        raise fail_input(error.problems) from None
    except RemovalRefused as error:
        stderr().print(f"error: discovery: {error}", markup=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    except CollectorError as error:
        stderr().print(f"error: github: {error}", markup=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    for problem in result.problems:
        stderr().print(f"error: {problem}", markup=False)
    for note in result.notes:
        stderr().print(f"warning: {note}", markup=False)
    return result


@app.command()
def discover(
    output: Annotated[Path, typer.Option(help="Directory to write the entity files to.")],
    config: ConfigOpt = None,
    include_archived: Annotated[bool, typer.Option(
        "--include-archived", help="Also read archived repositories.")] = False,
    generate: Annotated[bool, typer.Option(
        "--generate", help="Write a minimal entity for each repository without "
        "catalog-info.yaml (owner from CODEOWNERS, else a placeholder validate points out).",
    )] = False,
    allow_removals: Annotated[bool, typer.Option(
        "--allow-removals", help="Accept an answer with no repositories, or one that removes "
        "more than discovery.max_removed_share of the files discovery wrote.")] = False,
) -> None:
    """Read catalog-info.yaml from every repository of the GitHub organisation into OUTPUT.

    One file per repository (OUTPUT/<org>/<name>.yaml), replacing those an earlier
    discovery wrote and no other file; point `catalog:` at a directory that holds OUTPUT to
    grade them. Without --generate a repository without catalog-info.yaml is skipped (and
    counted). See docs/discovery.md.
    """
    settings = load_settings_or_exit(config)
    section = settings.collectors.get("github")
    if section is None or not section.get("org"):
        raise fail_input([Problem(str(config or "settings"), None,
                                  "discovery needs a collectors.github section with org")])
    result = discover_or_exit(section, output, generate=generate,
                              include_archived=include_archived, allow_removals=allow_removals,
                              discovery=settings.discovery)
    summary = f"{result.found} catalog file(s) from GitHub, {result.services} service(s)"
    if generate:
        summary += f", {result.generated} generated for repositories without one"
    elif result.skipped:
        summary += (f"; {result.skipped} repositories without catalog-info.yaml skipped (--generate "
                    "writes an entity for each)")
    if result.removed:
        summary += f"; {result.removed} file(s) of repositories gone removed"
    stdout().print(f"{summary}, written to {output}", markup=False)
    raise typer.Exit(EXIT_OK)
