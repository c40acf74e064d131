"""Runs requested through the API wait as ``queued`` (no lease) until the server's worker
starts them; the queue is bounded and an identical waiting run is reused."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from engine.api.app import ThreadDispatcher, create_app
from engine.jobs import abandon_queued_runs, queue_run, reap_runs, start_queued_run
from engine.settings import Settings
from engine.storage import runs as run_store
from engine.storage.database import engine_for
from engine.storage.models import RunStatus
from engine.storage.public import EvaluationRunPublic
from tests.api.conftest import AUTH


def with_queue(settings: Settings, *, lease: float = 60, limit: int = 20) -> Settings:
    return settings.model_copy(update={
        "evaluation": settings.evaluation.model_copy(update={"lease_seconds": lease}),
        "api": settings.api.model_copy(update={"max_queued_runs": limit}),
    })


def run_of(settings: Settings, run_id: int) -> EvaluationRunPublic:
    with Session(engine_for(settings.database_url)) as session:
        return run_store.get_run(session, run_id=run_id)


class HeldDispatcher:
    """Records submitted runs and runs none: every run stays queued."""

    def __init__(self) -> None:
        self.submitted: list[tuple[int, str | None]] = []

    def submit(self, run_id: int, service: str | None) -> None:
        self.submitted.append((run_id, service))


@pytest.fixture
def held(evaluated: Settings) -> Iterator[tuple[TestClient, HeldDispatcher, Settings]]:
    settings = with_queue(evaluated, limit=3)
    dispatcher = HeldDispatcher()
    with TestClient(create_app(settings, dispatcher)) as client:
        yield client, dispatcher, settings


def test_a_queued_run_is_not_reaped_however_long_it_waits(settings: Settings) -> None:
    queued = queue_run(settings, service="payments")
    assert run_of(settings, queued.run_id).status == RunStatus.QUEUED
    later = datetime.now(UTC) + timedelta(days=1)
    assert reap_runs(settings, now=later) == []
    assert run_of(settings, queued.run_id).status == RunStatus.QUEUED
    # Started, it holds a lease from then on: a process that stops running it is found.
    assert start_queued_run(settings, queued.run_id)
    assert run_of(settings, queued.run_id).status == RunStatus.RUNNING
    assert reap_runs(settings, now=later) == [queued.run_id]


def test_a_run_left_queued_by_a_stopped_server_is_failed_and_never_started(
    settings: Settings,
) -> None:
    queued = queue_run(settings, service=None)
    assert abandon_queued_runs(settings) == [queued.run_id]
    run = run_of(settings, queued.run_id)
    assert run.status == RunStatus.FAILED and run.error is not None and "stopped" in run.error
    assert not start_queued_run(settings, queued.run_id)


def test_requested_runs_are_queued_reused_and_bounded(
    held: tuple[TestClient, HeldDispatcher, Settings],
) -> None:
    client, dispatcher, settings = held
    first = client.post("/api/v1/runs", json={"service": "payments"}, headers=AUTH)
    assert first.status_code == 202
    assert first.json()["status"] == "queued" and first.json()["reused"] is False
    run_id = first.json()["run_id"]
    assert client.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued"
    again = client.post("/api/v1/runs", json={"service": "payments"}, headers=AUTH)
    assert again.status_code == 202 and again.json()["run_id"] == run_id
    assert again.json()["reused"] is True
    pushed = client.post("/api/v1/services/payments/facts?evaluate=true",
                         json={"facts": {"on_call": True}}, headers=AUTH)
    assert pushed.status_code == 201 and pushed.json()["run"]["run_id"] == run_id
    assert client.post("/api/v1/runs", headers=AUTH).status_code == 202  # all services
    assert client.post("/api/v1/runs", json={"service": "search"}, headers=AUTH).status_code == 202
    assert len(dispatcher.submitted) == 3  # each waiting run was handed over once
    full = client.post("/api/v1/runs", json={"service": "ledger"}, headers=AUTH)
    assert full.status_code == 429
    assert int(full.headers["Retry-After"]) >= 1
    assert "3 runs are queued already (api.max_queued_runs)" in full.json()["detail"]
    # An identical run is still reused when the queue is full: nothing new is queued.
    assert client.post("/api/v1/runs", headers=AUTH).json()["reused"] is True
    # Once the worker takes one, there is room again.
    assert start_queued_run(settings, run_id)
    assert client.post("/api/v1/runs", json={"service": "ledger"}, headers=AUTH).status_code == 202


def test_runs_waiting_behind_a_long_run_are_neither_failed_nor_left_with_an_error(
    evaluated: Settings,
) -> None:
    """30 requests while the server's worker is busy for longer than the lease: every run
    waits as queued, none is marked failed, and each ends complete with no error."""
    settings = with_queue(evaluated, lease=1)
    dispatcher = ThreadDispatcher(settings)
    release = threading.Event()
    dispatcher.executor.submit(release.wait, 30)  # the worker is busy with a long run
    try:
        with TestClient(create_app(settings, dispatcher)) as client:
            scopes: list[dict[str, str]] = [{}, {"service": "payments"}, {"service": "search"},
                                            {"service": "ledger"}]
            ids = set()
            for index in range(30):
                accepted = client.post("/api/v1/runs", json=scopes[index % 4], headers=AUTH)
                assert accepted.status_code == 202, accepted.text
                ids.add(accepted.json()["run_id"])
            assert len(ids) == 4  # identical requests share the run waiting for them
            time.sleep(2.5)  # more than twice the lease
            assert reap_runs(settings) == []
            assert {run_of(settings, i).status for i in ids} == {RunStatus.QUEUED}
            release.set()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and any(
                    run_of(settings, i).status in (RunStatus.QUEUED, RunStatus.RUNNING)
                    for i in ids):
                time.sleep(0.1)
            for run_id in ids:
                run = run_of(settings, run_id)
                assert run.status in (RunStatus.COMPLETE, RunStatus.SUPERSEDED), run
                assert run.error is None
    finally:
        release.set()
        dispatcher.shutdown()


def test_a_run_that_completes_after_it_was_reaped_keeps_no_error(settings: Settings) -> None:
    queued = queue_run(settings, service="payments")
    assert start_queued_run(settings, queued.run_id)
    assert reap_runs(settings, now=datetime.now(UTC) + timedelta(days=1)) == [queued.run_id]
    with Session(engine_for(settings.database_url)) as session:
        run_store.finish_run(session, run_id=queued.run_id, status=RunStatus.COMPLETE)
        session.commit()
    assert run_of(settings, queued.run_id).error is None
