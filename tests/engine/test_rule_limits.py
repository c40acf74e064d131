"""Bounded rules: what the CEL runtime could not bear is refused when scorecards load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from engine.loading import parse_scorecard
from rules import limits
from rules.expression import Expression, ExpressionSyntaxError, ExpressionTooComplex
from rules.limits import (
    MAX_CHAIN_TERMS,
    MAX_COMPREHENSION_NESTING,
    MAX_EXPRESSION_CHARS,
    MAX_NESTING,
    measure,
)

ROOT = Path(__file__).resolve().parents[2]
NAMESPACES = {"service", "github", "prometheus", "aws", "custom"}


def long_sum(terms: int) -> str:
    return " + ".join(["1"] * terms) + " > 0"


def scorecard(expression: str, weight: str = "1") -> str:
    return textwrap.dedent(f"""\
        apiVersion: levelset.dev/v1
        kind: Scorecard
        metadata:
          name: bounded
        spec:
          levels: [Bronze]
          rules:
            - name: fine
              level: Bronze
              expression: service.owner != ""
            - name: hostile
              level: Bronze
              weight: {weight}
              expression: '{expression}'
        """)


def refusal(source: str) -> str:
    with pytest.raises(ExpressionTooComplex) as error:
        Expression.compile(source, NAMESPACES)
    return error.value.message


def test_shipped_scorecards_are_far_within_every_limit():
    for path in (ROOT / "scorecards").glob("*.yaml"):
        spec = yaml.safe_load(path.read_text())["spec"]
        for source in [rule["expression"] for rule in spec["rules"]] + [spec.get("filter") or "true"]:
            shape = measure(source)
            assert len(source) < MAX_EXPRESSION_CHARS / 10
            assert shape.chain_terms < MAX_CHAIN_TERMS / 10
            assert shape.nesting <= MAX_NESTING / 4
            assert shape.comprehension_nesting <= MAX_COMPREHENSION_NESTING


def test_a_chain_of_20000_terms_is_refused_with_its_length_and_the_limit():
    message = refusal(long_sum(20_000))
    assert "expression has 20,001 terms in one chain of operations; the limit is 1,000" in message
    assert "expression is 80,001 characters long; the limit is 10,000" in message


@pytest.mark.parametrize("source", [
    "custom.x" + ".a" * 1_000,  # a selection chain
    "custom.x" + "[0]" * 1_000,  # an index chain
    " + ".join(["(1+1)"] * 1_100) + " > 0",  # a bracket is a term of the enclosing chain
    "1 + (" * 30 + " + ".join(["1"] * 980) + ")" * 30 + " > 0",
])
def test_chains_of_selections_indexes_and_nested_sums_count_as_terms(source):
    assert len(source) <= MAX_EXPRESSION_CHARS
    assert "terms in one chain of operations" in refusal(source)


def test_lists_and_logical_alternatives_are_not_one_chain():
    allowed = ", ".join(f'"team-{i}"' for i in range(700))
    Expression.compile(f"service.owner in [{allowed}]", NAMESPACES)
    Expression.compile(" || ".join(['service.owner == "a"'] * 300), NAMESPACES)


def test_brackets_nested_beyond_the_limit_are_refused_and_at_the_limit_compile():
    assert Expression.compile("(" * MAX_NESTING + "true" + ")" * MAX_NESTING, NAMESPACES)
    message = refusal("(" * 40 + "true" + ")" * 40)
    assert message == "expression nests brackets 40 deep; the limit is 32"


def test_brackets_in_strings_and_comments_do_not_count():
    source = '"((((((((((((((((((((((((((((((((((((((((((" != "" // ))))))))]]]]]]]]]]\n && true'
    assert measure(source).nesting == 0
    Expression.compile(source, NAMESPACES)


def test_three_nested_comprehensions_are_refused_two_and_chained_ones_compile():
    three = "service.links.all(a, service.links.all(b, service.links.all(c, a == c)))"
    assert refusal(three) == (
        "expression nests comprehensions (all, exists, map, filter, ...) 3 deep; the limit is 2")
    assert "3 deep" in refusal("service.tags.map(a, service.tags.filter(b, service.tags.exists(c, c == b)))")
    Expression.compile("service.links.all(a, service.links.exists(b, a == b))", NAMESPACES)
    Expression.compile("service.tags.filter(t, t != '').map(t, t).all(t, t.size() > 0)", NAMESPACES)


def test_an_expression_over_the_size_limit_is_refused_before_it_is_parsed():
    source = 'custom.a == "' + "a" * MAX_EXPRESSION_CHARS + '"'
    assert refusal(source) == f"expression is {len(source):,} characters long; the limit is 10,000"


def test_a_parser_panic_is_a_syntax_error(monkeypatch: pytest.MonkeyPatch):
    # Past column 65,535 the parser panics (a BaseException); the size limit keeps such an
    # expression from it, and should a panic come anyway it is this rule's syntax error.
    monkeypatch.setattr(limits, "MAX_EXPRESSION_CHARS", 1_000_000)
    with pytest.raises(ExpressionSyntaxError) as error:
        Expression.compile('custom.a == "' + "a" * 70_000 + '" && )', NAMESPACES)
    assert error.value.message.startswith("CEL syntax error")


def test_the_limits_are_reported_with_file_and_line():
    _, problems = parse_scorecard(scorecard(long_sum(20_000)), "bounded.yaml")
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [(14, 'rule "hostile"')]
    assert "20,001 terms" in problems[0].message
    block = scorecard("x").replace(
        "expression: 'x'",
        "expression: |\n        service.owner != \"\" &&\n        " + "(" * 40 + "true" + ")" * 40)
    _, problems = parse_scorecard(block, "bounded.yaml")
    assert [(p.line, p.message) for p in problems] == [
        (16, 'rule "hostile": expression nests brackets 40 deep; the limit is 32')]


def test_the_longest_accepted_chain_and_nesting_evaluate_without_crashing():
    # Run where a crash cannot take the test run with it; a 1 MiB thread stack, an eighth of
    # the usual, still bears the longest chain the limits accept.
    chain = long_sum(MAX_CHAIN_TERMS - 1)
    nested = "(" * MAX_NESTING + long_sum(MAX_CHAIN_TERMS - 2 * MAX_NESTING - 2) + ")" * MAX_NESTING
    code = textwrap.dedent(f"""
        import threading
        import cel
        from rules.expression import Expression
        results = []
        def run():
            for source in ({chain!r}, {nested!r}):
                expression = Expression.compile(source, set())
                results.append(expression.program.execute(cel.Context(variables={{}})))
        threading.stack_size(1024 * 1024)
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        print(results)
    """)
    assert measure(chain).chain_terms == MAX_CHAIN_TERMS
    assert measure(nested).chain_terms <= MAX_CHAIN_TERMS
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "[True, True]"), done.stderr


def test_validate_refuses_what_would_crash_the_runtime_with_exit_2_and_no_traceback(tmp_path: Path):
    (tmp_path / "sum.yaml").write_text(scorecard(long_sum(20_000)))
    syntax_error_at_column_70000 = 'custom.a == "' + "a" * 70_000 + '" && )'
    (tmp_path / "long.yaml").write_text(scorecard(syntax_error_at_column_70000).replace(
        "name: bounded", "name: long"))
    done = subprocess.run([sys.executable, "-m", "engine", "validate", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert (f'{tmp_path / "sum.yaml"}:14: rule "hostile": expression is 80,001 characters long; '
            "the limit is 10,000; expression has 20,001 terms in one chain of operations; "
            "the limit is 1,000") in output
    assert (f'{tmp_path / "long.yaml"}:14: rule "hostile": expression is 70,019 characters long; '
            "the limit is 10,000") in output
    assert "Traceback" not in output and "panicked" not in output


@pytest.mark.parametrize("weight", [".inf", ".nan", "-.inf", "1e308", "1.0e+308", "0", "-1", "1000.5"])
def test_a_weight_that_is_not_finite_and_bounded_is_refused_with_its_line(weight: str):
    _, problems = parse_scorecard(scorecard("true", weight), "bounded.yaml")
    assert len(problems) == 1
    assert problems[0].line == 13
    assert problems[0].message.endswith(
        "is not a valid weight: a weight is a finite number more than 0 and at most 1,000")


def test_a_weight_of_1000_is_accepted():
    loaded, problems = parse_scorecard(scorecard("true", "1000"), "bounded.yaml")
    assert problems == [] and loaded is not None
    assert loaded.rules[1].weight == 1000.0
