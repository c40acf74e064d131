"""The command line: exit codes 0 ok, 1 below the bar, 2 bad input; never a traceback."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app

NOW = ["--now", "2026-11-27"]


@pytest.fixture
def run(root: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(root)
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        return result

    return invoke


def test_validate_shipped_scorecards_exits_0_with_plain_output_when_piped(run):
    result = run("validate")
    assert result.exit_code == 0
    assert "production-readiness" in result.stdout
    assert "│" not in result.stdout and "\x1b[" not in result.stdout


def test_validate_reports_every_bad_file_and_exits_2(run, tmp_path: Path, root: Path):
    good = (root / "scorecards" / "security.yaml").read_text()
    (tmp_path / "one.yaml").write_text(good.replace("level: Silver", "level: Silvr", 1))
    (tmp_path / "two.yaml").write_text(good.replace("name: security", "name: two").replace(
        "github.has_codeowners", "github.has_codeowner"))
    result = run("validate", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}/one.yaml:" in result.stderr and 'unknown level "Silvr"' in result.stderr
    assert f"{tmp_path}/two.yaml:" in result.stderr and '"github.has_codeowners"?' in result.stderr
    assert "Traceback" not in result.output


def test_validate_catalog_reports_the_invalid_backstage_entity(run, root: Path):
    result = run("validate", "--catalog", str(root / "tests/fixtures/backstage-examples"))
    assert result.exit_code == 2
    assert "invalid-component.yaml:4" in result.stderr


def test_evaluate_json_has_every_applicable_pair(run):
    result = run("evaluate", "--format", "json", *NOW)
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    pairs = {(r["service"], r["scorecard"]) for r in payload["results"]}
    # recommendations is experimental: only the ownership scorecard applies to it.
    assert ("recommendations", "ownership") in pairs
    assert ("recommendations", "security") not in pairs
    assert ("web-storefront", "production-readiness") not in pairs  # a website, not a service
    first = payload["results"][0]
    assert set(first) >= {"service", "scorecard", "level", "score", "rules"}
    assert set(first["rules"][0]) >= {"name", "level", "status", "message"}


def test_evaluate_sample_shows_unknown_for_a_failed_collector(run):
    payload = json.loads(run("evaluate", "--format", "json", "--service", "search-api", *NOW).stdout)
    prod = next(r for r in payload["results"] if r["scorecard"] == "production-readiness")
    statuses = {r["name"]: r["status"] for r in prod["rules"]}
    assert statuses["availability-995"] == "unknown"
    message = next(r["message"] for r in prod["rules"] if r["name"] == "availability-995")
    assert "prometheus collection failed" in message


def test_evaluate_bad_facts_file_exits_2_naming_file_and_line(run, tmp_path: Path):
    facts = tmp_path / "facts.json"
    facts.write_text('{\n  "payments-api": {\n    "githb": {}\n  }\n}\n')
    result = run("evaluate", "--facts", str(facts))
    assert result.exit_code == 2
    assert f"{facts}:3: service \"payments-api\": unknown namespace \"githb\"" in result.stderr


def test_evaluate_bad_now_exits_2(run):
    result = run("evaluate", "--now", "yesterday")
    assert result.exit_code == 2 and "'yesterday' is not a date" in result.stderr


def test_gate_passes_at_or_above_the_level(run):
    result = run("gate", "--service", "payments-api", "--scorecard", "security",
                 "--min-level", "Gold", *NOW)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("PASS payments-api on security: Gold")


def test_gate_below_the_bar_names_each_blocking_rule_with_its_remediation(run, tmp_path: Path):
    junit = tmp_path / "gate.xml"
    result = run("gate", "--service", "ledger", "--scorecard", "production-readiness",
                 "--min-level", "gold", "--junit", str(junit), *NOW)
    assert result.exit_code == 1
    out = result.stdout
    assert "FAIL ledger on production-readiness: Silver" in out
    assert "Fix 3 rule(s) to reach Gold:" in out
    assert "[Gold] availability-999 (fail)" in out
    assert "got prometheus.availability_30d = 0.99712" in out
    assert "fix: Remove single points of failure" in out
    assert "[Silver]" not in out  # rules already passing are not listed
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "12" and suite.get("failures") == "3"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["availability-999", "databases-multi-az", "released-recently"]


def test_gate_unknown_blocks_and_says_why(run):
    result = run("gate", "--service", "notifications", "--scorecard", "security",
                 "--min-level", "Bronze", *NOW)
    assert result.exit_code == 3  # only missing data stands in the way: no decision
    assert "(unknown)" in result.stdout
    assert "missing data: no data for github.alerts.dependabot.critical (github collection failed: 403" in result.stdout
    assert "fix:" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "nope", "--scorecard", "security", "--min-level", "Gold"], 'unknown service "nope"'),
        (["--service", "ledger", "--scorecard", "nope", "--min-level", "Gold"], 'unknown scorecard "nope"'),
        (["--service", "ledger", "--scorecard", "security", "--min-level", "Platinum"],
         'has no level "Platinum" (levels: Bronze, Silver, Gold)'),
        (["--service", "recommendations", "--scorecard", "security", "--min-level", "Bronze"],
         "does not apply"),
    ],
)
def test_gate_unknown_names_exit_2(run, args, message):
    result = run("gate", *args, *NOW)
    assert result.exit_code == 2
    assert message in result.stderr


def test_schema_is_a_json_schema_that_accepts_the_shipped_scorecards(run, root: Path):
    import jsonschema
    import yaml

    schema = json.loads(run("schema").stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    for path in (root / "scorecards").glob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        for exemption in document["spec"].get("exemptions", []):
            exemption["expires"] = exemption["expires"].isoformat()
        jsonschema.validate(document, schema)
    published = json.loads((root / "docs" / "scorecard.schema.json").read_text())
    assert published == schema, "docs/scorecard.schema.json is stale: run `levelset schema`"


def test_a_filter_that_fails_is_reported_and_the_service_is_not_graded(run, tmp_path: Path, root: Path):
    # dyn() hides the type from validation (which refuses `service.owner > 1`): it fails at run time.
    card = (root / "scorecards" / "ownership.yaml").read_text().replace(
        "  levels: [Bronze, Silver, Gold]", "  filter: 'dyn(service.owner) > 1'\n  levels: [Bronze, Silver, Gold]")
    (tmp_path / "ownership.yaml").write_text(card)
    result = run("evaluate", "--scorecards", str(tmp_path), "--format", "json", *NOW)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["results"] == []
    assert "warning: scorecard ownership: filter failed for ledger, not graded" in result.stderr


def test_validate_with_settings_knows_the_configured_prometheus_facts(run, tmp_path: Path, root: Path):
    card = (root / "scorecards" / "production-readiness.yaml").read_text().replace(
        "prometheus.latency_p99_seconds < 0.5", "prometheus.saturation < 0.8")
    (tmp_path / "scorecards").mkdir()
    (tmp_path / "scorecards" / "prod.yaml").write_text(card)
    assert run("validate", str(tmp_path / "scorecards")).exit_code == 2
    config = tmp_path / "levelset.yaml"
    config.write_text("environment: development\nscorecards: scorecards\ncollectors:\n  prometheus:\n"
                      "    url: http://prometheus:9090\n    queries:\n"
                      "      availability_30d: avg by (service) (avg_over_time(up[30d]))\n"
                      "      error_ratio_7d: sum by (service) (rate(errors[7d]))\n"
                      "      saturation: max by (service) (cpu)\n")
    result = run("validate", "--config", str(config))
    assert result.exit_code == 0, result.output


def test_validate_and_serve_reject_collector_settings_typos_with_file_and_line(run, tmp_path: Path):
    config = tmp_path / "levelset.yaml"
    config.write_text("environment: development\ncollectors:\n  github:\n    tokn_env: X\n"
                      "  gitlab: {}\n")
    for command in ("validate", "serve"):
        result = run(command, "--config", str(config))
        assert result.exit_code == 2, command
        assert (f'{config}:4: collectors.github.tokn_env: unknown setting '
                '(did you mean "token_env"?)') in result.stderr
        assert (f"{config}:5: collectors.gitlab: unknown collector "
                "(known: aws, github, prometheus)") in result.stderr
        assert "Traceback" not in result.output


def test_validate_refuses_a_50_mb_scorecard_and_broken_links_at_once(run, tmp_path: Path, root: Path):
    (tmp_path / "security.yaml").write_text((root / "scorecards" / "security.yaml").read_text())
    with (tmp_path / "big.yaml").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    result = run("validate", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path}/big.yaml: scorecard file is 50 MiB" in result.stderr
    assert f"{tmp_path}/gone.yaml: dangling symbolic link" in result.stderr


def test_evaluate_with_a_deep_facts_file_exits_2_naming_it(run, tmp_path: Path):
    facts = tmp_path / "facts.yaml"
    facts.write_text("payments-api:\n  github:\n    x: " + "[" * 1000 + "]" * 1000 + "\n")
    result = run("evaluate", "--facts", str(facts))
    assert result.exit_code == 2
    assert f"{facts}:3: nesting deeper than 64 levels" in result.stderr


def test_a_bad_variable_is_named_by_every_command_that_reads_settings(run, tmp_path: Path,
                                                                       monkeypatch):
    config = tmp_path / "levelset.yaml"
    config.write_text("environment: development\napi:\n  read_token_required: false\n")
    monkeypatch.setenv("LEVELSET_API", "{not json")
    result = run("validate", "--config", str(config))
    assert result.exit_code == 2
    assert "LEVELSET_API: the api section is set as a JSON object" in result.stderr
    assert f"{config}:" not in result.stderr
