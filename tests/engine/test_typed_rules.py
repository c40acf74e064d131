"""Type-checked rules: `validate` refuses a rule that would be an `error` for every service,
names the sub-expression and the fix; a run-time type error names it too."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cel
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.loading import parse_scorecard
from engine.vocabulary import vocabulary
from rules import typecheck
from rules.expression import Expression, Outcome
from rules.functions import bind

CARD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata:
  name: typed
spec:
  levels: [Bronze, Silver]
  rules:
    - name: fresh
      level: Bronze
      expression: {expression}
"""


def type_errors(source: str) -> list[str]:
    return [p.describe() for p in typecheck.check(source, typecheck.Environment(vocabulary()))]


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)

    def run(*texts: str):
        for index, text in enumerate(texts):
            (tmp_path / f"card{index}.yaml").write_text(text)
        return CliRunner().invoke(app, ["validate", str(tmp_path)])

    return run


def test_validate_names_the_sub_expression_the_types_and_the_fix_of_a_number_mix(validate):
    result = validate(CARD.format(expression="'days_since(github.last_commit_at) + 1 < 60.0'"))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert ('card0.yaml:10: rule "fresh": type error in "days_since(github.last_commit_at) + 1": '
            "double + int (CEL does not convert between number types); fix: 1.0 instead of 1"
            ) in result.stderr


@pytest.mark.parametrize("expression", ["service.tier > 0", "service.tier == 1", "service.tier in [1, 2]"])
def test_a_catalog_string_compared_with_a_number_is_refused_with_int_as_the_fix(validate, expression):
    result = validate(CARD.format(expression=f"'{expression}'"))
    assert result.exit_code == 2
    assert "(a string is never a number in CEL); fix: int(service.tier) instead of service.tier" in result.stderr


def test_a_block_scalar_type_error_is_reported_on_its_own_line(validate):
    result = validate(CARD.format(expression="|\n        github.has_readme &&\n"
                                  "        github.alerts.dependabot.critical + 0.5 < 1.0"))
    assert result.exit_code == 2
    assert 'card0.yaml:12: rule "fresh": type error in "github.alerts.dependabot.critical + 0.5"' in result.stderr
    assert "fix: double(github.alerts.dependabot.critical) instead of" in result.stderr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("github.files", 'a rule must be a bool; this is a list(string); fix: size(github.files) > 0'),
        ("github.files && true", "&& joins bools; this is a list(string)"),
        ("days_since(1) > 2.0", "days_since() takes a string or a timestamp as argument 1, not an int"),
        ("github.last_commit_at > '2024-01-01'", "fix: timestamp('2024-01-01') instead of '2024-01-01'"),
        ("github.alerts.dependabot.critical == '0'", "fix: 0 instead of '0'"),
        ("cel.bind(n, github.alerts.dependabot.critical, n + 0.5 > 1.0)", "the runtime has no cel.bind()"),
        ("(github.alerts.dependabot.critical + 1) * 2.0 > 1.0",
         "fix: double(github.alerts.dependabot.critical + 1) instead of"),
        ("!github.alerts.dependabot.critical", "! applies to a bool, not an int"),
        ("service.tags.exists(t, t + 1 > 0)", "string + int"),
    ],
)
def test_type_errors(source, expected):
    assert any(expected in found for found in type_errors(source)), type_errors(source)


@pytest.mark.parametrize(
    "source",
    [
        "days_since(github.last_commit_at) <= 90",  # the runtime compares int and double
        "github.alerts.dependabot.critical < 2.5",
        "has(github.last_commit_at) && github.alerts.dependabot.critical == 0",
        'service.labels["team"] == "a" && service.annotations.x == 1',  # map values: any type
        "int(service.tier) <= 2",
        'service.tier in ["1", "2"]',
        "custom.coverage + 1 > 2",  # free-form namespace: not typed
        "aws.rds.instances.all(db, db.backup_retention_days >= 7)",
        "now - github.last_commit_at < duration('24h')",
        'semver_at_least(service.labels.sdk, "1.2.0")',
        "size(github.files) > 0 ? true : false",
        "github.files.filter(f, f.endsWith('.md')).size() >= 1",
        "dyn(service.owner) > 1",
        "github.alerts.dependabot.critical == null",
    ],
)
def test_well_typed_rules_pass(source):
    assert type_errors(source) == []


def test_shipped_scorecards_validate():
    root = Path(__file__).resolve().parents[2]
    shipped = sorted((root / "scorecards").glob("*.yaml"))
    for path in shipped + sorted((root / "tests" / "golden").rglob("scorecard.yaml")):
        _, problems = parse_scorecard(path.read_text(), str(path))
        assert problems == [], problems


def test_an_expression_this_parser_cannot_read_is_not_type_checked():
    assert typecheck.check("a.b(", typecheck.Environment({})) == []


def test_a_run_time_type_error_names_the_sub_expression_and_the_fix():
    now = datetime(2026, 11, 27, tzinfo=UTC)
    expression = Expression.compile("custom.coverage + 1 < 80.0", {"custom"})
    facts = {"custom": {"coverage": 72.5}}
    context = cel.Context(variables={**facts, "now": now}, functions=bind(now))
    outcome = expression.run(context, facts)
    assert outcome.outcome is Outcome.ERROR
    assert outcome.detail.startswith("TypeError: Unsupported operation: float + int")
    assert 'type error in "custom.coverage + 1": double + int' in outcome.detail
    assert outcome.detail.endswith("fix: 1.0 instead of 1")
