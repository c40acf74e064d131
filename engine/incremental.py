"""Incremental evaluation: which results a run must evaluate, decided from their inputs.

A result (one service on one scorecard) is a function of its inputs: the scorecard's version,
the service's catalog entry, the facts of the namespaces the scorecard reads (or why they are
absent: a failed or stale collection), which of its exemptions are active today, the fact
vocabulary and this release of Levelset; and, for rules that read the clock (``now``,
``days_since``, ``hours_since``), the time. The digest of those inputs is kept with the
result; a run evaluates again only the results whose digest changed.

Clock-dependence is decided statically, when a scorecard loads: a rule (or filter) that names
``now`` or a function that reads it. Those rules are evaluated on every run for every service
(they read a few facts each, so this is cheap), and their verdicts join the digest: a result
whose clock rules say what they said last time, on unchanged facts, is unchanged. Pure: no
I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from core.schema import FactSchema
from core.service import Service
from engine.evaluation import ScorecardResult, facts_read
from engine.scorecard import Scorecard
from engine.storage.codec import canonical_json, digest64
from rules.functions import clock_names
from rules.references import reads_identifier

# Bumped when what a result is computed from changes shape; with the release, in every digest.
INPUTS_FORMAT = 1


@cache
def _release() -> str:
    try:
        return version("levelset")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree not installed
        return "source"


def clock_rules(card: Scorecard) -> frozenset[str]:
    """The rules of ``card`` that read the clock."""
    names = clock_names()
    return frozenset(r.name for r in card.rules if reads_identifier(r.expression.source, names))


def filter_reads_clock(card: Scorecard) -> bool:
    return card.filter is not None and reads_identifier(card.filter.source, clock_names())


def reads_clock(card: Scorecard) -> bool:
    return bool(clock_rules(card)) or filter_reads_clock(card)


def clock_part(card: Scorecard) -> Scorecard:
    """``card`` with only its clock rules (and its filter): what every run evaluates."""
    keep = clock_rules(card)
    return dataclasses.replace(card, rules=tuple(r for r in card.rules if r.name in keep))


def namespaces_read(card: Scorecard) -> tuple[str, ...]:
    return tuple(sorted(facts_read([card])))


@dataclasses.dataclass(frozen=True)
class CardInputs:
    """What every result of one scorecard depends on, whatever the service."""

    name: str
    base: int  # release, format, scorecard version, vocabulary of the namespaces it reads
    namespaces: tuple[str, ...]


def card_inputs(card: Scorecard, schemas: Mapping[str, FactSchema]) -> CardInputs:
    namespaces = namespaces_read(card)
    vocabulary = [repr(schemas.get(ns)) for ns in namespaces if ns != "service"]
    return CardInputs(card.name, digest64(canonical_json(
        [INPUTS_FORMAT, _release(), card.content_hash or card.source_text, vocabulary])),
        namespaces)


def service_digest(service: Service) -> int:
    """The catalog entry as rules read it (``service.*``)."""
    return digest64(canonical_json(service.facts()))


def input_digest(
    card: CardInputs,
    scorecard: Scorecard,
    service: Service,
    catalog_digest: int,
    fact_states: Mapping[str, str],
    today: date,
    clock: str | None,
) -> int:
    """The digest of one result's inputs.

    ``fact_states``: per namespace, what the facts are (the stored snapshot's digest) or why
    they are absent; ``clock``: the verdicts of the card's clock rules on this service (None
    when it has none).
    """
    exemptions = [(e.rule, e.expires.isoformat(), e.active_on(today))
                  for e in scorecard.exemptions_for(service.name)]
    states = [fact_states.get(ns, "") for ns in card.namespaces if ns != "service"]
    return digest64(canonical_json(
        [card.base, catalog_digest, states, exemptions, clock]))


def clock_verdicts(result: ScorecardResult | None) -> str:
    """The verdicts of a clock-only evaluation (``clock_part``), for the digest: each rule's
    status, message and evidence; "not graded" when the filter left the service out."""
    if result is None:
        return "not graded"
    return canonical_json([[r.rule, r.status.value, r.message, dict(r.evidence) or None]
                           for r in result.rules])
