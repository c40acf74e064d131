"""Runs that overlap all land: a result is skipped only when a newer run stored that service."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from core.service import Service
from engine import gate
from engine.catalog import load_catalog
from engine.jobs import create_run, evaluate_run, run_evaluation, store_run
from engine.settings import Settings
from engine.storage import runs as run_store
from engine.storage.database import engine_for, session_scope, write_scope
from engine.storage.history.diff import Direction
from engine.storage.models import EvaluationRun, RunStatus, ServiceRecord
from engine.storage.services import sync_services
from tests.conftest import ROOT, write_config

T0 = datetime(2026, 2, 1, tzinfo=UTC)


def set_facts(sample: Path, service: str, namespace: str, values: dict) -> None:
    path = sample / "facts.json"
    data = json.loads(path.read_text())
    data.setdefault(service, {})[namespace] = values
    path.write_text(json.dumps(data))


def level(settings: Settings, service: str) -> str | None:
    with session_scope(engine_for(settings.database_url)) as session:
        return gate.service_scorecard(session, service=service, scorecard="readiness").level


def test_a_run_for_one_service_lands_after_a_newer_run_for_another(
    settings: Settings, sample: Path
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    assert level(settings, "search") == "Bronze"
    set_facts(sample, "search", "github", {"has_readme": False})
    older = create_run(settings, trigger="api", service="search", now=T0)[0]
    evaluated = evaluate_run(settings, run_id=older, service="search", now=T0 + timedelta(hours=1))
    newer = run_evaluation(settings, trigger="api", service="ledger", now=T0 + timedelta(hours=1))
    assert newer.run_id > older and newer.status == RunStatus.COMPLETE
    outcome = store_run(settings, evaluated)
    assert outcome.status == RunStatus.COMPLETE and not outcome.skipped
    assert level(settings, "search") is None  # the older run's change was not lost
    [drop] = outcome.level_changes
    assert (drop.service, drop.before, drop.after, drop.direction) == (
        "search", "Bronze", None, Direction.REGRESSION)
    assert drop.blocking == ("has-readme",)


def test_an_older_run_keeps_what_a_newer_run_stored_and_stores_the_rest(
    settings: Settings, sample: Path
) -> None:
    run_evaluation(settings, trigger="cli", now=T0)
    older = create_run(settings, trigger="schedule", now=T0)[0]
    set_facts(sample, "payments", "github", {"has_readme": False})
    evaluated = evaluate_run(settings, run_id=older, now=T0 + timedelta(hours=1))
    set_facts(sample, "payments", "github", {"has_readme": True, "has_codeowners": True})
    set_facts(sample, "search", "github", {"has_readme": False})
    newer = run_evaluation(settings, trigger="api", service="payments",
                           now=T0 + timedelta(hours=2))
    stored_by_newer = level(settings, "payments")
    assert stored_by_newer is not None  # the older run saw no README: no level
    outcome = store_run(settings, evaluated)
    assert outcome.status == RunStatus.COMPLETE
    assert outcome.skipped == frozenset({"payments"})
    assert level(settings, "payments") == stored_by_newer  # newer than the older run's view
    assert level(settings, "search") == "Bronze"  # the older run's view of search is stored
    with session_scope(engine_for(settings.database_url)) as session:
        run = run_store.get_run(session, run_id=older)
        assert any("stored by a newer run first: payments" in p for p in run.problems)
        assert run_store.get_run(session, run_id=newer.run_id).status == RunStatus.COMPLETE


def test_storing_waits_only_for_the_services_another_run_is_storing(
    settings: Settings, sample: Path
) -> None:
    """Another transaction stores `search` (its row locked); a run for `search` waits for it,
    a run for `ledger` does not (PostgreSQL; SQLite has one writer at a time, so it waits)."""
    run_evaluation(settings, trigger="cli", now=T0)
    engine = engine_for(settings.database_url)
    catalog = list(load_catalog(settings.catalog))
    finished: dict[str, float] = {}

    def run(service: str) -> None:
        run_evaluation(settings, trigger="cli", service=service, now=T0 + timedelta(hours=1))
        finished[service] = time.monotonic()

    threads = {name: threading.Thread(target=run, args=[name]) for name in ("search", "ledger")}
    with write_scope(engine) as session:
        sync_services(session, services=catalog, now=T0, complete=False, lock=["search"])
        threads["search"].start()
        threads["ledger"].start()
        threads["ledger"].join(timeout=0 if engine.dialect.name == "sqlite" else 20)
        time.sleep(1.0)
        assert "search" not in finished  # still waiting for the lock
        released = time.monotonic()
    for thread in threads.values():
        thread.join(timeout=30)
    assert finished["search"] >= released
    if engine.dialect.name == "postgresql":
        assert finished["ledger"] < released
    with session_scope(engine) as session:
        statuses = session.execute(select(EvaluationRun.status)).scalars().all()
    assert sorted(statuses) == [RunStatus.COMPLETE] * 3


def test_concurrent_syncs_of_new_services_both_succeed(settings: Settings) -> None:
    engine = engine_for(settings.database_url)
    catalog = [Service(name=f"svc-{i:03d}", owner="team", lifecycle="production")
               for i in range(300)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            with write_scope(engine) as session:
                barrier.wait(timeout=10)
                sync_services(session, services=catalog, now=T0, complete=False,
                              lock=[s.name for s in catalog[:50]])
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=sync) for _ in range(2)]
    if engine.dialect.name == "sqlite":  # one writer: the second begins after the first
        threads = [threading.Thread(target=lambda: (barrier.wait(10), barrier.reset()))]
        threads.append(threading.Thread(target=sync))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    with session_scope(engine) as session:
        assert session.execute(select(func.count()).select_from(ServiceRecord)).scalar_one() == 300


def test_two_evaluate_processes_on_one_database_both_complete(
    database_url: str, sample: Path, tmp_path: Path
) -> None:
    """A full run and a one-service run of `levelset evaluate --config` started together."""
    config = write_config(sample, database_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LEVELSET_CONFIG", None)
    commands = [[sys.executable, "-m", "engine", "evaluate", "--config", str(config)],
                [sys.executable, "-m", "engine", "evaluate", "--config", str(config),
                 "--service", "search"]]
    processes = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for command in commands]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "stored as run" in err
    with session_scope(engine_for(database_url)) as session:
        stored = {run.service: run for run in session.execute(select(EvaluationRun)).scalars()}
        names = session.execute(select(ServiceRecord.name)).scalars().all()
        assert sorted(names) == ["ledger", "payments", "search"]
        assert gate.service_scorecard(session, service="search", scorecard="readiness")
    whole, single = stored[None], stored["search"]
    assert whole.status == RunStatus.COMPLETE
    # Whichever stores last lands; the one-service run is superseded only when it is the older
    # run and the whole run, newer, already stored `search` (nothing of it is lost).
    assert single.status == RunStatus.COMPLETE or (
        single.status == RunStatus.SUPERSEDED and single.id is not None
        and whole.id is not None and single.id < whole.id)
