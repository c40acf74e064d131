"""Scorecards and their versions: each file's text stored once per content hash.

A broken file never replaces a working version: the version in use (``scorecard.version_id``)
is the last one that loaded, and ``last_good_versions`` gives it back to the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from core.errors import NotFoundError
from engine.scorecard import Scorecard
from engine.storage.database import insert_missing, table_of
from engine.storage.history.diff import ScorecardIds
from engine.storage.models import (
    CurrentResult,
    ScorecardRecord,
    ScorecardRule,
    ScorecardVersion,
)
from engine.storage.public import LevelPublic, RuleDefinition, ScorecardDetail, ScorecardSummary

NO_LEVEL = "none"  # how "no level reached" is named in distributions, filters and counts


def scorecard_definition(scorecard: Scorecard) -> dict[str, Any]:
    return {
        "title": scorecard.title,
        "description": scorecard.description,
        "owner": scorecard.owner,
        "levels": [
            {"name": lv.name, "rank": lv.rank, "description": lv.description, "color": lv.color}
            for lv in scorecard.levels
        ],
        "rules": [
            {
                "name": r.name, "title": r.title, "description": r.description,
                "level": r.level, "weight": r.weight, "remediation": r.remediation,
                "expression": r.expression.source,
            }
            for r in scorecard.rules
        ],
    }


def sync_scorecards(
    session: Session,
    *,
    scorecards: Mapping[str, Scorecard],
    now: datetime,
    retired: Iterable[str] = (),
) -> dict[str, ScorecardIds]:
    """Store each scorecard's version (once per content hash) and make it the one in use.

    Safe beside a concurrent run: rows are inserted with ON CONFLICT DO NOTHING and a
    scorecard's row is updated only when its version in use changes.
    """
    names = sorted(scorecards)
    insert_missing(session, ScorecardRecord, [{"name": n, "active": True} for n in names],
                   ["name"])
    records = {r.name: r for r in session.execute(select(table_of(ScorecardRecord)))}
    insert_missing(session, ScorecardVersion, [
        {"scorecard_id": records[n].id, "content_hash": scorecards[n].content_hash,
         "path": scorecards[n].path, "source_text": scorecards[n].source_text,
         "definition": scorecard_definition(scorecards[n]), "first_seen": now}
        for n in names
    ], ["scorecard_id", "content_hash"])
    insert_missing(session, ScorecardRule, [
        {"scorecard_id": records[n].id, "name": rule.name}
        for n in names for rule in scorecards[n].rules
    ], ["scorecard_id", "name"])
    versions = _version_ids(session, scorecards, {r.id: r.name for r in records.values()})
    rule_ids = _rule_ids(session, {r.id: r.name for r in records.values() if r.name in scorecards})
    table = table_of(ScorecardRecord)
    for name in names:
        record = records[name]
        if (record.version_id, record.active) != (versions[name], True):
            session.execute(update(table).where(table.c.id == record.id)
                            .values(version_id=versions[name], active=True))
    for name in sorted(set(retired) - set(scorecards)):
        if name in records and records[name].active:
            session.execute(update(table).where(table.c.id == records[name].id)
                            .values(active=False))
    return {
        name: ScorecardIds(
            scorecard_id=records[name].id, version_id=versions[name],
            rule_ids=rule_ids.get(name, {}),
            level_ranks={level.name: level.rank for level in scorecards[name].levels},
        )
        for name in names
    }


def _version_ids(
    session: Session, scorecards: Mapping[str, Scorecard], names: Mapping[int, str]
) -> dict[str, int]:
    """The stored version of each scorecard's file, by scorecard name."""
    versions: dict[str, int] = {}
    for row in session.execute(
        select(col(ScorecardVersion.id), col(ScorecardVersion.scorecard_id),
               col(ScorecardVersion.content_hash))
        .where(col(ScorecardVersion.content_hash).in_([c.content_hash for c in scorecards.values()]))
    ):
        name = names.get(row.scorecard_id, "")
        if name in scorecards and scorecards[name].content_hash == row.content_hash:
            versions[name] = row.id
    return versions


def _rule_ids(session: Session, names: Mapping[int, str]) -> dict[str, dict[str, int]]:
    """Rule ids by scorecard name and rule name."""
    found: dict[str, dict[str, int]] = {}
    for row in session.execute(select(ScorecardRule).where(
            col(ScorecardRule.scorecard_id).in_(sorted(names)))).scalars():
        assert row.id is not None
        found.setdefault(names[row.scorecard_id], {})[row.name] = row.id
    return found


def last_good_versions(session: Session) -> list[ScorecardVersion]:
    """The version in use of every active scorecard."""
    return list(session.execute(
        select(ScorecardVersion)
        .join(ScorecardRecord, col(ScorecardRecord.version_id) == col(ScorecardVersion.id))
        .where(col(ScorecardRecord.active))
    ).scalars())


def get_scorecard(session: Session, name: str) -> tuple[ScorecardRecord, ScorecardVersion]:
    """An active scorecard and its version in use."""
    row = session.execute(
        select(ScorecardRecord, ScorecardVersion)
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(ScorecardRecord.version_id))
        .where(col(ScorecardRecord.name) == name, col(ScorecardRecord.active))
    ).first()
    if row is None:
        raise NotFoundError(f'unknown scorecard "{name}"')
    return row[0], row[1]


@dataclass(frozen=True)
class ScorecardInUse:
    """An active scorecard and the definition of its version in use (``scorecard_definition``)."""

    name: str
    version_id: int
    definition: dict[str, Any]


def scorecards_in_use(session: Session) -> list[ScorecardInUse]:
    """Every active scorecard with its version in use, by name."""
    rows = session.execute(
        select(col(ScorecardRecord.name), col(ScorecardVersion.id), col(ScorecardVersion.definition))
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(ScorecardRecord.version_id))
        .where(col(ScorecardRecord.active))
        .order_by(col(ScorecardRecord.name))
    )
    return [ScorecardInUse(r[0], r[1], r[2]) for r in rows]


def version_definitions(session: Session, version_ids: set[int]) -> dict[int, dict[str, Any]]:
    """The definition of each of these scorecard versions."""
    if not version_ids:
        return {}
    rows = session.execute(
        select(col(ScorecardVersion.id), col(ScorecardVersion.definition))
        .where(col(ScorecardVersion.id).in_(sorted(version_ids)))
    )
    return {row.id: row.definition for row in rows}


def levels_of(version: ScorecardVersion) -> list[LevelPublic]:
    return [LevelPublic(**lv) for lv in version.definition.get("levels", [])]


def level_names(session: Session, version_ids: set[int]) -> dict[int, list[str]]:
    """Level names of scorecard versions, lowest first: a rank's name is ``names[rank - 1]``."""
    return level_names_of(version_definitions(session, version_ids))


def level_names_of(definitions: Mapping[int, dict[str, Any]]) -> dict[int, list[str]]:
    """Level names of version definitions, lowest first (as ``level_names`` gives them)."""
    return {
        version_id: [lv["name"] for lv in sorted(d.get("levels", []), key=lambda lv: lv["rank"])]
        for version_id, d in definitions.items()
    }


def level_name(names: dict[int, list[str]], version_id: int | None, rank: int) -> str | None:
    levels = names.get(version_id, []) if version_id is not None else []
    return levels[rank - 1] if 0 < rank <= len(levels) else None


def _summary(card: ScorecardRecord, version: ScorecardVersion, services: int) -> dict[str, Any]:
    definition = version.definition
    return {
        "name": card.name, "title": definition.get("title"),
        "description": definition.get("description"), "owner": definition.get("owner"),
        "version": version.content_hash, "levels": levels_of(version),
        "rules": len(definition.get("rules", [])), "services": services,
    }


def list_scorecards(session: Session) -> list[ScorecardSummary]:
    rows = session.execute(
        select(ScorecardRecord, ScorecardVersion)
        .join(ScorecardVersion, col(ScorecardVersion.id) == col(ScorecardRecord.version_id))
        .where(col(ScorecardRecord.active))
        .order_by(col(ScorecardRecord.name))
    ).all()
    counts = dict(session.execute(
        select(col(CurrentResult.scorecard_id), func.count())
        .group_by(col(CurrentResult.scorecard_id))
    ).all())
    return [ScorecardSummary(**_summary(card, version, counts.get(card.id, 0)))
            for card, version in rows]


def scorecard_detail(session: Session, *, name: str) -> ScorecardDetail:
    card, version = get_scorecard(session, name)
    rows = session.execute(
        select(col(CurrentResult.level), func.count())
        .where(col(CurrentResult.scorecard_id) == card.id)
        .group_by(col(CurrentResult.level))
    )
    distribution = {(level or NO_LEVEL): count for level, count in rows}
    full = {lv.name: distribution.get(lv.name, 0) for lv in levels_of(version)}
    full[NO_LEVEL] = distribution.get(NO_LEVEL, 0)
    return ScorecardDetail(
        **_summary(card, version, sum(distribution.values())),
        definition=[RuleDefinition(**r) for r in version.definition.get("rules", [])],
        distribution=full,
        source=version.source_text,
        path=version.path,
    )
