"""A new user's working directory: outside Levelset's checkout, with files of their own."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from engine.cli import app
from tests.conftest import ROOT

NOW = ["--now", "2026-11-27"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding the shipped scorecards and catalog, and the sample facts under a
    name of the user's own; the working directory for the test."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "scorecards", work / "scorecards")
    shutil.copytree(ROOT / "catalog", work / "catalog")
    shutil.copy(ROOT / "samples" / "facts.json", work / "facts.json")
    monkeypatch.chdir(work)
    monkeypatch.delenv("LEVELSET_CONFIG", raising=False)
    return work


Invoke = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Invoke:
    monkeypatch.delenv("LEVELSET_CONFIG", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        result = runner.invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output
        return result

    return invoke


def write_settings(directory: Path, body: str = "") -> Path:
    config = directory / "levelset.yaml"
    config.write_text("database_url: sqlite:///" + str(directory / "levelset.db") + "\n"
                      "catalog: catalog/\nscorecards: scorecards/\n" + body)
    return config
