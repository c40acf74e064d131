"""Every mode of the gate reaches the same verdict: files, --config (the stored facts) and
--api (a server's result, graded by the current scorecard), with the same exit codes."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from engine.api.app import create_app
from engine.cli import app
from engine.jobs import prepare_database, run_evaluation
from engine.settings import Settings, get_settings, load_settings
from tests.conftest import write_config
from tests.realparts.httpserver import free_port

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").exists())
MODES = ("files", "config", "api")


@dataclass
class Project:
    """A folder with catalog, scorecards and facts; its settings; a server on them."""

    folder: Path
    config: Path
    settings: Settings
    url: str
    now: str

    def gate(self, mode: str, *args: str) -> tuple[int, str, str]:
        where = {
            "files": ["--scorecards", str(self.folder / "scorecards"),
                      "--catalog", str(self.folder / "catalog.yaml"),
                      "--facts", str(self.folder / "facts.json")],
            "config": ["--config", str(self.config)],
            "api": ["--api", self.url],
        }[mode]
        get_settings.cache_clear()
        result = CliRunner().invoke(app, ["gate", *args, *where, "--now", self.now])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        return result.exit_code, result.stdout, result.stderr


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The API on ``settings``, served from a thread of this process; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the API did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def project(folder: Path, database_url: str, now: str, **extra: object) -> Iterator[Project]:
    """Settings on ``folder`` (catalog.yaml, scorecards/, facts.json), a run stored at ``now``
    as a scheduled one would, and a server."""
    config = write_config(folder, database_url, catalog="catalog.yaml",
                          evaluation={"isolated": False}, **extra)
    settings = load_settings(config)
    prepare_database(settings)
    run_evaluation(settings, trigger="schedule", now=datetime.fromisoformat(now))
    with serving(settings) as url:
        yield Project(folder, config, settings, url, now)
    get_settings.cache_clear()


def copy_case(case: str, tmp_path: Path) -> Path:
    folder = tmp_path / case
    (folder / "scorecards").mkdir(parents=True)
    shutil.copy(GOLDEN / case / "scorecard.yaml", folder / "scorecards" / "scorecard.yaml")
    shutil.copy(GOLDEN / case / "catalog.yaml", folder / "catalog.yaml")
    shutil.copy(GOLDEN / case / "facts.json", folder / "facts.json")
    return folder


@pytest.mark.parametrize("case", CASES)
def test_every_mode_gives_the_same_level_score_and_exit_code(
        case: str, tmp_path: Path, database_url: str) -> None:
    expected = json.loads((GOLDEN / case / "expected.json").read_text())
    now = expected.get("now", "2026-11-27T00:00:00Z").replace("Z", "+00:00")
    graded = {r["service"]: r for r in expected["results"]}
    with project(copy_case(case, tmp_path), database_url, now) as gated:
        settings = gated.settings
        from engine.catalog import load_catalog
        from engine.loading import load_scorecards

        services = sorted(load_catalog(settings.catalog).services)
        [card] = load_scorecards(settings.scorecards).scorecards.values()
        for service in services:
            for level in card.level_names:
                target = ["--service", service, "--scorecard", card.name, "--min-level", level,
                          "--format", "json"]
                answers = {mode: gated.gate(mode, *target) for mode in MODES}
                codes = {mode: code for mode, (code, _, _) in answers.items()}
                assert len(set(codes.values())) == 1, (service, level, answers)
                if service not in graded:  # the filter excludes it: bad input, in every mode
                    assert codes["files"] == 2
                    assert all(f'scorecard "{card.name}" does not apply to "{service}"' in err
                               for _, _, err in answers.values()), answers
                    continue
                verdicts = {mode: json.loads(out)["verdicts"][0]
                            for mode, (_, out, _) in answers.items()}
                seen = {(v["level"], v["score"], v["passed"]) for v in verdicts.values()}
                assert seen == {(graded[service]["level"], graded[service]["score"],
                                 verdicts["files"]["passed"])}, (service, level, verdicts)
                rules = {r["name"]: r["status"] for r in verdicts["files"]["rules"]}
                assert rules == graded[service]["rules"]
                # The whole verdict, each rule's message and remediation included.
                assert verdicts["files"] == verdicts["config"] == verdicts["api"]


CATALOG = "---\n".join(
    "apiVersion: backstage.io/v1alpha1\nkind: Component\n"
    f"metadata: {{name: {name}}}\nspec: {{type: service, lifecycle: {lifecycle}, owner: team-a}}\n"
    for name, lifecycle in [("ready", "production"), ("behind", "production"),
                            ("unmeasured", "production"), ("trial", "experimental")])
OPS = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: ops}
spec:
  filter: 'service.lifecycle == "production"'
  levels: [Bronze, Silver]
  rules:
    - {name: tested, level: Bronze, expression: custom.tested}
    - {name: covered, level: Silver, expression: 'custom.coverage >= 80.0'}
"""
FACTS = {"ready": {"custom": {"tested": True, "coverage": 90.0}},
         "behind": {"custom": {"tested": False, "coverage": 10.0}},
         "trial": {"custom": {"tested": True, "coverage": 90.0}}}


def ops_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "ops"
    (folder / "scorecards").mkdir(parents=True)
    (folder / "scorecards" / "ops.yaml").write_text(OPS)
    (folder / "catalog.yaml").write_text(CATALOG)
    (folder / "facts.json").write_text(json.dumps(FACTS))
    return folder


def gate_on(service: str, level: str, scorecard: str = "ops") -> list[str]:
    return ["--service", service, "--scorecard", scorecard, "--min-level", level]


@pytest.mark.parametrize(("target", "code", "says"), [
    (gate_on("ready", "Silver"), 0, "PASS ready on ops: Silver"),
    (gate_on("behind", "Bronze"), 1, "FAIL behind on ops: no level"),
    (gate_on("trial", "Bronze"), 2, 'scorecard "ops" does not apply to "trial" (its filter is '
     "not true)"),
    (gate_on("nope", "Bronze"), 2, 'unknown service "nope"'),
    (gate_on("ready", "Gold"), 2, 'scorecard "ops" has no level "Gold"'),
    (gate_on("ready", "Bronze", "opz"), 2, 'unknown scorecard "opz" (known: ops)'),
    (gate_on("unmeasured", "Bronze"), 3, "Missing data for 1 rule(s) needed for Bronze"),
], ids=["at-the-bar", "below", "not-applicable", "unknown-service", "unknown-level",
        "unknown-scorecard", "no-data"])
def test_each_exit_code_is_the_same_in_every_mode(
        target: list[str], code: int, says: str, tmp_path: Path, database_url: str) -> None:
    with project(ops_folder(tmp_path), database_url, datetime.now(UTC).isoformat()) as gated:
        for mode in MODES:
            exit_code, out, err = gated.gate(mode, *target)
            assert (exit_code, says in out + err) == (code, True), (mode, out, err)


def test_the_gate_never_passes_on_a_result_graded_by_an_older_scorecard(
        tmp_path: Path, database_url: str) -> None:
    folder = ops_folder(tmp_path)
    with project(folder, database_url, datetime.now(UTC).isoformat()) as gated:
        assert gated.gate("api", *gate_on("ready", "Silver"))[0] == 0
        card = folder / "scorecards" / "ops.yaml"
        card.write_text(OPS + "    - {name: excellent, level: Bronze, "
                        "expression: 'custom.coverage >= 95.0'}\n")
        for mode in MODES:
            code, out, _ = gated.gate(mode, *gate_on("ready", "Silver"))
            assert (code, out.splitlines()[0]) == (
                1, "FAIL ready on ops: no level (score 67%); required Silver."), mode
        from engine.storage import runs
        from engine.storage.database import engine_for, session_scope

        with session_scope(engine_for(gated.settings.database_url)) as session:
            _, listed = runs.list_runs(session, limit=10, offset=0)
        assert [(r.trigger, r.service) for r in listed][:1] == [("gate", "ready")]


def test_a_stale_result_not_graded_again_in_time_is_no_decision(
        tmp_path: Path, database_url: str) -> None:
    folder = ops_folder(tmp_path)
    with project(folder, database_url, datetime.now(UTC).isoformat(),
                 api={"gate_wait_seconds": 0}) as gated:
        (folder / "scorecards" / "ops.yaml").write_text(OPS.replace("80.0", "95.0"))
        code, _, err = gated.gate("api", *gate_on("ready", "Silver"))
        assert code == 3
        assert 'stale: "ready" on "ops": the stored result was graded by version' in err
        assert "took longer than 0 s" in err
        deadline = time.monotonic() + 30  # the evaluation it started goes on, and is stored
        while (code := gated.gate("api", *gate_on("ready", "Silver"))[0]) == 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert code == gated.gate("files", *gate_on("ready", "Silver"))[0] == 1


def test_a_level_without_rules_is_refused_so_no_gate_can_pass_on_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./levelset.yaml: validate runs on the built-in defaults
    folder = ops_folder(tmp_path)
    (folder / "scorecards" / "ops.yaml").write_text(OPS.replace("level: Silver", "level: Bronze"))
    result = CliRunner().invoke(app, ["validate", str(folder / "scorecards")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f'error: {folder / "scorecards" / "ops.yaml"}:6: level "Silver" has no rules of its '
        "own: every service at Bronze would be Silver (give it a rule, or remove the level)")
    result = CliRunner().invoke(app, ["gate", *gate_on("ready", "Silver"), "--scorecards",
                                      str(folder / "scorecards"), "--catalog",
                                      str(folder / "catalog.yaml"), "--facts",
                                      str(folder / "facts.json")])
    assert result.exit_code == 2 and 'level "Silver" has no rules of its own' in result.stderr


def test_a_broken_scorecard_is_graded_with_its_last_good_version_in_every_mode_with_storage(
        tmp_path: Path, database_url: str) -> None:
    folder = ops_folder(tmp_path)
    with project(folder, database_url, datetime.now(UTC).isoformat()) as gated:
        card = folder / "scorecards" / "ops.yaml"
        card.write_text(OPS.replace("custom.tested", "custom.tested &&"))
        target = gate_on("ready", "Silver")
        answers = {mode: gated.gate(mode, *target) for mode in ("config", "api")}
        assert {code for code, _, _ in answers.values()} == {0}, answers
        assert answers["config"][1] == answers["api"][1]
        assert f'warning: {card}: scorecard "ops" does not load; evaluated with its last good ' \
               "version" in answers["config"][2]
        code, _, err = gated.gate("files", *target)  # nothing stored: nothing to stand in
        assert code == 2 and f"error: {card}:" in err
