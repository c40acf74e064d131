"""Case 4: a gate CI can trust: what missing data does, exit codes, JSON, files or settings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine.api.client import api_root
from tests.adoption.conftest import NOW, Invoke, write_settings

FILES = ["--facts", "facts.json"]
NOTIFICATIONS = ["--service", "notifications", "--scorecard", "security", "--min-level", "Bronze"]


def test_missing_data_blocks_by_default_and_says_which_source_failed(project: Path, cli: Invoke):
    result = cli("gate", *NOTIFICATIONS, *FILES, *NOW)
    assert result.exit_code == 3
    assert "Missing data for 2 rule(s) needed for Bronze" in result.stdout
    assert "missing data: no data for github.alerts.dependabot.critical (github collection " \
           "failed: 403 rate limited" in result.stdout
    assert "fix:" not in result.stdout  # no remediation for a rule that merely lacks data


def test_unknown_warn_lets_it_through_and_prints_what_is_missing(project: Path, cli: Invoke):
    result = cli("gate", *NOTIFICATIONS, *FILES, "--unknown", "warn", *NOW)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("PASS notifications on security")
    assert "2 rule(s) without data warned about (--unknown warn):" in result.stdout
    assert "missing data: no data for github.branch_protection.enabled" in result.stdout


def test_unknown_pass_counts_missing_data_as_passing(project: Path, cli: Invoke, tmp_path: Path):
    junit = tmp_path / "gate.xml"
    result = cli("gate", *NOTIFICATIONS, *FILES, "--unknown", "pass", "--junit", str(junit), *NOW)
    assert result.exit_code == 0
    assert "counted as passing (--unknown pass)" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    skipped = [c.get("name") for c in suite.iter("testcase") if c.find("skipped") is not None]
    assert "branch-protected" in skipped


def test_a_failing_rule_still_exits_1_whatever_the_unknown_policy(project: Path, cli: Invoke):
    target = ["--service", "ledger", "--scorecard", "production-readiness", "--min-level", "Gold"]
    for policy in ("block", "warn", "pass"):
        result = cli("gate", *target, *FILES, "--unknown", policy, *NOW)
        assert result.exit_code == 1, policy
        assert "fix: Remove single points of failure" in result.stdout


def test_bad_unknown_policy_is_bad_input(project: Path, cli: Invoke):
    result = cli("gate", *NOTIFICATIONS, *FILES, "--unknown", "ignore")
    assert result.exit_code == 2
    assert "error: --unknown: 'ignore': use block, warn or pass" in result.stderr


def test_json_format_and_several_services_comma_separated_or_repeated(project: Path, cli: Invoke,
                                                                     tmp_path: Path):
    junit = tmp_path / "gate.xml"
    result = cli("gate", "--service", "payments-api,ledger", "--service", "payments-api",
                 "--scorecard", "security", "--min-level", "Gold", *FILES, "--format", "json",
                 "--junit", str(junit), *NOW)
    document = json.loads(result.stdout)
    assert [v["service"] for v in document["verdicts"]] == ["payments-api", "ledger"]
    assert document["verdicts"][0]["passed"] is True
    assert document["passed"] is all(v["passed"] for v in document["verdicts"])
    assert result.exit_code == (0 if document["passed"] else 1)
    rule = document["verdicts"][0]["rules"][0]
    assert set(rule) >= {"name", "status", "level", "message", "remediation", "blocking",
                         "missing_data"}
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["levelset.security.payments-api",
                                               "levelset.security.ledger"]


def test_file_mode_outside_the_checkout_needs_facts(project: Path, cli: Invoke):
    result = cli("gate", "--service", "ledger", "--scorecard", "security", "--min-level", "Gold")
    assert result.exit_code == 2
    assert "error: --facts: file mode needs a facts file" in result.stderr
    result = cli("evaluate")
    assert result.exit_code == 2
    assert "error: --facts: file mode needs a facts file" in result.stderr


def test_gate_with_settings_reads_the_stored_facts(project: Path, cli: Invoke):
    config = write_settings(project, "facts: facts.json\n")
    target = ["--service", "payments-api", "--scorecard", "security", "--min-level", "Gold"]
    result = cli("gate", *target, "--config", str(config), *NOW)
    assert result.exit_code == 3  # nothing stored yet: no decision, and no database created
    assert result.stderr.strip() == (f"error: {project / 'levelset.db'}: no database here: run "
                                     f"levelset migrate --config {config}")
    assert not (project / "levelset.db").exists()
    assert cli("migrate", "--config", str(config)).exit_code == 0
    result = cli("gate", *target, "--config", str(config), *NOW)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("PASS payments-api on security: Gold")


def test_api_base_url_with_or_without_the_api_prefix():
    for given in ("https://levelset.example.com", "https://levelset.example.com/",
                  "https://levelset.example.com/api/v1", "https://levelset.example.com/api/v1/"):
        assert api_root(given) == "https://levelset.example.com"


def test_help_names_the_token_variables_and_the_exit_codes(cli: Invoke):
    result = cli("gate", "--help")
    text = " ".join(result.stdout.split())
    assert "LEVELSET_READ_TOKEN" in text and "LEVELSET_API_TOKEN" in text
    assert "1 below it; 2 bad input" in text and "3 no decision possible" in text
    assert "<" not in result.stdout  # no <list[str]> type noise


def _answering(status: int, body: dict[str, object]):
    import httpx

    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


@pytest.mark.parametrize(("status", "detail", "error", "option"), [
    (404, 'unknown service "nope"', "InputError", "--service"),
    (404, 'unknown scorecard "nope"', "InputError", "--scorecard"),
    (404, 'service "a" is not graded on scorecard "b" (its filter excludes it, or it has not '
     "been evaluated yet)", "Unreachable", "--api"),
    (401, "missing token", "InputError", "--api"),
    (503, "database unavailable", "Unreachable", "--api"),
])
def test_server_answers_map_to_bad_input_or_no_data(status: int, detail: str, error: str,
                                                     option: str):
    from core.errors import InputError
    from engine.api.client import Unreachable, remote_verdict

    kinds = {"InputError": InputError, "Unreachable": Unreachable}
    with pytest.raises(kinds[error]) as raised:
        remote_verdict("https://levelset.example.com/api/v1", service="a", scorecard="b",
                       min_level="Gold", transport=_answering(status, {"detail": detail}))
    problem = raised.value.problems[0]
    assert problem.file == option
    if status == 401:
        assert "LEVELSET_READ_TOKEN or LEVELSET_API_TOKEN" in problem.message
