"""``levelset doctor``: is this project ready to grade? One line per problem, with the fix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from collectors import registry
from collectors.base import Finding
from engine.cli.app import EXIT_BELOW, EXIT_OK, ConfigOpt, app
from engine.cli.output import stderr, stdout
from engine.cli.server import load_settings_or_exit
from engine.settings import Settings


@app.command()
def doctor(config: ConfigOpt = None) -> None:
    """Check that collecting and grading can work, and say how to fix what cannot.

    Checks the token of each source and whether its scopes or permissions let it read every
    fact the rules read, that every endpoint answers, that every rule's source is configured,
    and how many services each scorecard applies to. Exit 0 when all is well, 1 when there
    are problems (one line each, with the fix), 2 when the settings cannot be read.
    """
    settings = load_settings_or_exit(config)
    findings = list(diagnose(settings, config or Path("levelset.yaml")))
    problems = [f for f in findings if f.fix]
    for finding in findings:
        if finding.fix:
            stderr().print(finding.line(), markup=False)
        else:
            stdout().print(finding.line(), markup=False)
    summary = f"{len(problems)} problem(s)" if problems else "no problems"
    stdout().print(summary, markup=False)
    raise typer.Exit(EXIT_BELOW if problems else EXIT_OK)


def diagnose(settings: Settings, config: Path) -> list[Finding]:
    from engine.catalog import load_catalog
    from engine.loading import load_scorecards
    from engine.vocabulary import vocabulary

    schemas = vocabulary(settings.collector_settings, settings.custom_facts)
    cards = load_scorecards(settings.scorecards, schemas)
    findings = [Finding(str(p.file), f"{p.message}" if p.line is None else
                        f"line {p.line}: {p.message}", f"levelset validate --config {config}")
                for p in cards.problems]
    catalog = load_catalog(settings.catalog)
    if not catalog.services:
        findings.append(Finding(str(settings.catalog), "no services in the catalog",
                                "point catalog: at a Backstage catalog, or run levelset "
                                "discover --generate"))
    findings += _database(settings, config)
    facts_read = _facts_read(cards.scorecards.values())
    findings += _sources(settings, facts_read)
    findings += _rules_on_unconfigured(cards.scorecards.values(), settings, config)
    findings += _coverage(cards.scorecards.values(), catalog.services, settings, schemas)
    return findings


def _database(settings: Settings, config: Path) -> list[Finding]:
    from engine.cli.database import database_problem, sqlite_file

    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        return [Finding(str(path), "no database yet (levelset collect or serve creates it)")]
    problem = database_problem(settings, config)
    if problem is None:
        return [Finding("database", "reachable and migrated")]
    return [Finding(problem.file, problem.message.split(": run ")[0],
                    f"levelset migrate --config {config}")]


def _facts_read(cards: Any) -> dict[str, dict[str, list[str]]]:
    """namespace -> fact path -> the rules reading it (``scorecard/rule``)."""
    found: dict[str, dict[str, list[str]]] = {}
    for card in cards:
        for rule in card.rules:
            for ref in rule.expression.references:
                if len(ref.path) > 1:
                    found.setdefault(ref.path[0], {}).setdefault(
                        ".".join(ref.path[1:]), []).append(f"{card.name}/{rule.name}")
    return found


def _sources(settings: Settings, facts_read: dict[str, dict[str, list[str]]]
             ) -> list[Finding]:
    """Each configured source checks itself (its registration names its checks)."""
    out = []
    for name, section in settings.collector_settings.items():
        checks = registry.get(name).source_doctor()
        if checks is None:
            out.append(Finding(name, "settings read; the source declares no checks"))
        else:
            out += checks.check(section, facts_read.get(name, {}))
    return out


def _rules_on_unconfigured(cards: Any, settings: Settings, config: Path) -> list[Finding]:
    from engine.cli.local import unconfigured_sources

    return [Finding(f"{p.file}:{p.line}" if p.line else p.file, p.message.split(": it can")[0],
                    "configure the source, or drop the rule")
            for p in unconfigured_sources(cards, settings, config)]


def _coverage(cards: Any, services: Any, settings: Settings, schemas: Any) -> list[Finding]:
    from engine.evaluation import FactContext, applies
    from rules.functions import bind

    now = datetime.now(UTC)
    context = bind(now)
    out = []
    for card in cards:
        count = sum(1 for service in services.values()
                    if applies(card, FactContext(service, None, schemas, context, now))[0])
        if count:
            out.append(Finding(f"scorecard {card.name}",
                               f"applies to {count} of {len(services)} service(s)"))
        elif services:
            out.append(Finding(f"scorecard {card.name}", "applies to no service of the catalog",
                               f"check its filter in {card.path}"))
    return out


__all__ = ["diagnose", "doctor"]
