"""Evaluation: facts + scorecard + clock -> results. A pure function: no I/O, no globals.

The contract:

- each rule gets one status: ``pass``, ``fail``, ``exempt`` (a valid exemption, counts as
  passed), ``unknown`` (a fact it needs is absent: no data, not a failure) or ``error``;
- a service reaches level L when every rule of L and of every lower level is pass or exempt;
  its level is the highest such L, or none; unknown and error block a level;
- score = weight of pass/exempt rules / weight of all rules, in percent;
- a scorecard applies to a service when its filter is true;
- an exemption is valid up to and including its ``expires`` day.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NamedTuple

from core.schema import FactSchema, UnreadableFacts, select
from core.service import Service
from engine.scorecard import Level, Rule, Scorecard
from rules.conversion import cel_context
from rules.expression import FALSE, PROCESS_EXITS, Expression, Outcome, describe_error
from rules.functions import bind


class RuleStatus(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    EXEMPT = "exempt"
    UNKNOWN = "unknown"
    ERROR = "error"

    @property
    def satisfied(self) -> bool:
        return self in SATISFIED


SATISFIED = frozenset({RuleStatus.PASS, RuleStatus.EXEMPT})


class RuleResult(NamedTuple):
    """One rule's verdict. A tuple: millions are made per evaluation, so creation is cheap."""

    rule: str
    level: str | None
    status: RuleStatus
    message: str
    weight: float = 1.0
    evidence: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class ScorecardResult:
    service: str
    scorecard: str
    level: str | None
    score: float
    rules: tuple[RuleResult, ...]
    next_level: str | None  # the first level above the current one, None at the top

    def counts(self) -> dict[str, int]:
        counts = {status.value: 0 for status in RuleStatus}
        for result in self.rules:
            counts[result.status.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "scorecard": self.scorecard,
            "level": self.level,
            "score": self.score,
            "next_level": self.next_level,
            "rules": [
                {
                    "name": r.rule,
                    "level": r.level,
                    "status": r.status.value,
                    "message": r.message,
                    "weight": r.weight,
                    "evidence": dict(r.evidence),
                }
                for r in self.rules
            ],
        }


@dataclass
class ServiceFacts:
    """Facts of one service by namespace, and the namespaces whose collection failed."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


@dataclass
class Evaluation:
    now: datetime
    results: list[ScorecardResult]
    not_applicable: int = 0
    filter_errors: dict[tuple[str, str], str] = field(default_factory=dict)
    # (service, scorecard) pairs graded and found not applicable (the filter is false)
    inapplicable: list[tuple[str, str]] = field(default_factory=list)
    # scorecards some rules of which were not run (they crashed or overran the budget): their
    # results are not kept as the verdict on unchanged inputs, and are evaluated again
    unsettled: set[str] = field(default_factory=set)

    @property
    def rule_evaluations(self) -> int:
        return sum(len(r.rules) for r in self.results)

    @classmethod
    def combined(cls, now: datetime, parts: Iterable[Evaluation]) -> Evaluation:
        """One evaluation of parts (batches of services, or scorecards), in their order."""
        merged = cls(now=now, results=[])
        for part in parts:
            merged.results.extend(part.results)
            merged.not_applicable += part.not_applicable
            merged.filter_errors.update(part.filter_errors)
            merged.inapplicable.extend(part.inapplicable)
            merged.unsettled.update(part.unsettled)
        return merged


def achieved_level(levels: tuple[Level, ...], results: Iterable[RuleResult]) -> Level | None:
    """The highest level whose rules, and all lower levels' rules, are all satisfied."""
    blocked = {r.level for r in results if r.status not in SATISFIED and r.level is not None}
    reached = None
    for level in levels:
        if level.name in blocked:
            break
        reached = level
    return reached


def score(results: Iterable[RuleResult]) -> float:
    """Weight of satisfied rules / weight of all, in percent; 100 with no rules.

    Never NaN or infinite: weights are checked when scorecards load (finite, more than 0, at
    most ``MAX_WEIGHT``), and should rules be built otherwise with weights that do not add up
    to a positive finite total (all zero, NaN, an overflow), every rule counts once instead.
    """
    if type(results) is not list and type(results) is not tuple:
        results = tuple(results)  # read twice when the weights do not add up
    total = passed = 0.0
    for result in results:
        total += result.weight
        if result.status in SATISFIED:
            passed += result.weight
    if 0.0 < total < math.inf and 0.0 <= passed <= total:
        return round(100.0 * passed / total, 2)
    if not results:
        return 100.0
    satisfied = sum(1 for result in results if result.status in SATISFIED)
    return round(100.0 * satisfied / len(results), 2)


_NO_EVIDENCE: Mapping[str, Any] = {}


def _format(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"  # as CEL writes them
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def _describe(evidence: Mapping[str, Any]) -> str:
    return ", ".join([f"{k} = {_format(v)}" for k, v in evidence.items()])


class FactContext:
    """One service's facts, prepared once and shared by every rule of every scorecard.

    A namespace whose facts cannot be converted for CEL (nested too deeply, a string that is
    not valid Unicode, a value of a type CEL has no counterpart for) is left out, with the
    reason in ``unreadable``: the rules that read it are ``unknown`` and say why, and every
    other rule is graded.
    """

    __slots__ = ("context", "failures", "unreadable", "values")

    def __init__(
        self,
        service: Service,
        facts: ServiceFacts | None,
        schemas: Mapping[str, FactSchema],
        functions: dict[str, Any],
        now: datetime,
        reads: Mapping[str, ReadTree | None] | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        unreadable: dict[str, str] = {}
        try:
            if reads is not None and "service" not in reads:
                values["service"] = {}  # no rule reads it: nothing to convert
            else:
                service_facts = service.facts()
                service_reads = reads.get("service") if reads is not None else None
                values["service"] = (select(service_facts, service_reads)
                                     if service_reads is not None else service_facts)
        except PROCESS_EXITS:
            raise
        except BaseException as error:
            unreadable["service"] = describe_error(error)
        for namespace, raw in (facts.values if facts else {}).items():
            schema = schemas.get(namespace)
            if namespace == "service" or schema is None or raw is None:
                continue
            if reads is not None and namespace not in reads:
                continue
            try:
                values[namespace] = schema.prepare(raw, None if reads is None else reads[namespace])
            except UnreadableFacts as error:
                unreadable[namespace] = str(error)
            except PROCESS_EXITS:
                raise
            except BaseException as error:
                unreadable[namespace] = describe_error(error)
        for namespace, schema in schemas.items():  # declared defaults of facts never pushed
            if (namespace not in values and namespace not in unreadable and schema.defaults
                    and (reads is None or namespace in reads)):
                values[namespace] = schema.prepare({}, None if reads is None else reads[namespace])
        context, refused = cel_context(values, {"now": now}, functions)
        unreadable.update(refused)
        self.values = values
        self.failures = facts.failures if facts else {}
        self.unreadable = unreadable
        self.context = context

    def why_absent(self, missing: tuple[str, ...]) -> str:
        namespaces = dict.fromkeys(path.split(".")[0] for path in missing)
        reasons = []
        for ns in namespaces:
            if ns in self.failures:
                reasons.append(f"{ns} collection failed: {self.failures[ns]}")
            elif ns in self.unreadable:
                reasons.append(f"facts of {ns} could not be read: {self.unreadable[ns]}")
            elif ns not in self.values:
                reasons.append(f"no {ns} facts collected")
        return f" ({'; '.join(reasons)})" if reasons else ""


ReadTree = dict[str, "ReadTree | None"]


def facts_read(scorecards: Iterable[Scorecard]) -> dict[str, ReadTree | None]:
    """The facts that rules and filters read, per namespace, as a tree of selected keys.

    A leaf (``None``) keeps the whole value below it: ``aws.rds.instances.all(...)`` keeps every
    instance, ``github.alerts.dependabot.critical`` keeps one number. Converting facts into CEL
    values is most of the cost of evaluating a service, so nothing no rule reads is converted.
    """
    tree: ReadTree = {}
    for card in scorecards:
        expressions = [rule.expression for rule in card.rules]
        if card.filter is not None:
            expressions.append(card.filter)
        for expression in expressions:
            for ref in expression.references:
                node: ReadTree | None = tree
                for index, part in enumerate(ref.path):
                    assert node is not None
                    last = index == len(ref.path) - 1
                    if part in node and node[part] is None:
                        break  # already kept whole
                    if last:
                        node[part] = None
                    else:
                        node = node.setdefault(part, {})
    return tree


def evaluate_rule(rule: Rule, facts: FactContext) -> RuleResult:
    """One rule's verdict. Whatever the rule raises, native panics included, is its ``error``."""
    try:
        value = rule.expression.program.execute(facts.context)
    except BaseException as error:
        if isinstance(error, PROCESS_EXITS):
            raise
        return _verdict(rule, facts, None, error)
    if value is True:
        # Passing rules carry no evidence: it is the failures people read, and passes are
        # most results, so this keeps evaluation fast and stored history small.
        return RuleResult(rule.name, rule.level, RuleStatus.PASS, "passed", rule.weight,
                          _NO_EVIDENCE)
    return _verdict(rule, facts, value, None)


def _verdict(rule: Rule, facts: FactContext, value: Any, error: BaseException | None) -> RuleResult:
    """The result of a rule that did not pass: what it returned, or the ``error`` it raised."""
    expression = rule.expression
    try:
        outcome = (expression.diagnose(error, facts.values) if error is not None
                   else expression.outcome_of(value))
        if outcome is FALSE:
            evidence = expression.evidence(facts.values)
            got = f"; got {_describe(evidence)}" if evidence else ""
            return RuleResult(rule.name, rule.level, RuleStatus.FAIL,
                              f"expected {expression.source.strip()}{got}", rule.weight, evidence)
        if outcome.outcome is Outcome.ABSENT:
            return RuleResult(rule.name, rule.level, RuleStatus.UNKNOWN,
                              outcome.detail + facts.why_absent(outcome.missing), rule.weight,
                              expression.evidence(facts.values))
        return RuleResult(rule.name, rule.level, RuleStatus.ERROR, outcome.detail, rule.weight,
                          expression.evidence(facts.values))
    except BaseException as failure:  # describing the result failed: still this rule's error
        if isinstance(failure, PROCESS_EXITS):
            raise
        return RuleResult(rule.name, rule.level, RuleStatus.ERROR, describe_error(failure),
                          rule.weight, _NO_EVIDENCE)


def applies(scorecard: Scorecard, facts: FactContext) -> tuple[bool, str | None]:
    """Whether the scorecard grades this service; an unusable filter is reported, not graded."""
    if scorecard.filter is None:
        return True, None
    outcome = scorecard.filter.run(facts.context, facts.values)
    if outcome.outcome is Outcome.ERROR:
        return False, outcome.detail
    # A filter on an absent fact ("service.tier == '1'" with no tier) is simply not true.
    return outcome.outcome is Outcome.TRUE, None


def evaluate_scorecard(
    scorecard: Scorecard, service: Service, facts: FactContext, now: datetime
) -> ScorecardResult:
    today = now.date()
    exemptions = scorecard.exemptions_for(service.name)
    results = []
    for rule in scorecard.rules:
        if not exemptions:
            results.append(evaluate_rule(rule, facts))
            continue
        exemption = next((e for e in exemptions if e.covers(service.name, rule.name)), None)
        if exemption is not None and exemption.active_on(today):
            results.append(RuleResult(
                rule.name, rule.level, RuleStatus.EXEMPT,
                f"exempt until {exemption.expires.isoformat()}: {exemption.reason}", rule.weight,
            ))
            continue
        result = evaluate_rule(rule, facts)
        if exemption is not None:
            result = result._replace(
                message=f"{result.message} (exemption expired {exemption.expires.isoformat()})")
        results.append(result)
    level = achieved_level(scorecard.levels, results)
    rank = level.rank if level else 0
    next_level = scorecard.levels[rank].name if rank < len(scorecard.levels) else None
    return ScorecardResult(service.name, scorecard.name, level.name if level else None,
                           score(results), tuple(results), next_level)


def evaluate(
    services: Iterable[Service],
    facts: Mapping[str, ServiceFacts],
    scorecards: Iterable[Scorecard],
    schemas: Mapping[str, FactSchema],
    now: datetime | None = None,
    only: Mapping[str, Collection[str]] | None = None,
) -> Evaluation:
    """Grade every service on every scorecard that applies to it.

    ``only``: the scorecards to grade each service on (by name); services it does not name
    are not graded. None: every service on every scorecard.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    functions = bind(now)
    cards = list(scorecards)
    reads = facts_read(cards)
    # What a set of scorecards reads, once per set (an incremental run grades few sets).
    partial: dict[frozenset[str], tuple[list[Scorecard], dict[str, ReadTree | None]]] = {}
    evaluation = Evaluation(now=now, results=[])
    for service in services:
        wanted = None if only is None else frozenset(only.get(service.name, ()))
        if wanted is not None and not wanted:
            continue
        if wanted is None:
            graded, graded_reads = cards, reads
        else:
            if wanted not in partial:
                subset = [c for c in cards if c.name in wanted]
                partial[wanted] = subset, facts_read(subset)
            graded, graded_reads = partial[wanted]
        context = FactContext(service, facts.get(service.name), schemas, functions, now,
                              graded_reads)
        for scorecard in graded:
            applicable, problem = applies(scorecard, context)
            if problem is not None:
                evaluation.filter_errors[(service.name, scorecard.name)] = problem
            if not applicable:
                evaluation.not_applicable += 1
                if problem is None:
                    evaluation.inapplicable.append((service.name, scorecard.name))
                continue
            evaluation.results.append(evaluate_scorecard(scorecard, service, context, now))
    return evaluation


__all__ = [
    "Evaluation",
    "Expression",
    "RuleResult",
    "RuleStatus",
    "ScorecardResult",
    "ServiceFacts",
    "achieved_level",
    "evaluate",
    "score",
]
