"""Celery on Redis: tasks that call the job functions, and a beat schedule from the settings.

```
LEVELSET_BROKER_URL=redis://redis:6379/0 celery -A engine.scheduling.celery_app worker
LEVELSET_BROKER_URL=redis://redis:6379/0 celery -A engine.scheduling.celery_app beat
```

The tasks hold no logic. A task's id is its run key, so a redelivered task (acks late, a worker
killed mid-run) stores its run once.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.schedules import crontab

from engine.jobs import prune_history, run_collection, run_evaluation
from engine.settings import get_settings

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"


def _broker() -> str:
    return os.environ.get("LEVELSET_BROKER_URL", DEFAULT_BROKER)


app = Celery("levelset", broker=_broker(),
             backend=os.environ.get("LEVELSET_RESULT_BACKEND", _broker()))
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    timezone="UTC", enable_utc=True,
    task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
    result_expires=86400, broker_connection_retry_on_startup=True,
)


def cron(expression: str) -> crontab:
    minute, hour, day_of_month, month_of_year, day_of_week = expression.split()
    return crontab(minute=minute, hour=hour, day_of_month=day_of_month,
                   month_of_year=month_of_year, day_of_week=day_of_week)


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The periodic tasks, from ``schedule.evaluate`` and ``schedule.collect``."""
    settings = get_settings()
    return {
        "evaluate": {"task": "levelset.evaluate", "schedule": cron(settings.schedule.evaluate)},
        "collect": {"task": "levelset.collect", "schedule": cron(settings.schedule.collect)},
        "prune": {"task": "levelset.prune", "schedule": crontab(minute="17", hour="3")},
    }


@app.on_after_finalize.connect
def _configure_beat(sender: Celery, **_kwargs: Any) -> None:
    # Settings are read when the app is finalized (a worker or beat starting), not at import.
    sender.conf.beat_schedule = beat_schedule()


@app.task(name="levelset.evaluate", bind=True)
def evaluate(self: Task, service: str | None = None) -> int:
    """Evaluate every service (or one); returns the run id."""
    return run_evaluation(get_settings(), trigger="celery", service=service,
                          run_key=f"celery:{self.request.id}").run_id


@app.task(name="levelset.collect")
def collect() -> list[dict[str, Any]]:
    """Run the collectors and store their facts."""
    return [vars(stored) for _, stored in run_collection(get_settings())]


@app.task(name="levelset.prune")
def prune() -> dict[str, int]:
    """Delete history older than retention_days."""
    return prune_history(get_settings())
