"""Commands that work on files alone: validate, evaluate, gate, schema."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.errors import InputError, NotFoundError, Problem, StorageError
from core.schema import FactSchema
from engine.catalog import load_catalog
from engine.cli.app import (
    EXIT_INPUT,
    EXIT_UNREACHABLE,
    SAMPLE_FACTS,
    ConfigOpt,
    FormatOpt,
    app,
    in_own_checkout,
    split_names,
)
from engine.cli.output import print_table, stderr, stdout
from engine.evaluation import Evaluation, ServiceFacts, evaluate
from engine.facts import load_facts
from engine.generation import placeholder_owners
from engine.loading import load_scorecards
from engine.scorecard import Scorecard, ScorecardDocument
from engine.vocabulary import vocabulary

if TYPE_CHECKING:
    from engine.jobs.inputs import InputSources, RunInputs
    from engine.notify.jobs import DeliveryReport
    from engine.settings import Settings
    from engine.storage.history.diff import Event

ScorecardsOpt = Annotated[Path, typer.Option("--scorecards", help="Scorecard file or directory.")]
CatalogOpt = Annotated[
    Path, typer.Option("--catalog", help="catalog-info.yaml, a directory, or a Location file.")
]
FactsOpt = Annotated[Path, typer.Option("--facts", help="Facts by service and namespace.")]
NowOpt = Annotated[
    str | None, typer.Option("--now", help="Evaluation clock, e.g. 2026-11-27 or ISO-8601.")
]


def report_problems(problems: list[Problem], heading: str | None = None) -> None:
    console = stderr()
    if heading:
        console.print(heading, style="bold red", markup=False)
    for problem in problems:
        console.print(f"error: {problem}", markup=False)


def fail_input(problems: list[Problem]) -> typer.Exit:
    report_problems(problems)
    return typer.Exit(EXIT_INPUT)


def fail_unreachable(problems: list[Problem]) -> typer.Exit:
    """One ``error:`` line per problem, and exit 3: a server that cannot be reached."""
    for problem in problems:
        stderr().print(f"error: {problem}", markup=False)
    return typer.Exit(EXIT_UNREACHABLE)


def file_mode_schemas() -> dict[str, FactSchema]:
    """The fact vocabulary of file mode, from the settings file found (``./levelset.yaml``;
    ``LEVELSET_CONFIG`` selects --config mode): its sources and declared custom facts type the
    rules as in every other mode, while the files given are graded. stderr says which."""
    from engine.settings import find_config, load_settings

    choice = find_config()
    if choice.path is None:
        stderr().print(choice.describe(), markup=False)
        return vocabulary()
    stderr().print(f"{choice.describe()}: its sources and declared facts type the rules; "
                   "the files given are graded", markup=False)
    try:
        settings = load_settings(choice.path)
    except InputError as error:
        raise fail_input(error.problems) from None
    return vocabulary(settings.collector_settings, settings.custom_facts)


def sample_facts(alternatives: str) -> Path:
    """The sample facts, as the default facts file of file mode: only in Levelset's own
    checkout; elsewhere a facts file must be given (``alternatives`` says what else may be)."""
    if not in_own_checkout():
        raise fail_input([Problem("--facts", None, "file mode needs a facts file: give "
                                  f"--facts FILE, {alternatives}")])
    return SAMPLE_FACTS


def parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise fail_input([Problem("--now", None, f"{text!r} is not a date or ISO-8601 time")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def assemble_or_exit(
    sources: InputSources, clock: datetime, services: list[str] | None = None, *,
    strict: bool = False,
) -> RunInputs:
    """A run's inputs as every mode assembles them (engine/jobs/inputs.py), or exit 2 with
    every problem. ``strict``: a scorecard file that does not load, and that no stored version
    stands in for, is an error (else a warning: a command answering on another scorecard
    does not depend on it). Catalog entities that are invalid are skipped, as Backstage does."""
    from engine.jobs.inputs import assemble

    try:
        inputs = assemble(sources, now=clock, services=services)
    except InputError as error:
        raise fail_input(error.problems) from None
    except NotFoundError as error:
        raise fail_input([Problem("--service", None, str(error))]) from None
    if strict and inputs.scorecards.errors:
        raise fail_input(inputs.scorecards.errors)
    if inputs.catalog_problems:
        report_problems(inputs.catalog_problems, "Skipped invalid catalog entities:")
    shown = {str(p) for p in inputs.catalog_problems}
    for problem in inputs.problems:
        if problem not in shown:
            stderr().print(f"warning: {problem}", markup=False)
    return inputs


@app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(help="Scorecard files or directories.")] = None,
    catalog: Annotated[Path | None, typer.Option(help="Also validate a catalog.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Check scorecards (and optionally a catalog); every problem with file and line. Exit 2 if any.

    With settings (--config, LEVELSET_CONFIG or ./levelset.yaml), facts are checked against
    the configured sources and declared custom facts, and the settings' scorecards are the
    default.
    """
    from engine.cli.server import load_settings_with_file

    settings, config = load_settings_with_file(config)
    schemas = vocabulary(settings.collector_settings, settings.custom_facts)
    default = settings.scorecards
    roots = paths or [default]
    cards = load_scorecards(roots, schemas)
    problems = list(cards.problems)
    owners: list[str] = []
    if catalog is not None:
        checked = load_catalog(catalog)
        problems.extend(checked.problems)
        owners = placeholder_owners(checked.services.values())
    if problems:
        raise fail_input(sorted(problems))
    for owner in owners:
        stderr().print(f"warning: {owner}", markup=False)
    if config is not None:
        for warning in unconfigured_sources(cards.scorecards.values(), settings, config):
            stderr().print(f"warning: {warning}", markup=False)
        for warning in configured_filters(cards.scorecards.values(), settings, schemas):
            stderr().print(f"warning: {warning}", markup=False)
    rows = [
        [card.name, str(len(card.rules)), " < ".join(card.level_names), card.path]
        for card in cards.scorecards.values()
    ]
    if not rows:
        raise fail_input([Problem(", ".join(map(str, roots)), None, "no scorecards found")])
    print_table(["scorecard", "rules", "levels", "file"], rows)
    stdout().print(f"{len(rows)} scorecard(s) valid.", markup=False)


def configured_filters(cards: Iterable[Scorecard], settings: Settings,
                       schemas: Mapping[str, FactSchema]) -> list[Problem]:
    """Filters that match no service of the settings' catalog (on the facts file, if any)."""
    from engine.cli.filters import empty_filters

    catalog = load_catalog(settings.catalog)
    if not settings.catalog.exists():
        return [Problem(str(settings.catalog), None, "catalog path does not exist")]
    for warning in placeholder_owners(catalog.services.values()):
        stderr().print(f"warning: {warning}", markup=False)
    facts: dict[str, ServiceFacts] = {}
    if settings.facts is not None and settings.facts.exists():
        with contextlib.suppress(InputError):
            facts = load_facts(settings.facts, schemas)
    return empty_filters(cards, catalog.services, facts, schemas, datetime.now(UTC))


def unconfigured_sources(cards: Iterable[Scorecard], settings: Settings, config: Path) -> list[Problem]:
    """A rule or filter reading facts of a source the settings do not configure (no collector
    section, and not in the facts file): it can never pass. One line per rule and source."""
    from collectors import registry

    provided = set(settings.collectors)
    if settings.facts is not None and settings.facts.exists():
        try:
            for found in load_facts(settings.facts, vocabulary(settings.collector_settings)).values():
                provided.update(found.values)
        except InputError:
            pass
    missing = set(registry.names()) - provided
    warnings = []
    for card in cards:
        checked = [(f'rule "{rule.name}"', rule.line, rule.expression) for rule in card.rules]
        if card.filter is not None:
            checked.append(("filter", card.filter_line, card.filter))
        for where, line, expression in checked:
            for namespace in sorted({ref.path[0] for ref in expression.references} & missing):
                facts = ", ".join(sorted({r.dotted for r in expression.references if r.path[0] == namespace}))
                warnings.append(Problem(card.path, line, (
                    f"{where} reads {facts}, but the {namespace} source is not configured in "
                    f"{config} (no collectors.{namespace} section, and no {namespace} facts in its "
                    "facts file): it can never pass")))
    return sorted(warnings)


def _evaluation_json(evaluation: Evaluation) -> str:
    return json.dumps(
        {"now": evaluation.now.isoformat(), "results": [r.to_dict() for r in evaluation.results]},
        indent=2, default=str,
    )


def _print_evaluation(evaluation: Evaluation, output_format: str) -> None:
    if output_format == "json":
        sys.stdout.write(_evaluation_json(evaluation) + "\n")
        return
    rows = []
    for result in evaluation.results:
        counts = result.counts()
        rows.append([
            result.service, result.scorecard, result.level or "-", f"{result.score:.0f}%",
            " ".join(f"{k}={v}" for k, v in counts.items() if v),
        ])
    print_table(["service", "scorecard", "level", "score", "rules"], rows,
                title=f"Evaluated at {evaluation.now.isoformat(timespec='seconds')}")


@app.command("evaluate")
def evaluate_command(
    scorecards: ScorecardsOpt = Path("scorecards"),
    catalog: CatalogOpt = Path("catalog"),
    facts: Annotated[Path | None, typer.Option(
        "--facts", help="Facts by service and namespace (required in file mode; with --config "
        "the stored facts are graded).")] = None,
    config: ConfigOpt = None,
    now: NowOpt = None,
    output_format: FormatOpt = "table",
    service: Annotated[list[str] | None, typer.Option(
        help="Only these services (repeat, or separate with commas).")] = None,
) -> None:
    """Grade every service on every scorecard that applies to it.

    With files (--scorecards, --catalog, --facts) nothing is stored. With --config, the
    catalog and scorecards of the settings file are graded on the facts stored by
    `levelset collect`, and the run is kept in the history like a scheduled one.
    """
    clock = parse_now(now)
    service = split_names(service) or None
    if facts is None and config is not None:
        _evaluate_stored(config, clock, output_format, service)
        return
    if facts is None:
        facts = sample_facts("or --config levelset.yaml for the collected facts")
    from engine.jobs.inputs import InputSources

    inputs = assemble_or_exit(InputSources.of_files(scorecards, catalog, facts, file_mode_schemas()),
                              clock, service, strict=True)
    selected = sorted(inputs.selected, key=lambda s: s.name)
    cards = inputs.scorecards.scorecards
    facts_by_service, _ = inputs.facts.read([s.name for s in selected])
    evaluation = evaluate(selected, facts_by_service, cards.values(), inputs.schemas, clock)
    for (name, card), problem in sorted(evaluation.filter_errors.items()):
        stderr().print(f"warning: scorecard {card}: filter failed for {name}, not graded: {problem}",
                       markup=False)
    if not service:
        from engine.cli.filters import empty_filters

        for warning in empty_filters(cards.values(), inputs.services, facts_by_service,
                                     inputs.schemas, clock):
            stderr().print(f"warning: {warning}", markup=False)
    _print_evaluation(evaluation, output_format)


def _evaluate_stored(config: Path, clock: datetime, output_format: str, only: list[str] | None) -> None:
    from engine.cli.run_summary import print_results_json, print_summary
    from engine.cli.server import load_settings_or_exit
    from engine.jobs import EvaluationFailed, prepare_database
    from engine.jobs.drops import evaluate_and_notify
    from engine.notify.jobs import level_drops_after_run
    from engine.storage.models import RunTrigger

    settings = load_settings_or_exit(config)
    single = only[0] if only and len(only) == 1 else None
    notified: list[DeliveryReport | None] = []  # shown after the run's own output

    def send_drops(settings: Settings, drops: Sequence[Event], *, run_id: int) -> None:
        notified.append(level_drops_after_run(settings, drops, run_id=run_id))

    try:
        prepare_database(settings)
        outcome = evaluate_and_notify(settings, trigger=RunTrigger.CLI, service=single, now=clock,
                                      send_drops=send_drops)
    except EvaluationFailed as error:
        raise fail_input([Problem(str(config), None, str(error))]) from None
    except StorageError as error:
        raise fail_input([Problem(settings.database_url, None, str(error))]) from None
    for problem in outcome.problems:
        stderr().print(f"warning: {problem}", markup=False)
    if outcome.already_stored:
        raise fail_input([Problem(str(config), None, f"run {outcome.run_id} was already complete")])
    if output_format == "json":
        print_results_json(settings, outcome, only)
        for change in outcome.level_changes:
            stderr().print(f"{change.direction}: {change.service} on {change.scorecard}: "
                           f"{change.before or 'no level'} -> {change.after or 'no level'}",
                           markup=False)
    else:
        print_summary(settings, outcome)
    stderr().print(f"stored as run {outcome.run_id} ({outcome.status})", markup=False)
    for report in notified:
        _print_drop_deliveries(report)


def _print_drop_deliveries(report: DeliveryReport | None) -> None:
    """What became of the run's level-drop notifications (``notify.level_drops``); a failure
    is reported and changes nothing about the run or the exit code."""
    from engine.notify.jobs import describe

    if report is None:
        stderr().print("warning: level-drop notifications were not sent (see the log)",
                       markup=False)
        return
    for _, result in report.channels:
        stderr().print(f"level-drop notification: {describe(result)}", markup=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a scorecard file (for editors and CI linters)."""
    document = ScorecardDocument.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["$id"] = "https://levelset.dev/schemas/scorecard-v1.json"
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


__all__ = ["evaluate_command", "schema", "validate"]
