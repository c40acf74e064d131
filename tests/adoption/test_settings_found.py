"""Settings are found, never guessed: --config, else LEVELSET_CONFIG, else ./levelset.yaml, else
the built-in defaults, and stderr says which. A server without anything to grade refuses to
start; /healthz says when the newest run failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from engine.api.app import create_app
from engine.cli import app
from engine.jobs import EvaluationFailed, run_evaluation
from engine.settings import Settings, get_settings
from tests.conftest import write_config

UNDECLARED = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: coverage}
spec:
  levels: [Bronze]
  rules:
    - {name: covered, level: Bronze, expression: 'custom.covrage > 50.0'}
"""
FOUND = "settings: levelset.yaml (found in the working directory)"
DEFAULTS = "settings: built-in defaults (no --config, no LEVELSET_CONFIG and no ./levelset.yaml)"


@pytest.fixture
def project(sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample with a levelset.yaml declaring its custom facts and its own schedule, as the
    working directory, with no LEVELSET_CONFIG."""
    write_config(sample, f"sqlite:///{tmp_path / 'found.db'}",
                 schedule={"evaluate": "5 1 * * *"},
                 custom_facts={"coverage": {"type": "double"}})
    (sample / "bad.yaml").write_text(UNDECLARED)
    monkeypatch.delenv("LEVELSET_CONFIG", raising=False)
    monkeypatch.chdir(sample)
    return sample


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_reads_the_levelset_yaml_of_the_working_directory(project: Path) -> None:
    code, _, err = invoke("validate", "bad.yaml")
    assert code == 2
    assert err.splitlines()[0] == FOUND
    assert 'bad.yaml:7: rule "covered": unknown fact "custom.covrage"' in err
    assert 'did you mean "custom.coverage"?' in err


def test_file_mode_types_rules_with_the_levelset_yaml_found_and_says_so(project: Path) -> None:
    # The declared custom facts of ./levelset.yaml type the rules in file mode too, so a typo
    # is refused the same way as with --config, and stderr names the file.
    args = ("--scorecards", "bad.yaml", "--catalog", "catalog", "--facts", "facts.json")
    (project / "facts.json").write_text("{}")
    for command in (("evaluate",), ("gate", "--service", "payments-api", "--scorecard",
                                     "coverage", "--min-level", "Bronze")):
        code, _, err = invoke(*command, *args)
        assert code == 2, err
        assert err.splitlines()[0].startswith(f"{FOUND}: its sources and declared facts")
        assert 'did you mean "custom.coverage"?' in err


def test_file_mode_without_a_settings_file_says_it_runs_on_the_defaults(
        sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEVELSET_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("evaluate", "--scorecards", str(sample / "scorecards"), "--catalog",
                          str(sample / "catalog"), "--facts", str(sample / "facts.json"))
    assert code == 0, err
    assert err.splitlines()[0] == DEFAULTS


def test_schedule_lists_the_jobs_of_the_levelset_yaml_found(project: Path) -> None:
    code, out, err = invoke("schedule")
    assert code == 0 and err.strip() == FOUND
    assert "evaluate  5 1 * * *" in out


def test_levelset_config_comes_before_the_working_directory(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text("environment: development\nschedule: {evaluate: '7 2 * * *'}\n")
    monkeypatch.setenv("LEVELSET_CONFIG", str(elsewhere))
    code, out, err = invoke("schedule")
    assert code == 0 and err.strip() == f"settings: {elsewhere} (LEVELSET_CONFIG)"
    assert "evaluate  7 2 * * *" in out


def test_a_given_config_is_read_without_a_word(project: Path, tmp_path: Path) -> None:
    given = tmp_path / "given.yaml"
    given.write_text("environment: development\nschedule: {evaluate: '9 3 * * *'}\n")
    for args in (["schedule", "--config", str(given)], ["--config", str(given), "schedule"]):
        code, out, err = invoke(*args)
        assert code == 0 and err == "", err
        assert "evaluate  9 3 * * *" in out


def test_without_a_settings_file_the_built_in_defaults_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEVELSET_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("schedule")
    assert code == 0 and err.strip() == DEFAULTS
    assert "evaluate  0 */4 * * *" in out


def test_a_worker_reads_the_levelset_yaml_of_its_working_directory(project: Path) -> None:
    get_settings.cache_clear()
    assert get_settings().schedule.evaluate == "5 1 * * *"
    assert get_settings().custom_facts is not None


def one_line_refusal(code: int, err: str) -> str:
    assert code == 2, err
    [line] = [line for line in err.splitlines() if not line.startswith("settings: ")]
    assert line.startswith("error: ") and "; fix: " in line
    return line


def test_serve_refuses_to_start_without_a_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEVELSET_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    line = one_line_refusal(*invoke("serve", "--port", "9")[::2])
    assert line.startswith("error: catalog: catalog path does not exist; fix: point catalog")
    assert not (tmp_path / "levelset.db").exists()  # refused before anything was created


def test_serve_refuses_to_start_when_no_scorecard_loads(project: Path) -> None:
    for card in (project / "scorecards").iterdir():
        card.write_text("apiVersion: levelset.dev/v1\nkind: Scorecard\nmetadata: {name: x}\n")
    line = one_line_refusal(*invoke("serve", "--port", "9")[::2])
    assert "scorecards/" in line and "; fix: `levelset validate " in line
    for card in (project / "scorecards").iterdir():
        card.unlink()
    line = one_line_refusal(*invoke("serve", "--port", "9")[::2])
    assert "no scorecards found" in line


def test_healthz_is_degraded_while_the_newest_run_failed(settings: Settings, sample: Path) -> None:
    with TestClient(create_app(settings)) as client:
        run_evaluation(settings, trigger="cli")
        healthy = client.get("/healthz")
        assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
        catalog = sample / "catalog"
        catalog.rename(sample / "moved")
        with pytest.raises(EvaluationFailed):
            run_evaluation(settings, trigger="cli")
        degraded = client.get("/healthz")
        assert degraded.status_code == 200
        body = degraded.json()
        assert body["status"] == "degraded"
        assert body["latest_run"]["status"] == "failed"
        assert "catalog path does not exist" in body["latest_run"]["error"]
        assert body["last_run"]["status"] == "complete"  # the grades served are from it
        (sample / "moved").rename(catalog)
        run_evaluation(settings, trigger="cli")
        assert client.get("/healthz").json()["status"] == "ok"
