"""Evaluation in a child process: a crash or a runaway costs the rules that caused it only."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.service import Service
from engine.evaluation import Evaluation, RuleStatus, ServiceFacts
from engine.isolation import EvaluationTask, Evaluator, evaluate_isolated, grade
from engine.vocabulary import vocabulary

NOW = datetime(2026, 11, 27, tzinfo=UTC)
SCHEMAS = vocabulary()
SERVICES = [Service(name=name, owner="team-a", lifecycle="production") for name in ("a", "b")]
FACTS = {"a": ServiceFacts({"custom": {"crash": False, "items": [1, 2, 3]}}),
         "b": ServiceFacts({"custom": {"crash": True, "items": list(range(3000))}})}

STEADY = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: steady}
spec:
  levels: [Bronze]
  rules:
    - {name: owned, level: Bronze, expression: 'service.owner != ""'}
"""
FRAGILE = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: fragile}
spec:
  levels: [Bronze, Silver]
  rules:
    - {name: owned, level: Bronze, expression: 'service.owner != ""'}
    - {name: crash, level: Silver, expression: 'custom.crash == false'}
    - {name: pairs, level: Silver,
       expression: 'custom.items.all(x, custom.items.all(y, x + y >= 0))'}
"""


def grade_or_crash(task: EvaluationTask) -> Evaluation:
    """Grades, unless the rule named "crash" is run: then the process dies as a segfault
    in native code would (runs in the evaluation process, so it is importable there)."""
    if "crash" not in task.disabled.get("fragile", {}) and any(
        "name: crash" in text for _, text in task.scorecards
    ):
        os.kill(os.getpid(), signal.SIGSEGV)
    return grade(task)


@pytest.fixture
def evaluator() -> Iterator[Evaluator]:
    evaluator = Evaluator()
    yield evaluator
    evaluator.close()


def task(*cards: str) -> EvaluationTask:
    return EvaluationTask(SERVICES, FACTS, [(f"{i}.yaml", text) for i, text in enumerate(cards)],
                          SCHEMAS, NOW)


def by_rule(evaluation: Evaluation, service: str, card: str) -> dict[str, tuple[RuleStatus, str]]:
    [result] = [r for r in evaluation.results if (r.service, r.scorecard) == (service, card)]
    return {r.rule: (r.status, r.message) for r in result.rules}


def test_isolated_grades_equal_in_process_grades(evaluator: Evaluator) -> None:
    inputs = task(STEADY)
    isolated = evaluate_isolated(inputs, budget=60, evaluator=evaluator)
    assert isolated.results == grade(inputs).results


def test_a_crashing_rule_is_an_error_and_the_rest_is_graded(evaluator: Evaluator) -> None:
    fragile = FRAGILE.replace(
        "\n    - {name: pairs, level: Silver,\n"
        "       expression: 'custom.items.all(x, custom.items.all(y, x + y >= 0))'}", "")
    evaluation = evaluate_isolated(task(STEADY, fragile), budget=60, evaluator=evaluator,
                                   function=grade_or_crash)
    for service in ("a", "b"):
        rules = by_rule(evaluation, service, "fragile")
        assert rules["crash"] == (RuleStatus.ERROR, "evaluation crashed (SIGSEGV)")
        assert rules["owned"][0] == RuleStatus.PASS
        assert by_rule(evaluation, service, "steady")["owned"][0] == RuleStatus.PASS
    levels = {(r.service, r.scorecard): r.level for r in evaluation.results}
    assert levels == {("a", "steady"): "Bronze", ("a", "fragile"): "Bronze",
                      ("b", "steady"): "Bronze", ("b", "fragile"): "Bronze"}
    assert [r.service for r in evaluation.results] == ["a", "a", "b", "b"]  # the usual order


def test_a_runaway_rule_is_stopped_by_the_budget_and_blamed_alone(
    evaluator: Evaluator, tmp_path: Path
) -> None:
    without_crash = FRAGILE.replace(
        "\n    - {name: crash, level: Silver, expression: 'custom.crash == false'}", "")
    evaluation = evaluate_isolated(task(without_crash), budget=1.0, evaluator=evaluator)
    rules = by_rule(evaluation, "b", "fragile")
    assert rules["pairs"] == (RuleStatus.ERROR, "evaluation exceeded its budget of 1 s")
    assert rules["owned"][0] == RuleStatus.PASS
    assert by_rule(evaluation, "a", "fragile")["pairs"][0] == RuleStatus.ERROR


def test_the_evaluation_process_is_restarted_after_a_crash(evaluator: Evaluator) -> None:
    evaluate_isolated(task(FRAGILE.replace("custom.items.all(y", "[1].all(y")), budget=60,
                      evaluator=evaluator, function=grade_or_crash)
    again = evaluate_isolated(task(STEADY), budget=60, evaluator=evaluator)
    assert {r.level for r in again.results} == {"Bronze"}


@pytest.mark.parametrize("case", ["exemptions", "filter", "ladder", "unknown-and-error"])
def test_golden_cases_grade_the_same_in_the_evaluation_process(
    case: str, evaluator: Evaluator
) -> None:
    from engine.catalog import load_catalog
    from engine.facts import load_facts
    from engine.loading import load_scorecards
    from tests.engine.test_golden import GOLDEN

    folder = GOLDEN / case
    cards = load_scorecards(folder / "scorecard.yaml", SCHEMAS).require_valid()
    inputs = EvaluationTask(
        list(load_catalog(folder / "catalog.yaml")), load_facts(folder / "facts.json", SCHEMAS),
        [(card.path, card.source_text) for card in cards.scorecards.values()], SCHEMAS, NOW)
    isolated = evaluate_isolated(inputs, budget=60, evaluator=evaluator)
    assert isolated.results == grade(inputs).results
    assert isolated.filter_errors == grade(inputs).filter_errors
