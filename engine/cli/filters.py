"""A scorecard whose filter matches no service of the catalog: said with the values it
looks for that no service has (a misspelt label, tag or lifecycle)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from core.errors import Problem
from core.schema import FactSchema
from core.service import Service
from engine.evaluation import FactContext, ServiceFacts, applies
from engine.scorecard import Scorecard
from rules.functions import bind
from rules.syntax import string_text, tokens


def catalog_values(services: Iterable[Service]) -> set[str]:
    """Every value a filter may look for: names, owners, lifecycles, types, systems, tiers,
    tags, label keys and values, annotation keys."""
    found: set[str] = set()
    for service in services:
        found.update(v for v in (service.name, service.owner, service.lifecycle, service.type,
                                 service.system, service.tier, service.namespace) if v)
        found.update(service.tags)
        for key, value in service.labels.items():
            found.update((key, value))
        found.update(service.annotations)
    return found


def empty_filters(
    cards: Iterable[Scorecard], services: Mapping[str, Service],
    facts: Mapping[str, ServiceFacts], schemas: Mapping[str, FactSchema], now: datetime,
) -> list[Problem]:
    """One warning per scorecard whose filter is true for no service (and failed for none)."""
    warnings = []
    values: set[str] | None = None
    context = bind(now)
    for card in cards:
        if card.filter is None or not services:
            continue
        matched, failed = False, False
        for service in services.values():
            applicable, problem = applies(card, FactContext(
                service, facts.get(service.name), schemas, context, now))
            matched = matched or applicable
            failed = failed or problem is not None
            if matched:
                break
        if matched or failed:
            continue
        if values is None:
            values = catalog_values(services.values())
        wanted = [text for token in tokens(card.filter.source)
                  if (text := string_text(token)) is not None]
        absent = [w for w in dict.fromkeys(wanted) if w not in values]
        why = (f": no service has {', '.join(repr(w) for w in absent)} (in its tags, labels, "
               "lifecycle, type, system or owner)") if absent else ""
        warnings.append(Problem(card.path, card.filter_line, (
            f'scorecard "{card.name}": its filter {card.filter.source.strip()} matches none of '
            f"the {len(services)} service(s) of the catalog{why}")))
    return warnings
