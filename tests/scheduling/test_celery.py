"""The Celery tasks through real workers on Redis: a solo worker in the test process (database
15), the prefork pool the compose file starts (database 14), and serve, a worker and beat from
a virtual environment holding only the runtime dependencies (database 13)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from celery import Celery
from celery.contrib.testing.worker import start_worker
from sqlmodel import Session

from engine.scheduling.celery_app import app, beat_schedule, cron, evaluate
from engine.settings import Settings
from engine.storage import runs as run_store
from engine.storage.database import engine_for
from engine.storage.models import RunStatus
from tests.conftest import ROOT, TOKEN, write_config
from tests.realparts.httpserver import free_port

REDIS = "redis://127.0.0.1:6379/15"
PREFORK_REDIS = "redis://127.0.0.1:6379/14"
INSTALLED_REDIS = "redis://127.0.0.1:6379/13"


def _redis_available(url: str = REDIS) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def _flushed(url: str) -> str:
    """A Redis database with no messages or results left by an earlier test."""
    import redis

    if not _redis_available(url):
        pytest.fail("Redis is not running on 127.0.0.1:6379: run scripts/services")
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def worker(settings: Settings) -> Iterator[None]:
    if not _redis_available():
        pytest.fail("Redis is not running on 127.0.0.1:6379: run scripts/services")
    app.conf.update(broker_url=REDIS, result_backend=REDIS)
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_evaluate_task_runs_through_a_worker(worker: None, settings: Settings) -> None:
    run_id = evaluate.delay().get(timeout=30)
    one = evaluate.delay(service="payments").get(timeout=30)
    with Session(engine_for(settings.database_url)) as session:
        assert run_store.get_run(session, run_id=run_id).status == RunStatus.COMPLETE
        run = run_store.get_run(session, run_id=one)
        assert run.trigger == "celery" and run.service == "payments" and run.results == 2


def test_beat_schedule_follows_the_cron_settings(settings: Settings) -> None:
    schedule = beat_schedule()
    assert schedule["evaluate"]["schedule"] == cron("0 */4 * * *")
    assert schedule["collect"]["task"] == "levelset.collect"


class Started:
    """Processes started for one test, each with its log; stopped (TERM, then KILL) at the end."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory, self.env = directory, env
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        log = (self.directory / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=self.directory, env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.directory / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {name}:\n{self.log(name)[-3000:]}" for name in self.processes)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Started]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("LEVELSET_") and key != "PYTHONPATH"}
    processes = Started(tmp_path, env)
    try:
        yield processes
    finally:
        processes.stop()


def wait_for_run(database_url: str, run_id: int, seconds: float = 60) -> RunStatus:
    deadline = time.monotonic() + seconds
    while True:
        with Session(engine_for(database_url)) as session:
            status = run_store.get_run(session, run_id=run_id).status
        if status not in (RunStatus.QUEUED, RunStatus.RUNNING) or time.monotonic() > deadline:
            return RunStatus(status)
        time.sleep(0.2)


def test_isolated_evaluation_works_in_the_prefork_pool_the_compose_file_starts(
    sample: Path, tmp_path: Path, started: Started
) -> None:
    """The worker as docker-compose.yml starts it: Celery's default pool (prefork), whose
    processes are daemonic, with evaluation isolated in a child process (the default)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["worker"]["command"]
    assert command[:4] == ["celery", "-A", "engine.scheduling.celery_app", "worker"]
    assert not any(part.startswith(("--pool", "-P")) for part in command)  # the default pool
    broker = _flushed(PREFORK_REDIS)
    database_url = f"sqlite:///{tmp_path / 'prefork.db'}"
    config = write_config(sample, database_url)
    settings_file = yaml.safe_load(config.read_text())
    assert "evaluation" not in settings_file  # isolation as configured by default: on
    started.env.update(LEVELSET_CONFIG=str(config), LEVELSET_BROKER_URL=broker,
                       PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "engine", "migrate"], cwd=tmp_path, env=started.env,
                   check=True, capture_output=True)
    started.start("worker", [sys.executable, "-m", "celery", *command[1:], "--loglevel=INFO"])
    client = Celery("test", broker=broker, backend=broker)
    try:
        whole = client.send_task("levelset.evaluate").get(timeout=90)
        one = client.send_task("levelset.evaluate", kwargs={"service": "payments"}).get(timeout=60)
    except Exception as error:
        pytest.fail(f"{type(error).__name__}: {error}\n{started.logs()}")
    log = started.log("worker")
    assert "prefork" in log and "daemonic processes" not in log, log[-3000:]
    for run_id in (whole, one):
        assert wait_for_run(database_url, run_id) == RunStatus.COMPLETE
    with Session(engine_for(database_url)) as session:
        run = run_store.get_run(session, run_id=one)
    assert run.trigger == "celery" and run.service == "payments" and run.results == 2
    assert run.error is None


def dockerfile_install(dockerfile: Path, into: Path) -> str:
    """Copy what the Dockerfile copies before it installs the package; its install command."""
    for line in dockerfile.read_text().splitlines():
        if line.startswith("RUN ") and "pip install" in line:
            return line.removeprefix("RUN ").split("&&")[0].strip()
        copied = re.fullmatch(r"COPY (\S+(?: \S+)*) (\S+)", line)
        if copied:
            sources, target = copied.group(1).split(), copied.group(2)
            for source in sources:
                destination = into / (Path(target) if not target.endswith("/") else
                                      Path(target) / source)
                if (ROOT / source).is_dir():
                    shutil.copytree(ROOT / source, destination,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, destination)
    raise AssertionError("the Dockerfile installs nothing")


@pytest.mark.slow
def test_serve_worker_and_beat_run_from_a_runtime_only_install(
    sample: Path, tmp_path: Path, started: Started
) -> None:
    """As the image is built: the package installed without extras into a fresh virtual
    environment (pip's cache reused), then `serve`, a worker and beat started from it."""
    source = tmp_path / "app"
    install = dockerfile_install(ROOT / "Dockerfile", source)
    assert install == "pip install .", install  # no extras, as below
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    bin_dir = venv / "bin"
    installed = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "."],
                               cwd=source, capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    broker = _flushed(INSTALLED_REDIS)
    database_url = f"sqlite:///{tmp_path / 'installed.db'}"
    config = write_config(sample, database_url)
    run_dir = tmp_path / "run"  # not the source tree: only the installed package is found
    run_dir.mkdir()
    started.directory = run_dir
    started.env.update(LEVELSET_CONFIG=str(config), LEVELSET_BROKER_URL=broker,
                       LEVELSET_API_TOKEN=TOKEN, PATH=f"{bin_dir}:{os.environ['PATH']}")
    port = free_port()
    started.start("serve", [str(bin_dir / "levelset"), "serve", "--port", str(port),
                            "--no-scheduler"])
    started.start("worker", [str(bin_dir / "celery"), "-A", "engine.scheduling.celery_app",
                             "worker", "--loglevel=INFO", "--concurrency=2"])
    started.start("beat", [str(bin_dir / "celery"), "-A", "engine.scheduling.celery_app", "beat",
                           "--loglevel=INFO", f"--schedule={run_dir / 'celerybeat-schedule'}"])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    health: dict[str, object] = {}
    while time.monotonic() < deadline and not health.get("last_run"):
        for name, process in started.processes.items():
            assert process.poll() is None, f"{name} exited\n{started.logs()}"
        with contextlib.suppress(httpx.HTTPError, ValueError):
            health = httpx.get(f"{url}/healthz", timeout=2).json()
        time.sleep(0.3)
    assert health.get("status") == "ok" and health.get("last_run"), started.logs()
    called = subprocess.run([str(bin_dir / "celery"), "-A", "engine.scheduling.celery_app",
                             "call", "levelset.evaluate", "--kwargs", '{"service": "payments"}'],
                            cwd=run_dir, env=started.env, capture_output=True, text=True,
                            timeout=60)
    assert called.returncode == 0, called.stderr
    client = Celery("test", broker=broker, backend=broker)
    run_id = client.AsyncResult(called.stdout.strip()).get(timeout=90)
    assert wait_for_run(database_url, run_id) == RunStatus.COMPLETE
    deadline = time.monotonic() + 30
    while "beat: Starting" not in started.log("beat") and time.monotonic() < deadline:
        time.sleep(0.2)
    for name, process in started.processes.items():
        assert process.poll() is None, f"{name} exited\n{started.logs()}"
    logs = started.logs()
    assert "beat: Starting" in logs and "ModuleNotFoundError" not in logs, logs
