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
from datetime import datetime
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
                rules = {mode: {r["name"]: r["status"] for r in v["rules"]}
                         for mode, v in verdicts.items()}
                assert all(r == graded[service]["rules"] for r in rules.values()), rules
