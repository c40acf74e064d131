"""A run whose process died is marked failed when its lease ends; a live run never is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.jobs import EvaluationFailed, reap_runs, run_evaluation
from engine.settings import Settings, load_settings
from engine.storage.database import engine_for, session_scope
from engine.storage.models import EvaluationRun, RunStatus
from tests.conftest import ROOT, write_config

RUNAWAY = """\
apiVersion: levelset.dev/v1
kind: Scorecard
metadata: {name: runaway}
spec:
  levels: [Bronze]
  rules:
    - {name: pairs, level: Bronze,
       expression: 'custom.items.all(x, custom.items.all(y, x + y >= 0))'}
"""


def with_runaway_rule(sample: Path, database_url: str, **settings: object) -> Path:
    (sample / "scorecards" / "runaway.yaml").write_text(RUNAWAY)
    facts = json.loads((sample / "facts.json").read_text())
    facts["ledger"]["custom"] = {"items": list(range(3000))}
    (sample / "facts.json").write_text(json.dumps(facts))
    return write_config(sample, database_url, **settings)


def runs(database_url: str) -> list[EvaluationRun]:
    with session_scope(engine_for(database_url)) as session:
        return list(session.execute(select(EvaluationRun)).scalars())


def test_a_killed_process_leaves_a_run_that_is_reaped_after_its_lease(
    database_url: str, sample: Path, tmp_path: Path
) -> None:
    config = with_runaway_rule(sample, database_url,
                               evaluation={"timeout_seconds": 600, "lease_seconds": 2})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LEVELSET_CONFIG", None)
    process = subprocess.Popen([sys.executable, "-m", "engine", "evaluate", "--config",
                                str(config)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not [r for r in runs(database_url) if r.status == RunStatus.RUNNING]:
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    time.sleep(1.0)  # evaluating: the runaway rule keeps it busy
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    settings = load_settings(config)
    assert reap_runs(settings) == []  # the lease has not run out yet
    [run] = runs(database_url)
    assert run.status == RunStatus.RUNNING
    reaped = reap_runs(settings, now=datetime.now(UTC) + timedelta(seconds=3))
    [run] = runs(database_url)
    assert reaped == [run.id] and run.status == RunStatus.FAILED
    assert "the process running it stopped" in (run.error or "")


def test_a_live_run_renews_its_lease_and_is_never_reaped(
    database_url: str, sample: Path, monkeypatch: object
) -> None:
    config = with_runaway_rule(sample, database_url,
                               evaluation={"timeout_seconds": 1.5, "lease_seconds": 1})
    settings: Settings = load_settings(config)
    done = threading.Event()
    reaped: list[int] = []

    def reap_while_running() -> None:
        while not done.wait(0.3):
            reaped.extend(reap_runs(settings))

    watcher = threading.Thread(target=reap_while_running)
    watcher.start()
    try:
        outcome = run_evaluation(settings, trigger="cli")
    finally:
        done.set()
        watcher.join()
    assert reaped == [] and outcome.status == RunStatus.COMPLETE
    [ledger] = [r for r in outcome.evaluation.results  # type: ignore[union-attr]
                if (r.service, r.scorecard) == ("ledger", "runaway")]
    assert ledger.rules[0].message == "evaluation exceeded its budget of 1.5 s"
    assert {r.service for r in outcome.evaluation.results  # type: ignore[union-attr]
            if r.scorecard == "readiness"} == {"payments", "search", "ledger"}


class NativePanic(BaseException):
    """What a panic in native code raises: not an Exception (pyo3's PanicException)."""


def test_a_native_panic_fails_the_run_instead_of_leaving_it_running(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.jobs.evaluation

    def panic(*_args: object, **_kwargs: object) -> None:
        raise NativePanic("Formatting argument out of range")

    monkeypatch.setattr(engine.jobs.evaluation, "_load_inputs", panic)
    with pytest.raises(EvaluationFailed, match="NativePanic: Formatting argument out of range"):
        run_evaluation(settings, trigger="cli")
    [run] = runs(settings.database_url)
    assert run.status == RunStatus.FAILED and "NativePanic" in (run.error or "")
