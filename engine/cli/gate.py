"""``levelset gate``: is a service at or above a level? Exit codes CI can act on."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from core.errors import InputError, Problem
from engine.cli.app import (
    EXIT_BELOW,
    EXIT_OK,
    EXIT_UNREACHABLE,
    ConfigOpt,
    FormatOpt,
    app,
    split_names,
)
from engine.cli.local import (
    CatalogOpt,
    NowOpt,
    ScorecardsOpt,
    assemble_or_exit,
    fail_input,
    fail_unreachable,
    file_mode_schemas,
    parse_now,
    sample_facts,
)
from engine.cli.output import stdout
from engine.gate import GateVerdict, UnknownPolicy, gate_verdict, write_junit


def _unknown_policy(value: str) -> str:
    try:
        return UnknownPolicy(value)
    except ValueError:
        raise fail_input([Problem("--unknown", None, f"{value!r}: use block, warn or pass")]) \
            from None


@app.command()
def gate(
    service: Annotated[list[str], typer.Option(
        help="Service to check (repeat, or separate with commas, for several).")],
    scorecard: Annotated[str, typer.Option(help="Scorecard to check it on.")],
    min_level: Annotated[str, typer.Option("--min-level", help="Lowest acceptable level.")],
    unknown: Annotated[str, typer.Option(
        "--unknown", callback=_unknown_policy,
        help="A required rule without data (its source failed or has no value): block (it "
        "keeps the service below the bar), warn (printed, not counted) or pass.")] = "block",
    api: Annotated[str | None, typer.Option(
        "--api", help="Ask this Levelset server for its result (its base URL, with or without "
        "/api/v1); a result older than the scorecard is graded again first. Sends "
        "LEVELSET_READ_TOKEN, or else LEVELSET_API_TOKEN, as the bearer token when set.")] = None,
    config: ConfigOpt = None,
    scorecards: ScorecardsOpt = Path("scorecards"),
    catalog: CatalogOpt = Path("catalog"),
    facts: Annotated[Path | None, typer.Option(
        "--facts", help="Facts file (file mode: required unless --config or --api is given).",
    )] = None,
    now: NowOpt = None,
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report here.")] = None,
    output_format: FormatOpt = "table",
) -> None:
    """Check that SERVICE is at or above MIN_LEVEL on SCORECARD.

    Three ways to get the result, all graded the same way: --api asks a server (a result
    older than the scorecard is graded again first); --config grades the stored facts on the
    settings' scorecards and catalog; files mode grades --facts on --scorecards and --catalog.

    Exit codes, the same in every mode: 0 at or above the bar; 1 below it; 2 bad input
    (unknown service, scorecard or level, a service the scorecard's filter excludes, bad files
    or options); 3 no decision possible: the server or database cannot be reached, nothing is
    stored yet, the server's result is stale, or (with --unknown block) only rules without
    data stand in the way. See docs/gate.md.
    """
    services = split_names(service)
    if not services:
        raise fail_input([Problem("--service", None, "give a service name")])
    if api is not None:
        verdicts = _remote(api, services, scorecard, min_level, UnknownPolicy(unknown))
    else:
        verdicts = _local(services, scorecard, min_level, UnknownPolicy(unknown), config=config,
                          scorecards=scorecards, catalog=catalog, facts=facts, clock=parse_now(now))
    finish_gate(verdicts, junit, output_format)


def _remote(api: str, services: list[str], scorecard: str, min_level: str,
            unknown: UnknownPolicy) -> list[GateVerdict]:
    from engine.api.client import Unreachable, remote_verdict

    verdicts = []
    for name in services:
        try:
            verdicts.append(remote_verdict(api, service=name, scorecard=scorecard,
                                           min_level=min_level, unknown=unknown))
        except InputError as error:
            raise fail_input(error.problems) from None
        except Unreachable as error:
            raise fail_unreachable(error.problems) from None
    return verdicts


def _local(services: list[str], scorecard: str, min_level: str, unknown: UnknownPolicy, *,
           config: Path | None, scorecards: Path, catalog: Path, facts: Path | None,
           clock: datetime) -> list[GateVerdict]:
    """Verdicts on inputs assembled as a run assembles them: from the settings (the stored
    facts, a broken scorecard's last good version) or from files."""
    from engine.jobs.inputs import InputSources

    if config is not None and facts is None:
        from engine.cli.stored import stored_sources

        sources = stored_sources(config)
    else:
        if facts is None:
            facts = sample_facts("or --config levelset.yaml for the collected facts, or --api "
                                 "URL for a server")
        sources = InputSources.of_files(scorecards, catalog, facts, file_mode_schemas())
    inputs = assemble_or_exit(sources, clock)
    cards = inputs.scorecards.scorecards
    if scorecard not in cards and inputs.scorecards.errors:
        raise fail_input([Problem("--scorecard", None, f'scorecard "{scorecard}" is not '
                                  "among those that load"), *inputs.scorecards.errors])
    known = inputs.services
    verdicts = []
    for name in services:
        facts_by_service, _ = inputs.facts.read([name] if name in known else [])
        try:
            verdicts.append(gate_verdict(cards, known, facts_by_service, inputs.schemas, clock,
                                         service=name, scorecard=scorecard,
                                         min_level=min_level, unknown=unknown))
        except InputError as error:
            raise fail_input(error.problems) from None
    return verdicts


def finish_gate(verdicts: list[GateVerdict], junit: Path | None, output_format: str) -> None:
    """Print the verdicts, write JUnit if asked, and exit 0, 1 or 3."""
    if output_format == "json":
        document = {"passed": all(v.passed for v in verdicts),
                    "verdicts": [v.to_dict() for v in verdicts]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        console = stdout()
        for verdict in verdicts:
            for line, style in verdict.lines():
                console.print(line, style=style, markup=False)
    if junit is not None:
        write_junit(verdicts, junit)
    raise typer.Exit(gate_exit(verdicts))


def gate_exit(verdicts: list[GateVerdict]) -> int:
    """1 when a verdict fails on a rule that failed; 3 when only data is missing; else 0."""
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return EXIT_OK
    if all(v.no_data for v in failed):
        return EXIT_UNREACHABLE
    return EXIT_BELOW


__all__ = ["finish_gate", "gate", "gate_exit"]
