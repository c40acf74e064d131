"""GitHub discovery into a catalog directory: each repository's catalog-info.yaml, and (with
``generate``) a minimal entity for each repository without one. ``levelset discover``,
``levelset init`` and the schedule's ``discover`` job (into the catalog directory) use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import InputError, Problem
from engine.settings import Settings

DISCOVERED = "# discovered from "


@dataclass
class Discovered:
    found: int  # catalog-info.yaml files read
    services: int  # services in what was written
    generated: int  # minimal entities written for repositories without one
    skipped: int  # repositories without one, not generated
    problems: list[Problem] = field(default_factory=list)  # invalid entities found


def discover_into(section: Mapping[str, Any], output: Path, *, generate: bool,
                  include_archived: bool = False) -> Discovered:
    """Write the organisation's entities under ``output`` (``output/<org>/<repo>.yaml``),
    removing those an earlier discovery wrote for repositories now gone."""
    from collectors.github.discovery import discover_repositories
    from engine.catalog import load_catalog_texts
    from engine.generation import GENERATED, generate_entities

    discovery = discover_repositories(section, include_archived=include_archived)
    found = discovery.catalogs
    catalog = load_catalog_texts(found)
    having = {"/".join(origin.split("/")[:2]) for origin, _ in found}
    missing = generate_entities(discovery.uncatalogued, having=having,
                                include_archived=include_archived)
    skipped = 0
    if not generate:
        skipped, missing = len(missing), []
    written: set[Path] = set()
    files = [(origin.split("/")[:2], f"{DISCOVERED}{origin}\n{text}") for origin, text in found]
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
    return Discovered(len(found), len(catalog.services) + len(missing), len(missing), skipped,
                      list(catalog.problems))


def scheduled_discovery(settings: Settings) -> dict[str, int]:
    """The schedule's ``discover`` job: the catalog directory's discovered entities, again."""
    section = settings.collectors.get("github")
    if section is None or not section.get("org"):
        raise InputError([Problem("schedule.discover", None,
                                  "discovery needs a collectors.github section with org")])
    if not settings.catalog.is_dir():
        raise InputError([Problem(str(settings.catalog), None,
                                  "discovery writes into the catalog, which must be a directory")])
    result = discover_into(section, settings.catalog, generate=True)
    return {"found": result.found, "generated": result.generated, "services": result.services}
