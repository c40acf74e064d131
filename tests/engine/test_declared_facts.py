"""`validate --config` as a new user meets it: declared custom facts are checked by name and
type, and rules on sources the settings do not configure are pointed out."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.service import Service
from engine.cli import app
from engine.evaluation import RuleStatus, ServiceFacts, evaluate
from engine.loading import parse_scorecard
from engine.vocabulary import vocabulary

CARD = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata:
  name: operations
spec:
  levels: [Bronze]
  rules:
    - name: sbom
      level: Bronze
      expression: custom.sbom
    - name: coverage
      expression: custom.coverage + 1 > 80.0
    - name: readme
      expression: github.has_readme
    - name: up
      expression: prometheus.availability_30d >= 0.99
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scorecards").mkdir()

    def write(card: str, settings: str) -> Path:
        (tmp_path / "scorecards" / "operations.yaml").write_text(card)
        config = tmp_path / "levelset.yaml"
        config.write_text("environment: development\nscorecards: scorecards\n" + settings)
        return config

    return write


def validate(config: Path):
    return CliRunner().invoke(app, ["validate", "--config", str(config)])


DECLARED = "custom_facts:\n  sbom: {type: bool, default: false}\n  coverage: {type: double}\n"
GITHUB = "collectors:\n  github: {org: acme}\n"


def test_without_custom_facts_any_custom_fact_is_accepted_untyped(project):
    result = validate(project(CARD.replace("custom.sbom", "custom.sbmo"), GITHUB))
    assert result.exit_code == 0, result.output


def test_declared_custom_facts_refuse_a_typo_with_did_you_mean(project):
    result = validate(project(CARD.replace("custom.sbom", "custom.sbmo"), GITHUB + DECLARED))
    assert result.exit_code == 2
    assert ('scorecards/operations.yaml:10: rule "sbom": unknown fact "custom.sbmo": it is not '
            "declared in the settings' custom_facts (did you mean \"custom.sbom\"?)") in result.stderr


def test_declared_custom_facts_are_type_checked(project):
    result = validate(project(CARD, GITHUB + DECLARED))
    assert result.exit_code == 2
    assert ('rule "coverage": type error in "custom.coverage + 1": double + int (CEL does not '
            "convert between number types); fix: 1.0 instead of 1") in result.stderr


def test_rules_on_sources_that_are_not_configured_are_warned_about(project):
    config = project(CARD.replace("custom.coverage + 1", "custom.coverage + 1.0"), GITHUB + DECLARED)
    result = validate(config)
    assert result.exit_code == 0, result.output
    assert ('scorecards/operations.yaml:15: rule "up" reads prometheus.availability_30d, '
            f"but the prometheus source is not configured in {config}") in result.stderr
    assert "it can never pass" in result.stderr
    assert "github.has_readme" not in result.stderr  # github is configured


def test_a_filter_on_a_source_that_is_not_configured_is_warned_about_on_its_own_line(project):
    card = CARD.replace("spec:\n", "  description: 'a filter: left out of prometheus alerts'\nspec:\n"
                        "  filter: prometheus.availability_30d > 0.5\n")
    config = project(card.replace("custom.coverage + 1", "custom.coverage + 1.0"), GITHUB + DECLARED)
    result = validate(config)
    assert result.exit_code == 0, result.output
    assert ("scorecards/operations.yaml:7: filter reads prometheus.availability_30d, but the "
            f"prometheus source is not configured in {config}") in result.stderr


def test_a_facts_file_counts_as_a_source(project, tmp_path: Path):
    (tmp_path / "facts.json").write_text('{"payments": {"prometheus": {"availability_30d": 0.999}}}')
    result = validate(project(CARD.replace("custom.coverage + 1", "custom.coverage + 1.0"),
                              GITHUB + DECLARED + "facts: facts.json\n"))
    assert result.exit_code == 0, result.output
    assert "prometheus" not in result.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("custom_facts:\n  sbom: {tyep: bool}\n", 'custom_facts.sbom.tyep: unknown setting (did you mean "type"?)'),
        ("custom_facts:\n  sbom: {type: boolean}\n", "custom_facts.sbom.type: Input should be 'bool'"),
        ("custom_facts:\n  sbom: {type: int, default: yes}\n",
         "custom_facts.sbom: Value error, default True is not an int"),
    ],
)
def test_custom_facts_settings_are_checked_with_file_and_line(project, settings, message):
    result = validate(project(CARD, settings))
    assert result.exit_code == 2
    assert f"levelset.yaml:4: {message}" in result.stderr


def test_defaults_apply_to_services_that_never_pushed():
    schemas = vocabulary(custom_facts={"sbom": {"type": "bool", "default": False},
                                       "coverage": {"type": "double"}})
    card, problems = parse_scorecard(CARD.replace("+ 1 > 80.0", "> 80.0"), "operations.yaml", schemas)
    assert card is not None, problems
    services = [Service(name=name, owner="team-a", lifecycle="production") for name in ("quiet", "pushed")]
    facts = {"pushed": ServiceFacts(values={"custom": {"sbom": True, "coverage": 85.0}})}
    results = {r.service: {x.rule: x.status for x in r.rules}
               for r in evaluate(services, facts, [card], schemas).results}
    assert results["quiet"]["sbom"] is RuleStatus.FAIL
    assert results["quiet"]["coverage"] is RuleStatus.UNKNOWN
    assert results["pushed"]["sbom"] is RuleStatus.PASS
    assert results["pushed"]["coverage"] is RuleStatus.PASS
