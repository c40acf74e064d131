"""The hostile corpus: every case against the CLI and against a served instance.

Each folder here holds ``case.yaml`` (what is hostile, what must happen) and optionally
``files/``, laid over a fresh copy of the sample project; ``generate`` writes big or odd
files, ``links`` makes symbolic links, ``remove`` deletes files and ``env`` sets environment
variables for the commands and the server. The CLI must answer with the
documented exit code and message, never a traceback; a served instance must stay up, answer
within its budget, finish its run, grade every other service and answer each request as
documented (docs/reliability.md, "The hostile corpus", explains the format).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import READ_TOKEN, ROOT, SAMPLE, TOKEN
from tests.hostile import generators
from tests.realparts.httpserver import free_port

HERE = Path(__file__).resolve().parent
CASES = sorted(p.name for p in HERE.iterdir() if (p / "case.yaml").is_file())
ANSWER_WITHIN = 5.0  # seconds: what "the server stays responsive" means here
RUN_WITHIN = 90.0  # seconds for the served instance's first run to end


@dataclass
class Case:
    name: str
    spec: dict[str, Any]
    project: Path

    def expect(self, key: str) -> dict[str, Any] | None:
        value = self.spec.get("expect", {}).get(key)
        return dict(value) if value is not None else None


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, tmp_path: Path) -> Case:
    folder = HERE / request.param
    spec = yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
    project = tmp_path / "project"
    shutil.copytree(SAMPLE, project)
    if (folder / "files").is_dir():
        shutil.copytree(folder / "files", project, dirs_exist_ok=True, symlinks=True)
    for item in spec.get("generate", []):
        content = getattr(generators, item["generator"])(**item.get("args", {}))
        target = project / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    for link in spec.get("links", []):
        (project / link["path"]).symlink_to(link["target"])
    for name in spec.get("remove", []):
        path = project / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return Case(request.param, spec, project)


def environment(case: Case) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LEVELSET_API_TOKEN": TOKEN,
           "LEVELSET_READ_TOKEN": READ_TOKEN, **case.spec.get("env", {})}
    env.pop("LEVELSET_CONFIG", None)
    return env


def levelset(case: Case, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=case.project,
                          env=environment(case), capture_output=True, text=True, timeout=timeout)


def check_output(text: str, expected: list[str], where: str) -> None:
    for fragment in expected:
        assert fragment in text, f"{where}: expected {fragment!r} in:\n{text[-3000:]}"


def check_no_traceback(text: str, where: str) -> None:
    assert "Traceback (most recent call last)" not in text, f"{where} printed a traceback:\n{text}"


def test_cli(case: Case) -> None:
    ran = False
    for command, args in (("validate", ["validate", "--config", "levelset.yaml"]),
                          ("evaluate", ["evaluate", "--config", "levelset.yaml",
                                        "--format", "json"])):
        expected = case.expect(command)
        if expected is None:
            continue
        ran = True
        result = levelset(case, *args)
        output = result.stdout + result.stderr
        check_no_traceback(output, command)
        assert result.returncode == expected.get("exit", 0), f"{command}:\n{output[-3000:]}"
        check_output(output, expected.get("output", []), command)
        if expected.get("graded"):
            graded = {r["service"] for r in json.loads(result.stdout)["results"]}
            assert set(expected["graded"]) <= graded, f"{command}: graded {sorted(graded)}"
    if not ran:
        pytest.skip("no CLI expectations in this case")  # a request-only case


@pytest.fixture
def served(case: Case) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    expected = case.expect("serve")
    if expected is None and not case.spec.get("requests"):
        pytest.skip("no served expectations in this case")
    port = free_port()
    log = (case.project / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "engine", "serve", "--config", "levelset.yaml", "--port",
         str(port)], cwd=case.project, env=environment(case), stdout=log,
        stderr=subprocess.STDOUT, text=True)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_served(case: Case, served: tuple[str, subprocess.Popen[str]]) -> None:
    url, process = served
    expected = case.expect("serve") or {}
    if "exit" in expected:  # the instance must refuse to start, saying why
        process.wait(timeout=60)
        output = (case.project / "serve.log").read_text()
        check_no_traceback(output, "serve")
        assert process.returncode == expected["exit"], output[-3000:]
        check_output(output, expected.get("output", []), "serve")
        return
    _wait_until_up(url, process, case)
    run = _first_run(url, process, case)
    assert run["status"] == expected.get("run", "complete"), run
    check_output("\n".join(run["problems"]), expected.get("problems", []), "the run's problems")
    for service in expected.get("graded", []):
        answer = _get(url, f"/api/v1/services/{service}")
        assert answer.status_code == 200 and answer.json()["scorecards"], answer.text
    for request in case.spec.get("requests", []):
        _send(url, request)
    assert process.poll() is None, "the server stopped"
    started = time.monotonic()
    assert httpx.get(f"{url}/healthz", timeout=ANSWER_WITHIN).status_code == 200
    assert time.monotonic() - started < ANSWER_WITHIN


def _log(case: Case) -> str:
    return (case.project / "serve.log").read_text()[-3000:]


def _wait_until_up(url: str, process: subprocess.Popen[str], case: Case) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited {process.returncode}:\n{_log(case)}"
        try:
            httpx.get(f"{url}/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"serve did not answer:\n{_log(case)}")


def _get(url: str, path: str) -> httpx.Response:
    return httpx.get(url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=ANSWER_WITHIN)


def _first_run(url: str, process: subprocess.Popen[str], case: Case) -> dict[str, Any]:
    deadline = time.monotonic() + RUN_WITHIN
    while time.monotonic() < deadline:
        assert process.poll() is None, f"serve exited {process.returncode}:\n{_log(case)}"
        items = _get(url, "/api/v1/runs").json()["items"]
        if items and items[-1]["status"] != "running":
            return dict(items[-1])
        time.sleep(0.3)
    pytest.fail(f"the first run did not end within {RUN_WITHIN} s:\n{_log(case)}")


def _send(url: str, request: dict[str, Any]) -> None:
    token = {"write": TOKEN, "read": READ_TOKEN}.get(request.get("token", "none"))
    headers = {"content-type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = request.get("body")
    if "body_generator" in request:
        spec = request["body_generator"]
        body = getattr(generators, spec["generator"])(**spec.get("args", {}))
    started = time.monotonic()
    answer = httpx.request(request["method"], url + request["path"], headers=headers,
                           content=body.encode() if isinstance(body, str) else body,
                           timeout=30)
    where = f"{request['method']} {request['path']}"
    assert time.monotonic() - started < request.get("within", ANSWER_WITHIN), where
    assert answer.status_code == request["status"], f"{where}: {answer.status_code} {answer.text}"
    if answer.status_code >= 400:
        assert answer.headers["content-type"].startswith("application/json"), where
    check_output(answer.text, request.get("output", []), where)
    for fragment in request.get("not_output", []):
        assert fragment not in answer.text, f"{where}: {fragment!r} must not be in:\n{answer.text}"
