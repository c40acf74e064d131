"""The CI gate: is a service at or above a level, and if not, exactly which rules to fix.

A verdict is built from a graded result (levels, current level, each rule's status), so it is
the same whether the result was just computed from files or read from the server.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlmodel import Session

from core.errors import InputError, Problem
from core.schema import FactSchema
from core.service import Service
from engine.evaluation import (
    SATISFIED,
    FactContext,
    RuleStatus,
    ServiceFacts,
    applies,
    evaluate_scorecard,
)
from engine.scorecard import Scorecard
from engine.storage.public import ServiceScorecard, StoredResult
from engine.storage.standings import stored_result
from rules.functions import bind


@dataclass(frozen=True)
class GatedRule:
    name: str
    title: str
    level: str | None
    status: RuleStatus
    message: str
    remediation: str | None


class UnknownPolicy(StrEnum):
    """What a required rule without data does to the verdict (``--unknown``)."""

    BLOCK = "block"  # it stands in the way, like a failing rule
    WARN = "warn"  # it is printed, and does not
    PASS = "pass"  # it is counted as passing


@dataclass(frozen=True)
class GateVerdict:
    """``unknown`` says what a rule without data (status unknown) does to the verdict:
    ``block`` (it stands in the way, like a failing rule), ``warn`` (it is printed, and does
    not), ``pass`` (it is counted as passing)."""

    service: str
    scorecard: str
    required: str
    current: str | None
    score: float
    levels: tuple[str, ...]
    rules: tuple[GatedRule, ...]
    unknown: UnknownPolicy = UnknownPolicy.BLOCK

    def _required_rules(self) -> list[GatedRule]:
        """Rules of the required level and below that are not pass or exempt."""
        required = self._rank(self.required)
        return [r for r in self.rules
                if r.level is not None and self._rank(r.level) <= required
                and r.status not in SATISFIED]

    @property
    def passed(self) -> bool:
        return self._rank(self.current) >= self._rank(self.required) or not self.blocking

    def _rank(self, level: str | None) -> int:
        return self.levels.index(level) + 1 if level in self.levels else 0

    @property
    def blocking(self) -> list[GatedRule]:
        """Rules of the required level and below that stand in the way: not pass or exempt,
        and (unless ``unknown`` is block) not merely without data."""
        return [r for r in self._required_rules()
                if r.status != RuleStatus.UNKNOWN or self.unknown == UnknownPolicy.BLOCK]

    @property
    def missing(self) -> list[GatedRule]:
        """Required rules without data (status unknown), whatever the policy."""
        return [r for r in self._required_rules() if r.status == RuleStatus.UNKNOWN]

    @property
    def no_data(self) -> bool:
        """Below the bar only for want of data: every blocking rule is unknown."""
        blocking = self.blocking
        return not self.passed and bool(blocking) and all(
            r.status == RuleStatus.UNKNOWN for r in blocking)

    def lines(self) -> list[tuple[str, str | None]]:
        current = self.current or "no level"
        head = f"{self.service} on {self.scorecard}: {current} (score {self.score:.0f}%)"
        missing = self.missing
        if self.passed:
            out: list[tuple[str, str | None]] = [
                (f"PASS {head}; required {self.required}.", "green")]
            if missing:
                counted = "warned about" if self.unknown == UnknownPolicy.WARN else "counted as passing"
                out.append((f"{len(missing)} rule(s) without data {counted} "
                            f"(--unknown {self.unknown}):", "yellow"))
                if self.unknown == UnknownPolicy.WARN:
                    for rule in missing:
                        out.append((f"  - [{rule.level}] {rule.name} (unknown): {rule.title}",
                                    "yellow"))
                        out.append((f"      missing data: {rule.message}", None))
            return out
        blocking = self.blocking
        failing = [r for r in blocking if r.status != RuleStatus.UNKNOWN]
        unknown = len(blocking) - len(failing)
        if not failing:
            todo = (f"Missing data for {unknown} rule(s) needed for {self.required} "
                    "(collect it, or --unknown warn to let it through):")
        elif unknown:
            todo = (f"Fix {len(failing)} rule(s) and collect the missing data of {unknown} "
                    f"to reach {self.required}:")
        else:
            todo = f"Fix {len(failing)} rule(s) to reach {self.required}:"
        out = [(f"FAIL {head}; required {self.required}.", "bold red"), (todo, None)]
        for rule in blocking:
            if rule.status == RuleStatus.UNKNOWN:
                out.append((f"  - [{rule.level}] {rule.name} (unknown): {rule.title}", "yellow"))
                out.append((f"      missing data: {rule.message}", None))
                continue
            out.append((f"  - [{rule.level}] {rule.name} ({rule.status}): {rule.title}", "red"))
            out.append((f"      {rule.message}", None))
            if rule.remediation:
                out.append((f"      fix: {rule.remediation.strip()}", "cyan"))
        return out

    def to_dict(self) -> dict[str, object]:
        """The verdict for ``--format json``."""
        blocking = {r.name for r in self.blocking}
        missing = {r.name for r in self.missing}
        return {
            "service": self.service, "scorecard": self.scorecard, "required": self.required,
            "level": self.current, "score": self.score, "levels": list(self.levels),
            "passed": self.passed, "unknown": self.unknown,
            "blocking": [r.name for r in self.blocking],
            "missing_data": [r.name for r in self.missing],
            "rules": [{"name": r.name, "title": r.title, "level": r.level,
                       "status": r.status.value, "message": r.message,
                       "remediation": r.remediation, "blocking": r.name in blocking,
                       "missing_data": r.name in missing} for r in self.rules],
        }

    @classmethod
    def build(
        cls, *, service: str, scorecard: str, required: str, current: str | None, score: float,
        levels: Sequence[str], rules: Sequence[GatedRule],
        unknown: UnknownPolicy = UnknownPolicy.BLOCK,
    ) -> GateVerdict:
        match = next((name for name in levels if name.lower() == required.lower()), None)
        if match is None:
            raise InputError([Problem("--min-level", None, f'scorecard "{scorecard}" has no level '
                                      f'"{required}" (levels: {", ".join(levels)})')])
        return cls(service, scorecard, match, current, score, tuple(levels), tuple(rules), unknown)


def not_applicable(scorecard: str, service: str, problem: str | None) -> str:
    """Why a service has no result on a scorecard, in every mode of the gate (exit 2)."""
    why = f": {problem}" if problem else ""
    return f'scorecard "{scorecard}" does not apply to "{service}" (its filter is not true{why})'


def gate_verdict(
    scorecards: Mapping[str, Scorecard],
    services: Mapping[str, Service],
    facts: Mapping[str, ServiceFacts],
    schemas: Mapping[str, FactSchema],
    now: datetime,
    *,
    service: str,
    scorecard: str,
    min_level: str,
    unknown: UnknownPolicy = UnknownPolicy.BLOCK,
) -> GateVerdict:
    card = scorecards.get(scorecard)
    if card is None:
        raise InputError([Problem("--scorecard", None, f'unknown scorecard "{scorecard}" '
                                  f'(known: {", ".join(sorted(scorecards))})')])
    if card.level(min_level) is None:
        raise InputError([Problem("--min-level", None, f'scorecard "{scorecard}" has no level '
                                  f'"{min_level}" (levels: {", ".join(card.level_names)})')])
    entity = services.get(service)
    if entity is None:
        raise InputError([Problem("--service", None, f'unknown service "{service}"')])
    context = FactContext(entity, facts.get(service), schemas, bind(now), now)
    applicable, problem = applies(card, context)
    if not applicable:
        raise InputError([Problem("--scorecard", None, not_applicable(scorecard, service, problem))])
    result = evaluate_scorecard(card, entity, context, now)
    rules = {r.name: r for r in card.rules}
    return GateVerdict.build(
        service=service, scorecard=scorecard, required=min_level, current=result.level,
        score=result.score, levels=card.level_names,
        rules=[
            GatedRule(r.rule, rules[r.rule].display, r.level, r.status, r.message,
                      rules[r.rule].remediation)
            for r in result.rules
        ],
        unknown=unknown,
    )


def stored_verdict(stored: StoredResult, *, required: str) -> GateVerdict:
    """The same verdict the local gate builds, from a stored result."""
    return GateVerdict.build(
        service=stored.service, scorecard=stored.scorecard, required=required,
        current=stored.level, score=stored.score, levels=stored.levels,
        rules=[GatedRule(r.name, r.title, r.level, RuleStatus(r.status), r.message, r.remediation)
               for r in stored.rules],
    )


def explain(stored: StoredResult) -> ServiceScorecard:
    """A stored result with its next level and the rules that stand in the way of it."""
    next_level = stored.levels[stored.rank] if stored.rank < len(stored.levels) else None
    to_fix = []
    if next_level is not None:
        blocking = {r.name for r in stored_verdict(stored, required=next_level).blocking}
        to_fix = [r for r in stored.rules if r.name in blocking]
    return ServiceScorecard(**dict(stored), next_level=next_level, to_fix_for_next_level=to_fix)


def service_scorecard(session: Session, *, service: str, scorecard: str) -> ServiceScorecard:
    """The stored result of a service on a scorecard, explained (what the API serves)."""
    return explain(stored_result(session, service=service, scorecard=scorecard))


def write_junit(verdicts: GateVerdict | Sequence[GateVerdict], path: Path) -> None:
    """One test suite per verdict, one test case per rule; blocking rules are failures, rules
    above the bar (or without data and let through) are skipped."""
    suites = ET.Element("testsuites", name="levelset gate")
    for verdict in [verdicts] if isinstance(verdicts, GateVerdict) else verdicts:
        suites.append(_junit_suite(verdict))
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def _junit_suite(verdict: GateVerdict) -> ET.Element:
    blocking = {r.name for r in verdict.blocking}
    missing = {r.name for r in verdict.missing} - blocking
    required = verdict._rank(verdict.required)
    suite = ET.Element("testsuite", name=f"levelset.{verdict.scorecard}.{verdict.service}",
                       tests=str(len(verdict.rules)), failures=str(len(blocking)))
    for rule in verdict.rules:
        case = ET.SubElement(suite, "testcase", classname=f"{verdict.scorecard}.{rule.level or 'score'}",
                             name=rule.name)
        if rule.name in blocking:
            failure = ET.SubElement(case, "failure", message=rule.message, type=rule.status.value)
            failure.text = (f"missing data: {rule.message}" if rule.status == RuleStatus.UNKNOWN
                            else rule.remediation or rule.message)
        elif rule.name in missing:
            ET.SubElement(case, "skipped", message=f"unknown: not counted (--unknown "
                          f"{verdict.unknown}): missing data: {rule.message}")
        elif rule.status not in SATISFIED and (
            rule.level is None or verdict._rank(rule.level) > required
        ):
            ET.SubElement(case, "skipped", message=f"{rule.status.value}: not required for "
                          f"{verdict.required}: {rule.message}")
        ET.SubElement(case, "system-out").text = rule.message
    return suite
