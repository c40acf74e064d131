"""The Celery tasks through a real worker on Redis (database 15)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from celery.contrib.testing.worker import start_worker
from sqlmodel import Session

from engine.scheduling.celery_app import app, beat_schedule, cron, evaluate
from engine.settings import Settings
from engine.storage import runs as run_store
from engine.storage.database import engine_for

REDIS = "redis://127.0.0.1:6379/15"


def _redis_available() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


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
        assert run_store.get_run(session, run_id=run_id).status == "complete"
        run = run_store.get_run(session, run_id=one)
        assert run.trigger == "celery" and run.service == "payments" and run.results == 2


def test_beat_schedule_follows_the_cron_settings(settings: Settings) -> None:
    schedule = beat_schedule()
    assert schedule["evaluate"]["schedule"] == cron("0 */4 * * *")
    assert schedule["collect"]["task"] == "levelset.collect"
