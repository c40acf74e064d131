"""What a read command grades with ``--config``: the settings' scorecards and catalog, and the
facts stored by ``levelset collect`` (the settings' facts file filling in)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from core.errors import InputError, Problem
from core.schema import FactSchema
from core.service import Service
from engine.catalog import load_catalog
from engine.cli.database import require_database
from engine.cli.local import fail_input, report_problems
from engine.cli.server import load_settings_or_exit
from engine.evaluation import ServiceFacts
from engine.facts import load_facts
from engine.loading import load_scorecards
from engine.scorecard import Scorecard
from engine.vocabulary import vocabulary


def stored_inputs(config: Path, clock: datetime) -> tuple[
        dict[str, Scorecard], dict[str, Service], dict[str, ServiceFacts], dict[str, FactSchema]]:
    from engine.cli.gate import merged_facts
    from engine.jobs.facts import latest_facts
    from engine.storage.database import engine_for, session_scope

    settings = load_settings_or_exit(config)
    schemas = vocabulary(settings.collector_settings, settings.custom_facts)
    cards = load_scorecards(settings.scorecards, schemas)
    problems = list(cards.problems)
    catalog = load_catalog(settings.catalog)
    if not catalog.services:
        problems.append(Problem(str(settings.catalog), None, "no services in the catalog"))
    recorded: dict[str, ServiceFacts] = {}
    if settings.facts is not None:
        try:
            recorded = load_facts(settings.facts, schemas)
        except InputError as error:
            problems.extend(error.problems)
    if problems:
        raise fail_input(problems)
    if catalog.problems:
        report_problems(catalog.problems, "Skipped invalid catalog entities:")
    require_database(settings, config)
    with session_scope(engine_for(settings.database_url)) as session:
        stored, _ = latest_facts(session, now=clock,
                                 max_age=timedelta(hours=settings.facts_max_age_hours))
    return cards.scorecards, catalog.services, merged_facts(stored, recorded), schemas
