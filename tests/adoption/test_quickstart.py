"""Case 6: the quick start for a real organisation is three commands, and the output the README
and the getting-started page show is what they print against the loopback GitHub stand-in.

    LEVELSET_WRITE_README=1 pytest tests/adoption/test_quickstart.py   # rewrite both blocks
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.adoption.standin import acme
from tests.conftest import ROOT
from tests.realparts.httpserver import free_port

README = ROOT / "README.md"
SHOWN_IN = [README, ROOT / "docs" / "getting-started.md"]
BEGIN, END = "<!-- quickstart:begin -->", "<!-- quickstart:end -->"


def levelset(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


def shown(command: str, output: str, base_url: str) -> str:
    """What the README shows: the command as typed against github.com, and its output."""
    command = command.replace(f" --github-url {base_url}", "")
    if base_url:
        output = output.replace(base_url, "https://api.github.com")
    return f"$ {command}\n{output}".rstrip()


def readme_block(path: Path = README) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)].strip().removeprefix(
        "```console").removesuffix("```").strip()


def same(a: str, b: str) -> bool:
    """Equal but for durations (the `took` column)."""
    def pattern(s: str) -> str:
        return re.sub(r"\d+\.\d+s\b", "N.Ns", s)
    return pattern(a) == pattern(b)


def test_three_commands_from_nothing_to_a_graded_organisation(tmp_path: Path):
    github = acme()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GITHUB_TOKEN": "ghp_classic_full",
           "COLUMNS": "100"}
    env.pop("LEVELSET_CONFIG", None)
    transcript = []
    with github.server.running():
        for args in (["init", "--dir", "acme", "--github-org", "acme", "--github-url",
                      github.base_url, "--token-env", "GITHUB_TOKEN", "--yes"],
                     ["collect", "--config", "acme/levelset.yaml"]):
            code, output = levelset(args, tmp_path, env)
            assert code == 0, output
            transcript.append(shown("levelset " + " ".join(args), output, github.base_url))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--config", "acme/levelset.yaml",
             "--port", str(port)], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).json().get("last_run"):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                assert server.poll() is None, "levelset serve exited"
                time.sleep(0.2)
            transcript.append("$ levelset serve --config acme/levelset.yaml\n"
                              "# the API on http://127.0.0.1:8000 (docs at /docs), graded now "
                              "and on the schedule; then, from CI:")
            args = ["gate", "--api", url, "--service", "checkout", "--scorecard", "security",
                    "--min-level", "Bronze"]
            code, output = levelset(args, tmp_path, env)
            assert code == 0, output
            transcript.append(shown("levelset " + " ".join(args), output, "").replace(
                url, "http://127.0.0.1:8000"))
        finally:
            server.terminate()
            server.wait(timeout=10)
    text = "\n".join(transcript)
    for path in SHOWN_IN:
        if os.environ.get("LEVELSET_WRITE_README"):
            shown_text = path.read_text(encoding="utf-8")
            start, end = shown_text.index(BEGIN) + len(BEGIN), shown_text.index(END)
            path.write_text(f"{shown_text[:start]}\n```console\n{text}\n```\n{shown_text[end:]}",
                            encoding="utf-8")
        assert same(readme_block(path), text), (
            f"{path.relative_to(ROOT)}: the quick start differs from what the commands print; "
            f"rerun with LEVELSET_WRITE_README=1:\n{text}")


@pytest.mark.parametrize("path", SHOWN_IN, ids=lambda path: path.name)
@pytest.mark.parametrize("word", ["levelset init", "levelset collect", "levelset serve"])
def test_the_readme_block_is_those_three_commands(word: str, path: Path):
    assert readme_block(path).count(f"$ {word} ") == 1
