"""`levelset serve` as a real process, and `levelset gate --api` against it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli import app
from tests.api.test_namespaced import TEAM_X
from tests.conftest import TOKEN, write_config
from tests.realparts.httpserver import free_port

ROOT = Path(__file__).resolve().parents[2]



def memory_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and its peak so far, in MB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


@pytest.fixture
def serving(sample: Path, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A served sample (with the Component svc of namespace team-x): its URL and process id."""
    (sample / "catalog" / "team-x.yaml").write_text(TEAM_X)
    config = write_config(sample, f"sqlite:///{tmp_path / 'serve.db'}")
    port = free_port()
    env = {**os.environ, "LEVELSET_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    env.pop("LEVELSET_CONFIG", None)
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{url}/healthz", timeout=1).json()
                if health.get("last_run"):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if process.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("server did not evaluate in 30 s: " + (tmp_path / "serve.log").read_text())
        if process.poll() is not None:
            pytest.fail("server exited: " + (tmp_path / "serve.log").read_text())
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def server(serving: tuple[str, int]) -> str:
    return serving[0]


def gate(*args: str) -> tuple[int, str]:
    """The exit code and what the gate said, less the line naming the settings file that file
    mode reads (the server's mode reads none)."""
    result = CliRunner().invoke(app, ["gate", *args])
    return result.exit_code, "".join(line for line in result.output.splitlines(keepends=True)
                                     if not line.startswith("settings: "))


def test_gate_api_matches_local_mode(server: str, sample: Path, tmp_path: Path) -> None:
    local = ["--scorecards", str(sample / "scorecards"), "--catalog", str(sample / "catalog"),
             "--facts", str(sample / "facts.json")]
    for service, level, expected in [("payments", "Gold", 0), ("search", "Silver", 1),
                                     ("ledger", "bronze", 1)]:
        target = ["--service", service, "--scorecard", "readiness", "--min-level", level]
        remote_code, remote_out = gate(*target, "--api", server,
                                       "--junit", str(tmp_path / "remote.xml"))
        local_code, local_out = gate(*target, *local, "--junit", str(tmp_path / "local.xml"))
        assert (remote_code, remote_out) == (local_code, local_out)
        assert remote_code == expected
        assert (tmp_path / "remote.xml").read_text() == (tmp_path / "local.xml").read_text()


def test_gate_api_reaches_a_namespaced_service(server: str, sample: Path) -> None:
    local = ["--scorecards", str(sample / "scorecards"), "--catalog", str(sample / "catalog"),
             "--facts", str(sample / "facts.json")]
    target = ["--service", "team-x/svc", "--scorecard", "readiness", "--min-level", "Bronze"]
    remote_code, remote_out = gate(*target, "--api", server)
    assert (remote_code, remote_out) == gate(*target, *local)
    assert remote_code == 3 and "team-x/svc" in remote_out  # no facts at all: no data


def test_a_20_mb_push_is_refused_before_it_is_read(serving: tuple[str, int]) -> None:
    url, pid = serving
    facts = f"{url}/api/v1/services/payments/facts"
    headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    before, _ = memory_mb(pid)
    body = b'{"facts": {"blob": "' + b"x" * (20 << 20) + b'"}}'

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for start in range(0, len(body), 1 << 20):
            yield body[start:start + (1 << 20)]

    for content in (body, chunks()):
        response = httpx.post(facts, content=content, headers=headers, timeout=30)
        assert response.status_code == 413
        assert "larger than 1048576 bytes" in response.json()["detail"]
    after, peak = memory_mb(pid)
    assert after - before < 10 and peak - before < 10, (before, after, peak)
    assert httpx.post(facts, json={"facts": {"a": 1}}, headers=headers).status_code == 201
    shown = httpx.get(facts).json()
    assert [s["facts"] for s in shown if s["source"] == "custom"] == [{"a": 1}]


def test_gate_api_takes_the_base_url_with_or_without_the_api_prefix(server: str) -> None:
    target = ["--service", "payments", "--scorecard", "readiness", "--min-level", "Gold"]
    assert gate(*target, "--api", f"{server}/api/v1") == gate(*target, "--api", server)
    code, output = gate(*target, "--api", f"{server}/api/v1/")
    assert code == 0 and output.startswith("PASS payments on readiness")


def test_gate_api_bad_input_exits_2(server: str) -> None:
    code, output = gate("--service", "nope", "--scorecard", "readiness", "--min-level", "Gold",
                        "--api", server)
    assert code == 2 and 'unknown service "nope"' in output
    code, output = gate("--service", "payments", "--scorecard", "readiness",
                        "--min-level", "Platinum", "--api", server)
    assert code == 2 and 'no level "Platinum"' in output
    code, output = gate("--service", "payments", "--scorecard", "readiness", "--min-level", "Gold",
                        "--api", "http://127.0.0.1:9")
    assert code == 3 and "cannot reach" in output


def test_migrate_and_runs_commands(sample: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(sample, f"sqlite:///{tmp_path / 'cli.db'}")
    # Recorded so that the global --config (which sets it) is undone after the test.
    monkeypatch.setenv("LEVELSET_CONFIG", str(config))
    runner = CliRunner()
    result = runner.invoke(app, ["migrate", "--config", str(config)])
    assert result.exit_code == 0 and "revision 0006" in result.output  # the newest migration
    result = runner.invoke(app, ["runs", "--config", str(config)])
    assert result.exit_code == 0
    result = runner.invoke(app, ["--config", str(config), "runs"])
    assert result.exit_code == 0, result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("retention_days: zero\n")
    result = runner.invoke(app, ["migrate", "--config", str(bad)])
    assert result.exit_code == 2 and "bad.yaml:1: retention_days" in result.output
