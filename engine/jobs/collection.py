"""Collection jobs: run the configured collectors and store their facts."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from collectors import build_collectors, collect_all
from collectors.base import CollectionResult
from core.errors import NotFoundError, Problem, SettingsError
from core.redaction import redact
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


def run_collection(
    settings: Settings,
    *,
    sources: Sequence[str] | None = None,
    services: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> list[tuple[CollectionResult, CollectionStored]]:
    """Collect facts for the catalog's services from each configured source, and store them.

    Each source is stored as soon as it finishes; a source that breaks fails its services
    (their rules become unknown) and the others still run.
    """
    collectors = configured_collectors(settings, sources)
    catalog = load_catalog(settings.catalog)
    selected = list(catalog)
    if services:
        unknown = sorted(set(services) - set(catalog.services))
        if unknown:
            raise NotFoundError(f"unknown service(s): {', '.join(unknown)}")
        selected = [catalog.services[name] for name in services]
    stored = []
    for collector in collectors:
        if progress is not None:
            progress(collector.name, None)
        [result] = collect_all([collector], selected)
        stored.append((result, store_collection_result(settings, result)))
        if progress is not None:
            progress(collector.name, result)
    return stored
