"""A run's inputs, assembled one way for every caller: server and Celery runs, ``evaluate``
and each mode of ``gate``.

The inputs are the catalog, the scorecards, the facts, the exemptions (part of each
scorecard) and the clock. Where they come from differs only by whether there is storage:

- with storage (settings with a database): a scorecard file that does not load is graded
  with its last good stored version; the facts file is stored as snapshots and the facts
  are read back from storage, with what collectors and pushes stored;
- without (files only): there is no last good version, and the facts file is the facts.

Everything else (what is fatal, which services, what is noted) is the same for both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlmodel import Session

from core.errors import InputError, NotFoundError, Problem
from core.schema import FactSchema
from core.service import Service
from engine.catalog import load_catalog
from engine.evaluation import ServiceFacts
from engine.facts import load_facts
from engine.jobs.context import schemas_for
from engine.jobs.facts import latest_facts, store_file_facts
from engine.loading import load_scorecards, parse_scorecard
from engine.scorecard import Scorecard
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.scorecards import last_good_versions


@dataclass(frozen=True)
class InputSources:
    """Where a run's inputs are read from; ``settings`` when there is storage."""

    scorecards: Path | tuple[Path, ...]
    catalog: Path
    facts: Path | None
    schemas: Mapping[str, FactSchema]
    settings: Settings | None = None

    @classmethod
    def of_settings(cls, settings: Settings) -> InputSources:
        return cls(settings.scorecards, settings.catalog, settings.facts, schemas_for(settings),
                   settings)

    @classmethod
    def of_files(cls, scorecards: Path | Sequence[Path], catalog: Path, facts: Path,
                 schemas: Mapping[str, FactSchema]) -> InputSources:
        roots = scorecards if isinstance(scorecards, Path) else tuple(scorecards)
        return cls(roots, catalog, facts, schemas)


# --- scorecards: a broken file never replaces a working version --------------------------------


@dataclass
class ScorecardInputs:
    """The scorecards to grade with. ``problems``: every note, for a run's record;
    ``errors``: the problems of the files that do not load and that no stored version stands
    in for (a command that answers on one scorecard refuses only if it is among them)."""

    scorecards: dict[str, Scorecard]
    problems: list[str]
    retired: list[str]
    errors: list[Problem] = field(default_factory=list)


def resolve_scorecards(
    session: Session | None, path: Path | Sequence[Path], schemas: Mapping[str, FactSchema]
) -> ScorecardInputs:
    """The scorecards that load, else (with storage) the last stored good version."""
    loaded = load_scorecards(path, schemas)
    problems = [str(p) for p in loaded.problems]
    cards = dict(loaded.scorecards)
    broken_files = {p.file for p in loaded.problems}
    standing_in: set[str] = set()
    retired = []
    for version in last_good_versions(session) if session is not None else []:
        card, found = parse_scorecard(version.source_text, version.path, schemas)
        if card is None:
            problems.extend(f"stored version {version.content_hash[:12]}: {p}" for p in found)
            continue
        if card.name in cards:
            continue
        if version.path in broken_files or Path(version.path).exists():
            cards[card.name] = card
            standing_in.add(version.path)
            problems.append(
                f'{version.path}: scorecard "{card.name}" does not load; '
                f"evaluated with its last good version {version.content_hash[:12]}"
            )
        else:
            retired.append(card.name)
    errors = [p for p in loaded.problems if p.file not in standing_in]
    return ScorecardInputs(cards, problems, retired, errors)


# --- facts -------------------------------------------------------------------------------------


class FactSource(Protocol):
    """The facts of some services, and notes on what was left out (stale snapshots)."""

    def read(self, names: Sequence[str]) -> tuple[dict[str, ServiceFacts], list[str]]: ...


@dataclass(frozen=True)
class StoredFacts:
    """The latest stored facts: collected, pushed, and the facts file's snapshots."""

    database_url: str
    now: datetime
    max_age: timedelta

    def read(self, names: Sequence[str]) -> tuple[dict[str, ServiceFacts], list[str]]:
        with session_scope(engine_for(self.database_url)) as session:
            return latest_facts(session, now=self.now, services=names, max_age=self.max_age)


@dataclass(frozen=True)
class FileFacts:
    """A facts file's facts, read once."""

    by_service: Mapping[str, ServiceFacts]

    def read(self, names: Sequence[str]) -> tuple[dict[str, ServiceFacts], list[str]]:
        return {n: self.by_service[n] for n in names if n in self.by_service}, []


# --- the whole ---------------------------------------------------------------------------------


@dataclass
class RunInputs:
    """What a run grades: the catalog, the services asked for, the scorecards, the fact
    vocabulary they were loaded with, where the facts come from, and the clock."""

    timings: dict[str, float]
    catalog: list[Service]
    selected: list[Service]
    scorecards: ScorecardInputs
    problems: list[str]  # notes for the run's record; nothing here stopped it
    schemas: dict[str, FactSchema]
    facts: FactSource
    now: datetime
    catalog_problems: list[Problem] = field(default_factory=list)

    @property
    def services(self) -> dict[str, Service]:
        return {s.name: s for s in self.catalog}


def assemble(
    sources: InputSources, *, now: datetime, services: Sequence[str] | None = None
) -> RunInputs:
    """Read every input of a run. InputError when nothing can be graded (no services, no
    usable scorecard, an unreadable facts file without storage); NotFoundError for a service
    of ``services`` that the catalog does not have."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    schemas = dict(sources.schemas)
    catalog = load_catalog(sources.catalog)
    timings["catalog"] = time.perf_counter() - started
    problems = [str(p) for p in catalog.problems]
    if not catalog.services:
        raise InputError(
            [Problem(str(sources.catalog), None, "no services in the catalog"), *catalog.problems]
        )
    selected: list[Service] = list(catalog)
    if services is not None:
        missing = [name for name in services if name not in catalog.services]
        if missing:
            raise NotFoundError(f'unknown service "{missing[0]}"')
        selected = [catalog.services[name] for name in dict.fromkeys(services)]
    started = time.perf_counter()
    settings = sources.settings
    if settings is not None:
        with session_scope(engine_for(settings.database_url)) as session:
            scorecards = resolve_scorecards(session, sources.scorecards, schemas)
    else:
        scorecards = resolve_scorecards(None, sources.scorecards, schemas)
    timings["scorecards"] = time.perf_counter() - started
    problems += scorecards.problems
    if not scorecards.scorecards:
        where = ", ".join(map(str, _roots(sources.scorecards)))
        raise InputError(scorecards.errors or [Problem(where, None, "no scorecards found")])
    started = time.perf_counter()
    facts: FactSource
    if settings is not None:
        if sources.facts is not None:
            problems += store_file_facts(settings, path=sources.facts, schemas=schemas,
                                         services=catalog.services, now=now)
        facts = StoredFacts(settings.database_url, now,
                            timedelta(hours=settings.facts_max_age_hours))
    else:
        by_service = load_facts(sources.facts, schemas) if sources.facts is not None else {}
        unknown = sorted(set(by_service) - set(catalog.services))
        if unknown:
            problems.append(f"{sources.facts}: facts for services not in the catalog: "
                            f"{', '.join(unknown)}")
        facts = FileFacts(by_service)
    timings["facts"] = time.perf_counter() - started
    return RunInputs(timings, list(catalog), selected, scorecards, problems, schemas, facts, now,
                     list(catalog.problems))


def _roots(paths: Path | tuple[Path, ...]) -> tuple[Path, ...]:
    return (paths,) if isinstance(paths, Path) else paths
