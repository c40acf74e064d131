"""Grading a run in batches: what to evaluate (incremental), evaluating it, and spooling the
results until they are stored.

Memory is bounded by a batch of services, not by the fleet: facts are read, evaluated and
spooled ``BATCH`` services at a time, and the spool (a temporary file past a few thousand
results) is read back a batch at a time when the run is stored.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import IO, Any

from core.schema import FactSchema, UnreadableFacts, select
from core.service import Service
from engine.evaluation import (
    Evaluation,
    RuleResult,
    RuleStatus,
    ScorecardResult,
    ServiceFacts,
    evaluate,
    facts_read,
)
from engine.incremental import (
    CardInputs,
    card_inputs,
    clock_part,
    clock_verdicts,
    input_digest,
    reads_clock,
    service_digest,
)
from engine.isolation import EvaluationTask, evaluate_isolated
from engine.jobs.facts import fact_states
from engine.jobs.inputs import FactSource
from engine.scorecard import Scorecard
from engine.settings import Settings
from engine.storage.database import engine_for, session_scope
from engine.storage.inputs import stored_inputs

BATCH = 1000  # services per batch: about 5,000 results of 20 rules, some 30 MiB in flight
KEEP_IN_MEMORY = 5000  # results a spool holds before it moves to a temporary file

Pair = tuple[str, str]  # (service, scorecard)


@dataclass
class Plan:
    """What a run grades: per service, the scorecards whose inputs changed; and the digest
    of every pair's inputs (None: graded on every run, e.g. its filter fails)."""

    graded: dict[str, frozenset[str]]
    digests: dict[Pair, int | None]
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class Grader:
    """Evaluates batches for one run, in the evaluation process or in this one."""

    settings: Settings
    services: Sequence[Service]
    cards: Mapping[str, Scorecard]
    schemas: Mapping[str, FactSchema]
    now: datetime
    source: FactSource  # where the run's inputs say the facts come from

    def facts(self, names: Sequence[str]) -> tuple[dict[str, ServiceFacts], list[str]]:
        return self.source.read(names)

    def evaluate(self, batch: Sequence[Service], facts: Mapping[str, ServiceFacts],
                 only: Mapping[str, frozenset[str]], *, clock_only: bool = False) -> Evaluation:
        cards = [self.cards[name] for name in self.cards
                 if any(name in wanted for wanted in only.values())]
        if not self.settings.evaluation.isolated:
            if clock_only:
                cards = [clock_part(card) for card in cards]
            return evaluate(batch, facts, cards, self.schemas, self.now, only)
        tree = facts_read([clock_part(card) for card in cards] if clock_only else cards)
        task = EvaluationTask(
            services=batch,
            facts={s.name: _trimmed(facts[s.name], tree) for s in batch if s.name in facts},
            scorecards=[(card.path, card.source_text) for card in cards],
            schemas=self.schemas, now=self.now, only=only, clock_only=clock_only,
        )
        return evaluate_isolated(task, budget=self.settings.evaluation.timeout_seconds)


def _trimmed(facts: ServiceFacts, tree: Mapping[str, Any]) -> ServiceFacts:
    """Only the facts the rules read (what the evaluation would select anyway), so that a
    batch sent to the evaluation process is small."""
    values: dict[str, dict[str, Any]] = {}
    for namespace, raw in facts.values.items():
        if namespace not in tree:
            continue
        try:
            values[namespace] = (select(raw, tree[namespace])
                                 if tree[namespace] is not None and isinstance(raw, Mapping)
                                 else raw)
        except UnreadableFacts:  # the evaluation says why, for the rules that read it
            values[namespace] = raw
    return ServiceFacts(values, facts.failures)


def plan(grader: Grader) -> Plan:
    """The pairs whose inputs changed since they were stored (all of them on a first run)."""
    settings, now = grader.settings, grader.now
    with session_scope(engine_for(settings.database_url)) as session:
        states = fact_states(session, now=now,
                             max_age=timedelta(hours=settings.facts_max_age_hours))
        stored = stored_inputs(session)
    inputs = {name: card_inputs(card, grader.schemas) for name, card in grader.cards.items()}
    clock = {name for name, card in grader.cards.items() if reads_clock(card)}
    today = now.date()
    result = Plan(graded={}, digests={})
    for batch in _batches(grader.services):
        verdicts = _clock_verdicts(grader, batch, clock) if clock else {}
        for service in batch:
            catalog = service_digest(service)
            wanted = []
            for name, card in grader.cards.items():
                pair = (service.name, name)
                digest = _digest(inputs[name], card, service, catalog,
                                 states.get(service.name, {}), today, verdicts, pair, clock)
                result.digests[pair] = digest
                if digest is None or stored.get(pair) != digest:
                    wanted.append(name)
                else:
                    result.unchanged += 1
            if wanted:
                result.graded[service.name] = frozenset(wanted)
    return result


def _digest(
    card_in: CardInputs, card: Scorecard, service: Service, catalog: int,
    states: Mapping[str, str], today: date, verdicts: Mapping[Pair, str | None],
    pair: Pair, clock: set[str],
) -> int | None:
    if pair[1] not in clock:
        return input_digest(card_in, card, service, catalog, states, today, None)
    verdict = verdicts.get(pair)
    if verdict is None:  # the clock pass could not grade it: grade it in full
        return None
    return input_digest(card_in, card, service, catalog, states, today, verdict)


def _clock_verdicts(grader: Grader, batch: Sequence[Service], clock: set[str]) -> dict[Pair, str | None]:
    """What the rules that read the clock say now, per (service, scorecard) of ``clock``."""
    facts, _ = grader.facts([s.name for s in batch])
    only = {s.name: frozenset(clock) for s in batch}
    evaluation = grader.evaluate(batch, facts, only, clock_only=True)
    verdicts: dict[Pair, str | None] = {}
    for result in evaluation.results:
        verdicts[(result.service, result.scorecard)] = clock_verdicts(result)
    for pair in evaluation.inapplicable:
        verdicts[pair] = clock_verdicts(None)
    for pair in evaluation.filter_errors:
        verdicts[pair] = None
    for service in batch:
        for name in evaluation.unsettled & clock:
            verdicts[(service.name, name)] = None
    return verdicts


def _batches(services: Sequence[Service]) -> Iterator[Sequence[Service]]:
    for start in range(0, len(services), BATCH):
        yield services[start:start + BATCH]


def grade(grader: Grader, graded: Mapping[str, frozenset[str]]) -> tuple[ResultSpool, list[str]]:
    """Evaluate every graded pair, a batch of services at a time, into a spool."""
    spool = ResultSpool(grader.now)
    notes: list[str] = []
    todo = [s for s in grader.services if s.name in graded]
    for batch in _batches(todo):
        facts, found = grader.facts([s.name for s in batch])
        notes += found
        spool.add(grader.evaluate(batch, facts, {s.name: graded[s.name] for s in batch}))
    return spool, notes


class ResultSpool:
    """Evaluated batches until the run is stored: in memory while small, then on disk."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.batches: list[Evaluation] = []
        self.file: IO[bytes] | None = None
        self.spilled = 0
        self.results = 0
        self.rule_results = 0
        self.filter_errors: dict[Pair, str] = {}
        self.counts: dict[str, int] = {}

    def add(self, evaluation: Evaluation) -> None:
        self.results += len(evaluation.results)
        self.rule_results += evaluation.rule_evaluations
        self.filter_errors.update(evaluation.filter_errors)
        for result in evaluation.results:
            for status, count in result.counts().items():
                self.counts[status] = self.counts.get(status, 0) + count
        self.batches.append(evaluation)
        if self.file is not None or self.results > KEEP_IN_MEMORY:
            if self.file is None:
                self.file = tempfile.TemporaryFile(prefix="levelset-run-")  # noqa: SIM115 - closed by close()
            for batch in self.batches:
                pickle.dump(_pack(batch), self.file, protocol=pickle.HIGHEST_PROTOCOL)
                self.spilled += 1
            self.batches = []

    def __iter__(self) -> Iterator[Evaluation]:
        if self.file is not None:
            self.file.seek(0)
            for _ in range(self.spilled):
                yield _unpack(pickle.load(self.file))  # our own temporary file
        yield from self.batches

    def in_memory(self) -> Evaluation | None:
        """Every result as one evaluation, if the spool never left memory."""
        if self.file is not None:
            return None
        return Evaluation.combined(self.now, self.batches)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


_STATUSES = {status.value: status for status in RuleStatus}


def _pack(evaluation: Evaluation) -> tuple[Any, ...]:
    """An evaluation as built-in types only, which pickle writes and reads several times
    faster than named tuples and enums (a first run spools a million rule results)."""
    results = [
        (r.service, r.scorecard, r.level, r.score, r.next_level,
         [(x.rule, x.level, x.status.value, x.message, x.weight,
           dict(x.evidence) if x.evidence else None) for x in r.rules])
        for r in evaluation.results
    ]
    return (evaluation.now, results, evaluation.not_applicable, evaluation.filter_errors,
            evaluation.inapplicable, evaluation.unsettled)


def _unpack(packed: tuple[Any, ...]) -> Evaluation:
    now, results, not_applicable, filter_errors, inapplicable, unsettled = packed
    empty: Mapping[str, Any] = MappingProxyType({})
    return Evaluation(
        now=now,
        results=[ScorecardResult(service, card, level, score, tuple(
            RuleResult(rule, rule_level, _STATUSES[status], message, weight,
                       MappingProxyType(evidence) if evidence else empty)
            for rule, rule_level, status, message, weight, evidence in rules), next_level)
            for service, card, level, score, next_level, rules in results],
        not_applicable=not_applicable, filter_errors=filter_errors,
        inapplicable=inapplicable, unsettled=unsettled)
