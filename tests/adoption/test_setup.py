"""Case 3: a real organisation in one command (init), discovery for repositories without
catalog-info.yaml, and doctor saying what stands in the way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.generation import PLACEHOLDER_OWNER, codeowner
from engine.starter import restrict
from tests.adoption.conftest import Invoke
from tests.adoption.standin import SetupStandIn, acme
from tests.conftest import ROOT


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetupStandIn]:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_classic_full")
    stand_in = acme()
    with stand_in.server.running():
        yield stand_in


def init_github(cli: Invoke, directory: Path, github: SetupStandIn, *extra: str):
    return cli("init", "--dir", str(directory), "--github-org", "acme", "--github-url",
               github.base_url, "--token-env", "GITHUB_TOKEN", "--yes", *extra)


def test_init_from_a_github_organisation_writes_a_project_that_validates(
        tmp_path: Path, cli: Invoke, github: SetupStandIn):
    project = tmp_path / "acme"
    result = init_github(cli, project, github)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*.yaml")) == [
        "catalog/acme/billing.yaml", "catalog/acme/checkout.yaml", "catalog/acme/scratch.yaml",
        "levelset.yaml", "scorecards/ownership.yaml", "scorecards/production-readiness.yaml",
        "scorecards/security.yaml"]
    settings = yaml.safe_load((project / "levelset.yaml").read_text())
    assert settings["collectors"] == {"github": {"base_url": github.base_url, "org": "acme",
                                                 "token_env": "GITHUB_TOKEN"}}
    billing = yaml.safe_load((project / "catalog/acme/billing.yaml").read_text())
    assert billing["spec"]["owner"] == "finance"  # from CODEOWNERS
    assert billing["metadata"]["annotations"] == {"github.com/project-slug": "acme/billing"}
    scratch = yaml.safe_load((project / "catalog/acme/scratch.yaml").read_text())
    assert scratch["spec"]["owner"] == PLACEHOLDER_OWNER
    security = (project / "scorecards/security.yaml").read_text()
    assert "aws." not in security.split("# Left out")[-1].split("\n", 1)[-1].replace(
        "#   - ", "")  # no rule on AWS is left in
    validated = cli("validate", "--config", str(project / "levelset.yaml"))
    assert validated.exit_code == 0, validated.output
    assert "unconfigured" not in validated.stderr and "not configured" not in validated.stderr
    assert 'service "scratch" has no owner (its repository has no CODEOWNERS): set spec.owner' \
        in validated.stderr


def test_init_from_a_backstage_catalog_with_prometheus(tmp_path: Path, cli: Invoke):
    project = tmp_path / "p"
    result = cli("init", "--dir", str(project), "--catalog", str(ROOT / "catalog"),
                 "--prometheus-url", "http://127.0.0.1:9", "--yes")
    assert result.exit_code == 0, result.output
    assert "scorecard security: left out (every rule reads a source not configured)" \
        in result.stdout
    assert (project / "catalog" / "catalog-info.yaml").is_file()
    assert not (project / "scorecards" / "security.yaml").exists()
    assert cli("validate", "--config", str(project / "levelset.yaml")).exit_code == 0
    again = cli("init", "--dir", str(project), "--catalog", str(ROOT / "catalog"))
    assert again.exit_code == 2 and "already exists (--yes" in again.stderr


def test_init_needs_a_catalog_or_an_organisation(tmp_path: Path, cli: Invoke):
    result = cli("init", "--dir", str(tmp_path / "x"), "--yes")
    assert result.exit_code == 2
    assert "give a Backstage catalog (--catalog PATH) or a GitHub organisation" in result.stderr


def test_restricting_drops_rules_levels_and_exemptions_of_unconfigured_sources():
    text = (ROOT / "scorecards" / "production-readiness.yaml").read_text()
    cut = restrict(text, {"github"})
    assert cut.text is not None and "prometheus." not in cut.text.split("\napiVersion")[1]
    assert any("availability-999 (reads prometheus)" in d for d in cut.dropped)
    assert restrict((ROOT / "scorecards" / "security.yaml").read_text(), set()).text is None


def test_restricting_keeps_an_exemption_from_the_whole_scorecard():
    text = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: hosting}
spec:
  levels: [Bronze]
  rules:
    - {name: named, level: Bronze, expression: 'service.owner != ""'}
    - {name: protected, level: Bronze, expression: github.default_branch_protected}
  exemptions:
    - {service: legacy, reason: Being retired, expires: 2027-03-31}
    - {service: old, rule: protected, reason: Frozen, expires: 2027-03-31}
    - {service: other, rule: named, reason: Frozen, expires: 2027-03-31}
"""
    cut = restrict(text, set())
    assert cut.text is not None
    kept = yaml.safe_load(cut.text)["spec"]["exemptions"]
    assert [(e["service"], e.get("rule")) for e in kept] == [("legacy", None), ("other", "named")]


def test_restricting_reads_the_sources_a_rule_reads_not_names_in_its_strings_or_comments():
    text = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: hosting}
spec:
  levels: [Bronze]
  rules:
    - name: on-our-git
      level: Bronze
      expression: 'service.annotations["source"].startsWith("github.com/acme") // not aws.x'
    - name: protected
      level: Bronze
      expression: github.default_branch_protected
"""
    cut = restrict(text, set())
    assert cut.dropped == ["protected (reads github)"]
    assert cut.text is not None and "on-our-git" in cut.text


def test_discover_generate_writes_an_entity_for_each_repository_without_one(
        tmp_path: Path, cli: Invoke, github: SetupStandIn):
    config = tmp_path / "levelset.yaml"
    config.write_text(f"collectors:\n  github:\n    base_url: {github.base_url}\n    org: acme\n"
                      "    token_env: GITHUB_TOKEN\n")
    plain = cli("discover", "--config", str(config), "--output", str(tmp_path / "plain"))
    assert plain.exit_code == 0
    assert "2 repositories without catalog-info.yaml skipped (--generate" in plain.stdout
    github.reset_counts()
    result = cli("discover", "--config", str(config), "--output", str(tmp_path / "out"),
                 "--generate")
    assert result.exit_code == 0, result.output
    assert "1 catalog file(s) from GitHub, 3 service(s), 2 generated" in result.stdout
    # one GraphQL page of 1 point reads catalog-info.yaml and CODEOWNERS alike: no REST
    assert github.graphql_requests() == 1 and github.requests() == 0
    assert github.graphql_costs[-1] == 1 and github.invalid_queries == []
    billing = yaml.safe_load((tmp_path / "out/acme/billing.yaml").read_text())
    assert billing["spec"]["owner"] == "finance"
    assert not (tmp_path / "out/acme/old.yaml").exists()  # archived
    assert (tmp_path / "out/acme/scratch.yaml").read_text().startswith(
        "# generated by levelset discover --generate from acme/scratch")


@pytest.mark.parametrize(("text", "owner"), [
    ("* @acme/platform\n", "platform"), ("/docs @acme/docs\n* @jo\n", "user:jo"),
    ("# nobody\n", None), ("/src/ @acme/core  # the core\n", "core")])
def test_owner_from_codeowners(text: str, owner: str | None):
    assert codeowner(text) == owner


def test_doctor_passes_a_fresh_project(tmp_path: Path, cli: Invoke, github: SetupStandIn):
    project = tmp_path / "acme"
    init_github(cli, project, github)
    result = cli("doctor", "--config", str(project / "levelset.yaml"))
    assert result.exit_code == 0, result.output
    assert "ok: github: token scopes read:org, repo cover the facts the rules read" in result.stdout
    assert "ok: scorecard ownership: applies to 3 of 3 service(s)" in result.stdout


def test_doctor_names_each_problem_with_its_fix(tmp_path: Path, cli: Invoke,
                                                github: SetupStandIn,
                                                monkeypatch: pytest.MonkeyPatch):
    project = tmp_path / "acme"
    init_github(cli, project, github)
    config = project / "levelset.yaml"
    (project / "scorecards" / "extra.yaml").write_text(
        (ROOT / "scorecards" / "security.yaml").read_text().replace("name: security",
                                                                     "name: extra"))
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_classic_thin")  # no repo scope
    result = cli("doctor", "--config", str(config))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("error: github: the token lacks the repo scope that ")
               and line.endswith("; fix: add the repo scope to the token") for line in lines)
    assert any("security_events" in line and "fix: add the repo or security_events scope"
               in line for line in lines)
    assert any("extra.yaml:" in line and "the aws source is not configured" in line
               and "fix: configure the source, or drop the rule" in line for line in lines)
    monkeypatch.delenv("GITHUB_TOKEN")
    result = cli("doctor", "--config", str(config))
    assert ("error: github: GitHub token: environment variable GITHUB_TOKEN is not set; fix: "
            "export GITHUB_TOKEN=<token>") in result.stderr
    monkeypatch.setenv("GITHUB_TOKEN", "revoked")
    result = cli("doctor", "--config", str(config))
    assert "error: github: GitHub rejected the token (HTTP 401); fix:" in result.stderr


def test_doctor_probes_a_fine_grained_token(tmp_path: Path, cli: Invoke, github: SetupStandIn,
                                            monkeypatch: pytest.MonkeyPatch):
    project = tmp_path / "acme"
    init_github(cli, project, github)
    monkeypatch.setenv("GITHUB_TOKEN", "github_pat_fine")  # no X-OAuth-Scopes header
    github.repositories["acme/billing"].dependabot_alerts = None  # 403: not granted
    result = cli("doctor", "--config", str(project / "levelset.yaml"))
    assert result.exit_code == 1
    assert ("the token cannot read alerts.dependabot of acme/billing (HTTP 403), which "
            "security/no-critical-vulnerabilities") in result.stderr
    assert "fix: grant the token Dependabot alerts: read" in result.stderr


def test_discovery_runs_on_the_schedule(tmp_path: Path, cli: Invoke, github: SetupStandIn):
    from engine.scheduling.celery_app import TASKS
    from engine.scheduling.embedded import SCHEDULED
    from engine.scheduling.schedule import Job
    from engine.settings import load_settings

    project = tmp_path / "acme"
    init_github(cli, project, github)
    config = project / "levelset.yaml"
    listed = cli("schedule", "--config", str(config), "--format", "json")
    jobs = {job["name"]: job["cron"] for job in json.loads(listed.stdout)}
    assert jobs["discover"] == "30 2 * * *"
    assert Job.discover in SCHEDULED and Job.discover in TASKS
    (project / "catalog/acme/scratch.yaml").unlink()
    mine = "# generated by levelset discover --generate from acme/gone\n"  # not discovery's
    (project / "catalog/acme/gone.yaml").write_text(mine)
    del github.repositories["acme/billing"]  # 1 of the 3 files: over the default 20%
    with config.open("a") as settings:
        settings.write("discovery: {max_removed_share: 0.5}\n")
    SCHEDULED[Job.discover](load_settings(config))
    assert (project / "catalog/acme/scratch.yaml").is_file()
    assert not (project / "catalog/acme/billing.yaml").exists()
    assert (project / "catalog/acme/gone.yaml").read_text() == mine


def test_init_asks_on_a_terminal(tmp_path: Path, cli: Invoke, monkeypatch: pytest.MonkeyPatch):
    import engine.cli.init as init_module

    monkeypatch.setattr(init_module, "_interactive", lambda yes: not yes)
    from typer.testing import CliRunner

    from engine.cli import app

    project = tmp_path / "asked"
    answers = f"{ROOT / 'catalog'}\n\nhttp://127.0.0.1:9\n"  # catalog, no GitHub, Prometheus
    result = CliRunner().invoke(app, ["init", "--dir", str(project)], input=answers)
    assert result.exit_code == 0, result.output
    assert "Backstage catalog path" in result.output and "Prometheus URL" in result.output
    settings = yaml.safe_load((project / "levelset.yaml").read_text())
    assert settings["collectors"] == {"prometheus": {"url": "http://127.0.0.1:9"}}
    assert "schedule" not in settings  # a Backstage catalog is not rediscovered
