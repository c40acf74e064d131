"""Collection jobs: run the configured collectors and store their facts.

A source's collection is planned as units (``Collector.plan``), collected one at a time and
combined (``Collector.combine``) into the facts that are stored. ``run_collection`` does it
all in this process; ``plan_collection``, ``collect_unit`` and ``store_units`` are the same
steps for units collected apart (each in its own run, its result passed as plain values).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from collectors import build_collectors
from collectors.base import (
    CollectionPlan,
    CollectionResult,
    CollectionUnit,
    Collector,
    UnitResult,
    collect_in_units,
    collect_unit_guarded,
)
from core.errors import CollectorError, NotFoundError, Problem, SettingsError
from core.redaction import redact
from core.service import Service
from engine.catalog import load_catalog
from engine.settings import Settings
from engine.storage import facts as fact_store
from engine.storage.database import engine_for, write_scope
from engine.storage.http_cache import DatabaseETagCache

log = logging.getLogger("levelset.jobs")

@dataclass
class CollectionStored:
    source: str
    services: int
    failures: int
    requests: int


def store_collection(
    settings: Settings,
    *,
    source: str,
    started_at: datetime,
    finished_at: datetime,
    facts: Mapping[str, Mapping[str, Any]],
    failures: Mapping[str, str],
    requests: int = 0,
) -> CollectionStored:
    """Store one collector's facts (and per-service failures) as snapshots, in one transaction."""
    with write_scope(engine_for(settings.database_url)) as session:
        fact_store.store_snapshots(session, source=source, collected_at=finished_at,
                                   facts=facts,
                                   failures={name: redact(why) for name, why in failures.items()})
    log.info(
        "stored %s facts: %d services, %d failures, %d requests in %.1fs",
        source,
        len(facts),
        len(failures),
        requests,
        (finished_at - started_at).total_seconds(),
    )
    return CollectionStored(source, len(facts), len(failures), requests)


def store_collection_result(settings: Settings, result: CollectionResult) -> CollectionStored:
    return store_collection(
        settings,
        source=result.source,
        started_at=result.started_at,
        finished_at=result.finished_at or datetime.now(UTC),
        facts=result.facts,
        failures=result.failures,
        requests=result.requests,
    )


Progress = Callable[[str, CollectionResult | None], None]

# Collectors live as long as the process, so a server or worker keeps each collector's state
# from run to run; keyed by the database and the collector's settings section. A collector
# that keeps an HTTP cache keeps it in the database (``use_shared_cache``), shared by every
# process and kept across runs, unless its settings name a file for it.
_COLLECTORS: dict[tuple[str, str, str], Any] = {}


def configured_collectors(settings: Settings, sources: Sequence[str] | None = None) -> list[Any]:
    """The collectors of the settings file (optionally only ``sources``), reused across runs."""
    wanted = settings.collectors if sources is None else {
        name: section for name, section in settings.collectors.items() if name in sources
    }
    missing = sorted(set(sources or ()) - set(settings.collectors))
    if missing:
        raise SettingsError([Problem("collectors", None, f"no settings for collector {name!r} "
                                     f"(configured: {', '.join(settings.collectors) or 'none'})")
                             for name in missing])
    built = []
    for name, section in wanted.items():
        key = (name, settings.database_url, json.dumps(section, sort_keys=True, default=str))
        if key not in _COLLECTORS:
            try:
                [collector] = build_collectors({name: section})
            except KeyError as error:
                raise SettingsError([Problem("collectors", None, str(error.args[0]))]) from None
            share = getattr(collector, "use_shared_cache", None)
            if share is not None:
                share(partial(DatabaseETagCache, engine_for(settings.database_url)))
            _COLLECTORS[key] = collector
        built.append(_COLLECTORS[key])
    return built


def selected_services(settings: Settings, services: Sequence[str] | None = None
                      ) -> list[Service]:
    """The catalog's services, or only those named (NotFoundError for an unknown name)."""
    catalog = load_catalog(settings.catalog)
    if not services:
        return list(catalog)
    unknown = sorted(set(services) - set(catalog.services))
    if unknown:
        raise NotFoundError(f"unknown service(s): {', '.join(unknown)}")
    return [catalog.services[name] for name in services]


def run_collection(
    settings: Settings,
    *,
    sources: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[tuple[CollectionResult, CollectionStored]]:
    """Collect facts for the catalog's services from each configured source, and store them.

    Each source plans its units and collects them one after another in one run; it is stored
    as soon as it finishes. A source that breaks fails its services (their rules become
    unknown) and the others still run.
    """
    collectors = configured_collectors(settings, sources)
    selected = selected_services(settings, services)
    stored = []
    for collector in collectors:
        if progress is not None:
            progress(collector.name, None)
        plan = collector.plan(selected)
        log.info("%s: %d unit(s) %s", collector.name, len(plan.units), plan.kinds())
        result = collect_in_units(collector, selected, plan)
        result.redact_secrets()
        stored.append((result, store_collection_result(settings, result)))
        if progress is not None:
            progress(collector.name, result)
    return stored


def plan_collection(
    settings: Settings,
    *,
    sources: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
) -> list[CollectionPlan]:
    """Each configured source's plan for the catalog's services (or those named)."""
    selected = selected_services(settings, services)
    return [collector.plan(selected) for collector in configured_collectors(settings, sources)]


def collect_unit(settings: Settings, unit: CollectionUnit,
                 inputs: Sequence[UnitResult] = ()) -> UnitResult:
    """One unit of a plan, in a run of its own: what a worker that got the unit runs.

    ``inputs`` are the results of the units it comes after (as plain values from another
    process, :meth:`UnitResult.from_dict`)."""
    collector: Collector = configured_collectors(settings, [unit.source])[0]
    services = selected_services(settings, unit.services)
    try:
        with collector.open_run() as run:
            result = collect_unit_guarded(collector, unit, services, inputs, run)
    except CollectorError as error:
        failed = CollectionResult(source=collector.name, started_at=datetime.now(UTC))
        failed.fail_all(services, str(error))
        failed.finished_at = datetime.now(UTC)
        result = UnitResult(unit, failed)
    result.result.redact_secrets()
    return result


def store_units(settings: Settings, plan: CollectionPlan, results: Sequence[UnitResult],
                *, started_at: datetime) -> tuple[CollectionResult, CollectionStored]:
    """The results of a plan's units combined (no I/O but the store) and stored as one
    collection of the source, like ``run_collection`` stores it."""
    collector: Collector = configured_collectors(settings, [plan.source])[0]
    result = collector.combine(plan, results, started_at)
    result.redact_secrets()
    return result, store_collection_result(settings, result)
