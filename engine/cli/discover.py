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

DISCOVERED = "# discovered from "


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
) -> None:
    """Read catalog-info.yaml from every repository of the GitHub organisation into OUTPUT.

    One file per repository (OUTPUT/<org>/<repo>.yaml), replacing those of an earlier
    discovery; point `catalog:` at a directory that holds OUTPUT to grade them. Without
    --generate a repository without catalog-info.yaml is skipped (and counted).
    """
    settings = load_settings_or_exit(config)
    section = settings.collectors.get("github")
    if section is None or not section.get("org"):
        raise fail_input([Problem(str(config or "settings"), None,
                                  "discovery needs a collectors.github section with org")])
    try:
        found, services, generated, skipped = discover_into(section, output, generate=generate,
                                                  include_archived=include_archived)
    except InputError as error:
        raise fail_input(error.problems) from None
    except CollectorError as error:
        stderr().print(f"error: github: {error}", markup=False)
        raise typer.Exit(EXIT_UNREACHABLE) from None
    summary = f"{found} catalog file(s) from GitHub, {services} service(s)"
    if generate:
        summary += f", {generated} generated for repositories without one"
    elif skipped:
        summary += (f"; {skipped} repositories without catalog-info.yaml skipped (--generate "
                    "writes an entity for each)")
    stdout().print(f"{summary}, written to {output}", markup=False)
    raise typer.Exit(EXIT_OK)


def discover_into(section: Mapping[str, Any], output: Path, *, generate: bool,
                  include_archived: bool = False) -> tuple[int, int, int, int]:
    """Write the organisation's entities under ``output``: ``(catalog files found, services
    in them, entities generated, repositories skipped)``."""
    from collectors.github.discovery import discover_catalog
    from engine.catalog import load_catalog_texts
    from engine.generation import GENERATED, generate_entities
    from engine.githubrest import GitHubReader

    found = discover_catalog(section, include_archived=include_archived)
    catalog = load_catalog_texts(found)
    for problem in catalog.problems:
        stderr().print(f"error: {problem}", markup=False)
    having = {"/".join(origin.split("/")[:2]) for origin, _ in found}
    with GitHubReader(section) as reader:
        if not generate:
            skipped = sum(1 for r in reader.repositories(str(section["org"]))
                          if r.get("full_name") not in having
                          and (include_archived or not r.get("archived")))
        missing = generate_entities(reader, str(section["org"]), having=having,
                                    include_archived=include_archived) if generate else []
    written: set[Path] = set()
    files = [(origin.split("/")[:2], f"{DISCOVERED}{origin}\n{text}") for origin, text in found]
    if generate:
        files += [(name.split("/"), text) for name, text in missing]
    for (owner, repo), text in files:
        target = output / owner / f"{repo}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.add(target)
    for stale in sorted(output.glob("*/*.yaml")):
        head = stale.read_text(encoding="utf-8")[:200]
        if stale not in written and (head.startswith(DISCOVERED) or head.startswith(GENERATED)):
            stale.unlink()
    return len(found), len(catalog.services) + len(missing), len(missing), \
        0 if generate else skipped
