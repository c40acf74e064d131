"""Rule functions and static analysis of the facts an expression reads."""

from __future__ import annotations

from datetime import UTC, datetime

import cel
import pytest

from rules.expression import Expression, ExpressionSyntaxError, Outcome
from rules.functions import bind
from rules.references import fact_references

NOW = datetime(2026, 11, 27, tzinfo=UTC)
NAMESPACES = {"service", "github", "prometheus", "aws", "custom"}


def run(source: str, facts: dict) -> Outcome:
    expression = Expression.compile(source, NAMESPACES)
    context = cel.Context(variables={**facts, "now": NOW}, functions=bind(NOW))
    return expression.run(context, facts).outcome


def test_references_follow_selections_but_stop_at_calls_indexes_and_strings():
    refs = fact_references(
        'github.files.exists(f, f == "github.x") && service.labels["team"] == "a" '
        "&& has(aws.s3.buckets) && prometheus.availability_30d >= 0.99 // github.comment",
        NAMESPACES,
    )
    assert [r.dotted for r in refs] == [
        "github.files", "service.labels", "aws.s3.buckets", "prometheus.availability_30d",
    ]


@pytest.mark.parametrize(
    ("source", "facts", "outcome"),
    [
        ("days_since(github.last_commit_at) == 2.0", {"github": {"last_commit_at": "2026-11-25T00:00:00Z"}},
         Outcome.TRUE),
        ("hours_since(github.t) == 36.0", {"github": {"t": datetime(2026, 11, 25, 12, tzinfo=UTC)}}, Outcome.TRUE),
        ('semver_at_least("v1.10.0", "1.9.3")', {}, Outcome.TRUE),
        ('semver_compare("1.2.3-rc.1", "1.2.3") == -1', {}, Outcome.TRUE),
        ('semver_at_least("1.2", "1.2.0")', {}, Outcome.TRUE),
        ('semver_at_least("not-a-version", "1.0.0")', {}, Outcome.ERROR),
        ("now > timestamp('2026-01-01T00:00:00Z')", {}, Outcome.TRUE),
        ("custom.x > 1", {"custom": {"x": "text"}}, Outcome.ERROR),
        ("custom.x > 1", {"custom": {}}, Outcome.ABSENT),
        ("custom.x + 1", {"custom": {"x": 1}}, Outcome.ERROR),  # not a bool
        ('service.labels["team"] == "a"', {"service": {"labels": {}}}, Outcome.ABSENT),
    ],
)
def test_functions_and_outcomes(source, facts, outcome):
    assert run(source, facts) is outcome


def test_syntax_errors_carry_a_position():
    with pytest.raises(ExpressionSyntaxError) as error:
        Expression.compile("github.archived == ", NAMESPACES)
    assert "CEL syntax error at column" in error.value.message


def test_comprehension_variables_are_not_unknown_names():
    expression = Expression.compile(
        'service.links.exists(l, l.type == "runbook") && cel.bind(x, 1, x > 0) && now != now',
        NAMESPACES,
    )
    assert expression.names == {"service"}
