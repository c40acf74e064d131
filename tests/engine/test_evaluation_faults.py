"""No rule, fact or weight stops grading: each failure stays with the rule or namespace it is in."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.schema import MAX_FACT_DEPTH
from core.service import Service
from engine.evaluation import (
    FactContext,
    RuleResult,
    RuleStatus,
    ServiceFacts,
    evaluate,
    evaluate_rule,
    score,
)
from engine.loading import parse_scorecard
from engine.scorecard import Rule
from engine.vocabulary import vocabulary
from rules.expression import Expression
from rules.functions import bind

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, tzinfo=UTC)
SCHEMAS = vocabulary()
WITH_LINKS = Service("payments", "team-a", "production",
                     links=({"url": "https://runbooks.example/payments", "type": "runbook"},))
WITHOUT_LINKS = Service("ledger", "team-a", "production")

CARD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata:
  name: faults
spec:
  levels: [Bronze]
  rules:
    - name: owned
      level: Bronze
      expression: service.owner != ""
    - name: runbook-https
      level: Bronze
      expression: service.links[0].url.startsWith("https://")
    - name: readme
      expression: github.has_readme
    - name: on-call
      expression: custom.on_call == "alice"
"""


def graded(facts: dict[str, ServiceFacts], services=(WITH_LINKS, WITHOUT_LINKS)) -> dict:
    card, problems = parse_scorecard(CARD, "faults.yaml", SCHEMAS)
    assert problems == [] and card is not None
    evaluation = evaluate(list(services), facts, [card], SCHEMAS, NOW)
    return {result.service: {r.rule: r for r in result.rules} for result in evaluation.results}


def good_facts(**custom: object) -> ServiceFacts:
    return ServiceFacts(values={"github": {"has_readme": True}, "custom": {"on_call": "alice", **custom}})


def test_an_index_past_the_end_of_a_list_is_that_rules_error_and_the_rest_is_graded():
    results = graded({"payments": good_facts(), "ledger": good_facts()})
    assert results["payments"]["runbook-https"].status is RuleStatus.PASS
    failed = results["ledger"]["runbook-https"]
    assert failed.status is RuleStatus.ERROR
    assert failed.message.startswith("IndexError: ")
    for service in ("payments", "ledger"):
        assert {name: r.status for name, r in results[service].items() if name != "runbook-https"} == {
            "owned": RuleStatus.PASS, "readme": RuleStatus.PASS, "on-call": RuleStatus.PASS}


@pytest.mark.parametrize(("bad", "reason"), [
    ("\ud800", "custom.on_call is a string that is not valid Unicode (an unpaired surrogate)"),
    ({"a", "b"}, "custom.on_call is a set, which CEL has no type for"),
    ({"\udfff": 1}, "custom.on_call has a key that is not valid Unicode (an unpaired surrogate)"),
    ({1.5: 1}, "custom.on_call has a key of type float (CEL keys are strings, ints or bools)"),
])
def test_facts_the_runtime_cannot_take_make_that_namespace_unknown_with_the_place(bad, reason):
    results = graded({"payments": good_facts(on_call=bad), "ledger": good_facts()})
    unknown = results["payments"]["on-call"]
    assert unknown.status is RuleStatus.UNKNOWN
    assert unknown.message == f"no data for custom.on_call (facts of custom could not be read: {reason})"
    assert results["payments"]["readme"].status is RuleStatus.PASS
    assert results["payments"]["owned"].status is RuleStatus.PASS
    assert results["ledger"]["on-call"].status is RuleStatus.PASS


def test_a_value_nested_past_the_depth_limit_makes_that_namespace_unknown():
    deep: object = "alice"
    for _ in range(1_000):
        deep = [deep]
    results = graded({"payments": good_facts(on_call=deep), "ledger": good_facts()})
    unknown = results["payments"]["on-call"]
    assert unknown.status is RuleStatus.UNKNOWN
    assert unknown.message == ("no data for custom.on_call (facts of custom could not be read: "
                               f"a value is nested more than {MAX_FACT_DEPTH} levels deep)")
    assert results["payments"]["readme"].status is RuleStatus.PASS
    assert results["ledger"]["on-call"].status is RuleStatus.PASS


def test_a_value_at_the_depth_limit_is_read():
    value: object = "alice"
    for _ in range(MAX_FACT_DEPTH - 2):  # below the namespace and its on_call key
        value = {"x": value}
    context = FactContext(WITH_LINKS, ServiceFacts(values={"custom": {"on_call": value}}),
                          SCHEMAS, bind(NOW), NOW)
    assert context.unreadable == {}
    assert "custom" in context.values


def test_bad_facts_no_rule_reads_are_not_converted_and_harm_nothing():
    results = graded({"payments": good_facts(unread="\ud800"), "ledger": good_facts()})
    assert {r.status for r in results["payments"].values()} == {RuleStatus.PASS}


def test_bad_facts_are_unknown_without_a_read_tree_too():
    facts = ServiceFacts(values={"custom": {"on_call": "\ud800"}, "github": {"has_readme": True}})
    context = FactContext(WITH_LINKS, facts, SCHEMAS, bind(NOW), NOW)
    assert set(context.unreadable) == {"custom"}
    rule = Rule("readme", Expression.compile("github.has_readme", SCHEMAS.keys()))
    assert evaluate_rule(rule, context).status is RuleStatus.PASS


class NativePanic(BaseException):
    """Stands for pyo3's PanicException: a BaseException, not an Exception."""


class Raising:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    def execute(self, context: object) -> object:
        raise self.error


def rule_raising(error: BaseException) -> Rule:
    return Rule("raises", Expression("service.owner == 1", Raising(error), (), frozenset()))


@pytest.mark.parametrize("error", [
    NativePanic("called `Option::unwrap()` on a `None` value"),
    RecursionError("maximum recursion depth exceeded"),
    MemoryError(),
    AttributeError("'NoneType' object has no attribute 'x'"),
])
def test_any_exception_of_a_rule_is_that_rules_error(error: BaseException):
    context = FactContext(WITH_LINKS, None, SCHEMAS, bind(NOW), NOW)
    result = evaluate_rule(rule_raising(error), context)
    assert result.status is RuleStatus.ERROR
    assert result.message.startswith(type(error).__name__)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), SystemExit(3)])
def test_an_interrupt_or_exit_is_not_a_rules_error(error: BaseException):
    context = FactContext(WITH_LINKS, None, SCHEMAS, bind(NOW), NOW)
    with pytest.raises(type(error)):
        evaluate_rule(rule_raising(error), context)


def test_a_filter_that_raises_is_reported_and_the_service_is_not_graded_by_it():
    card, problems = parse_scorecard(CARD.replace(
        "  levels: [Bronze]", '  filter: service.links[0].type == "runbook"\n  levels: [Bronze]'),
        "faults.yaml", SCHEMAS)
    assert problems == [] and card is not None
    evaluation = evaluate([WITH_LINKS, WITHOUT_LINKS], {}, [card], SCHEMAS, NOW)
    assert [r.service for r in evaluation.results] == ["payments"]
    assert evaluation.filter_errors[("ledger", "faults")].startswith("IndexError: ")


def test_a_huge_non_bool_result_gives_a_short_message():
    context = FactContext(WITH_LINKS, None, SCHEMAS, bind(NOW), NOW)
    rule = Rule("list", Expression.compile("[" + ", ".join(['"' + "x" * 50 + '"'] * 150) + "]",
                                           SCHEMAS.keys()))
    result = evaluate_rule(rule, context)
    assert result.status is RuleStatus.ERROR
    assert result.message.startswith("expression returned list [")
    assert len(result.message) < 300


def results_weighing(*weights: float, passed: int = 1) -> list[RuleResult]:
    return [RuleResult(f"r{i}", None, RuleStatus.PASS if i < passed else RuleStatus.FAIL, "", w)
            for i, w in enumerate(weights)]


@pytest.mark.parametrize(("weights", "expected"), [
    ((1.0, 3.0), 25.0),
    ((1000.0,) * 3, 33.33),
    ((0.0, 0.0), 50.0),  # no weight at all: every rule counts once
    ((math.inf, 1.0), 50.0),
    ((math.nan, 1.0), 50.0),
    ((1e308, 1e308), 50.0),  # the total overflows
    ((-1.0, 1.0), 50.0),
])
def test_a_score_is_never_nan_or_infinite(weights, expected):
    assert score(results_weighing(*weights)) == expected
    assert score([]) == 100.0


def test_one_service_with_a_crashing_rule_and_unreadable_facts_leaves_the_cli_run_complete(tmp_path: Path):
    (tmp_path / "scorecards").mkdir()
    (tmp_path / "scorecards" / "faults.yaml").write_text(CARD)
    (tmp_path / "catalog.yaml").write_text(textwrap.dedent("""\
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: payments
          links: [{url: "https://runbooks.example/payments", type: runbook}]
        spec: {type: service, lifecycle: production, owner: team-a}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata: {name: ledger}
        spec: {type: service, lifecycle: production, owner: team-a}
        """))
    (tmp_path / "facts.json").write_text(
        '{"payments": {"github": {"has_readme": true}, "custom": {"on_call": "alice"}},'
        ' "ledger": {"github": {"has_readme": true}, "custom": {"on_call": "\\ud800"}}}')
    (tmp_path / "levelset.yaml").write_text(
        "environment: development\ncatalog: catalog.yaml\nscorecards: scorecards/\nfacts: facts.json\n")
    done = subprocess.run(
        [sys.executable, "-m", "engine", "evaluate", "--config", "levelset.yaml", "--format", "json",
         "--now", "2026-11-27"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    statuses = {(r["service"], rule["name"]): rule["status"]
                for r in json.loads(done.stdout)["results"] for rule in r["rules"]}
    assert statuses == {
        ("payments", "owned"): "pass", ("payments", "runbook-https"): "pass",
        ("payments", "readme"): "pass", ("payments", "on-call"): "pass",
        ("ledger", "owned"): "pass", ("ledger", "runbook-https"): "error",
        ("ledger", "readme"): "pass", ("ledger", "on-call"): "unknown",
    }
