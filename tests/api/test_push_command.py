"""`levelset push SERVICE KEY=VALUE...` against a real `levelset serve` on loopback: what it
stores, what the server refuses (exit 2 with its reason) and a server that cannot be reached
(exit 3)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.cli.push import parse_value
from tests.conftest import SAMPLE, TOKEN, write_config
from tests.realparts.httpserver import free_port

ROOT = Path(__file__).resolve().parents[2]
CUSTOM_FACTS = {"on_call": {"type": "bool"}, "coverage": {"type": "double"},
                "note": {"type": "string"}, "tier": {"type": "string"}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A served copy of the sample, with declared custom facts, graded once: its URL."""
    directory = tmp_path_factory.mktemp("push")
    sample = directory / "sample"
    shutil.copytree(SAMPLE, sample)
    config = write_config(sample, f"sqlite:///{directory / 'serve.db'}", custom_facts=CUSTOM_FACTS)
    port = free_port()
    env = {**os.environ, "LEVELSET_API_TOKEN": TOKEN, "PYTHONPATH": str(ROOT)}
    env.pop("LEVELSET_CONFIG", None)
    log_path = directory / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--config", str(config), "--port", str(port)],
            cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).json().get("last_run"):
                        break  # the first run has stored the catalog's services
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(0.1)
            else:
                pytest.fail("server did not evaluate in 60 s: " + log_path.read_text())
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_API_TOKEN", TOKEN)


def push(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["push", *args])
    return result.exit_code, result.stdout, result.stderr


def custom_facts(server: str, service: str) -> dict:
    snapshots = httpx.get(f"{server}/api/v1/services/{service}/facts", timeout=10).json()
    return next(s["facts"] for s in snapshots if s["source"] == "custom")


@pytest.mark.parametrize(
    ("text", "value"),
    [("81.5", 81.5), ("41", 41), ("true", True), ("false", False), ('"text"', "text"),
     ('"42"', "42"), ("hello", "hello"), ("two words", "two words"), ("NaN", "NaN"),
     ("null", None), ("", "")],
)
def test_values_are_json_scalars_and_a_bare_word_is_a_string(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_pushed_facts_are_stored_with_their_json_types(server: str, token: None) -> None:
    code, out, err = push("payments", "coverage=81.5", "on_call=true", "note=hello world",
                          'tier="2"', "--api", server)
    assert (code, err) == (0, ""), err
    assert out == 'stored for payments: coverage=81.5, on_call=true, note="hello world", tier="2"\n'
    stored = custom_facts(server, "payments")
    assert {k: stored[k] for k in ("coverage", "on_call", "note", "tier")} == {
        "coverage": 81.5, "on_call": True, "note": "hello world", "tier": "2"}


def test_evaluate_starts_a_run_of_the_service(server: str, token: None) -> None:
    code, out, err = push("search", "on_call=false", "--api", f"{server}/api/v1", "--evaluate")
    assert code == 0, err
    assert "evaluation started: run " in out
    run_url = out.split("(")[-1].rstrip(")\n")
    run = httpx.get(f"{server}{run_url}", timeout=10).json()
    assert run["service"] == "search"


def test_a_value_the_server_refuses_exits_2_with_its_reason(server: str, token: None) -> None:
    code, out, err = push("payments", "coverage=high", "--api", server)
    assert (code, out) == (2, "")
    assert err.startswith("error: payments: HTTP 422: ")
    assert "coverage" in err
    assert "high" not in custom_facts(server, "payments").values()


def test_an_unknown_service_exits_2(server: str, token: None) -> None:
    code, _, err = push("no-such-service", "coverage=1.0", "--api", server)
    assert code == 2
    assert "HTTP 404" in err and "no-such-service" in err


def test_a_wrong_token_exits_2_naming_the_variable(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_API_TOKEN", "not-the-token-0123456789")
    code, _, err = push("payments", "coverage=1.0", "--api", server)
    assert code == 2
    assert "HTTP 40" in err and "set LEVELSET_API_TOKEN" in err


def test_a_server_that_cannot_be_reached_exits_3(token: None) -> None:
    api = f"http://127.0.0.1:{free_port()}"
    code, out, err = push("payments", "coverage=1.0", "--api", api)
    assert (code, out) == (3, "")
    assert err.startswith(f"error: --api: cannot reach {api}")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [(["coverage"], "error: coverage: give KEY=VALUE"),
     (["=1"], "error: =1: give KEY=VALUE"),
     (["a=1", "a=2"], 'error: a=2: "a" is given twice'),
     (["ids=[1, 2]"], "error: ids=[1, 2]: a value is a JSON scalar")],
)
def test_a_bad_assignment_exits_2_before_any_request(arguments: list[str], message: str,
                                                     token: None) -> None:
    # An unreachable --api: a request would exit 3, not 2.
    code, _, err = push("payments", *arguments, "--api", f"http://127.0.0.1:{free_port()}")
    assert code == 2
    assert err.startswith(message)
