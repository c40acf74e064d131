"""Case 2: commands do not exit 0 after doing nothing or failing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adoption.conftest import NOW, Invoke, write_settings
from tests.realparts.github import GRAPHQL, FakeRepository, GitHubStandIn
from tests.realparts.httpserver import Reply

ENTITY = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: {name}, tags: [python], labels: {{tier: critical}}}}
spec: {{type: service, lifecycle: production, owner: team-a}}
"""
BAD_CREDENTIALS = Reply(401, json.dumps({"message": "Bad credentials"}).encode(),
                        {"Content-Type": "application/json"})


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    stand_in = GitHubStandIn([FakeRepository("acme/a", files=["README.md"]),
                              FakeRepository("acme/b", files=["README.md"])])
    with stand_in.server.running():
        yield stand_in


def small_project(directory: Path, github: GitHubStandIn) -> Path:
    (directory / "catalog").mkdir(exist_ok=True)
    for name in ("a", "b"):
        (directory / "catalog" / f"{name}.yaml").write_text(ENTITY.format(name=name))
    return write_settings(directory, (
        f"collectors:\n  github:\n    base_url: {github.base_url}\n    org: acme\n"
        "    token_env: ADOPTION_TEST_GITHUB_TOKEN\n    retries: 0\n"))


def test_collect_exits_3_when_there_is_no_token(tmp_path: Path, cli: Invoke,
                                                github: GitHubStandIn,
                                                monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ADOPTION_TEST_GITHUB_TOKEN", raising=False)
    config = small_project(tmp_path, github)
    assert cli("migrate", "--config", str(config)).exit_code == 0
    result = cli("collect", "--config", str(config))
    assert result.exit_code == 3, result.output
    assert ("error: github: failed for every service (2): GitHub token: environment variable "
            "ADOPTION_TEST_GITHUB_TOKEN is not set") in result.stderr


def test_collect_exits_3_when_the_token_is_refused(tmp_path: Path, cli: Invoke,
                                                   github: GitHubStandIn,
                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADOPTION_TEST_GITHUB_TOKEN", "ghp_expired")
    config = small_project(tmp_path, github)
    cli("migrate", "--config", str(config))
    for path in ("/repos/acme/a", "/repos/acme/b", GRAPHQL):  # GitHub, to a revoked token
        github.fail_always(path, BAD_CREDENTIALS)
    result = cli("collect", "--config", str(config))
    assert result.exit_code == 3, result.output
    assert "error: github: failed for every service (2): GitHub rejected the token (HTTP 401)" \
        in result.stderr
    assert "github: a, b: GitHub rejected the token (HTTP 401)" in result.stderr  # grouped


def test_collect_exits_0_when_the_source_answers(tmp_path: Path, cli: Invoke,
                                                 github: GitHubStandIn,
                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADOPTION_TEST_GITHUB_TOKEN", "ghp_valid")
    config = small_project(tmp_path, github)
    cli("migrate", "--config", str(config))
    result = cli("collect", "--config", str(config), "--service", "a,b")
    assert result.exit_code == 0, result.output


def test_collect_exits_2_when_the_catalog_path_does_not_exist(tmp_path: Path, cli: Invoke,
                                                              github: GitHubStandIn):
    config = small_project(tmp_path, github)
    config.write_text(config.read_text().replace("catalog: catalog/", "catalog: katalog/"))
    result = cli("collect", "--config", str(config))
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'katalog'}: catalog path does not exist" in result.stderr


def test_a_filter_that_matches_no_service_is_named_with_its_label(project: Path, cli: Invoke):
    card = (project / "scorecards" / "security.yaml")
    text = card.read_text()
    card.write_text(text.replace("filter: 'service.lifecycle != \"experimental\"'",
                                 "filter: \"'tier-one' in service.tags\"", 1))
    result = cli("evaluate", "--facts", "facts.json", *NOW)
    assert result.exit_code == 0
    assert ("matches none of the" in result.stderr
            and "no service has 'tier-one' (in its tags" in result.stderr)
    assert "security.yaml:" in result.stderr
    config = write_settings(project, "facts: facts.json\n")
    result = cli("validate", "--config", str(config))
    assert result.exit_code == 0
    assert "warning:" in result.stderr and "no service has 'tier-one'" in result.stderr


@pytest.mark.parametrize("command", [["runs"], ["facts", "payments-api"],
                                     ["gate", "--service", "x", "--scorecard", "security",
                                      "--min-level", "Gold"]])
def test_read_commands_never_create_a_database_nor_print_a_traceback(
        project: Path, cli: Invoke, command: list[str]):
    config = write_settings(project)
    result = cli(*command, "--config", str(config))
    assert result.exit_code == 3
    assert result.stderr.strip().splitlines() == [
        f"error: {project / 'levelset.db'}: no database here: run levelset migrate "
        f"--config {config}"]
    assert not (project / "levelset.db").exists()
    (project / "levelset.db").write_bytes(b"")  # there, but never migrated
    result = cli(*command, "--config", str(config))
    assert result.exit_code == 3
    assert "the database is not migrated: run levelset migrate" in result.stderr


def test_runs_outside_a_configured_directory_says_what_to_do(tmp_path: Path, cli: Invoke,
                                                              monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    result = cli("runs")
    assert result.exit_code == 3
    assert "no database here: run levelset migrate --config levelset.yaml (or levelset init" \
        in result.stderr
    assert list(tmp_path.iterdir()) == []
