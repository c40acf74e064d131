"""GET /api/v1/schedule: the scheduled jobs and when each runs next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.api.app import create_app
from engine.scheduling.schedule import next_fire_times, schedule_table
from engine.settings import Settings, load_settings
from tests.api.conftest import AUTH
from tests.conftest import READ_TOKEN, write_config


def test_schedule_lists_every_job_with_its_next_three_times(client: TestClient) -> None:
    response = client.get("/api/v1/schedule")
    assert response.status_code == 200
    jobs = response.json()
    assert [(job["name"], job["cron"], job["timezone"]) for job in jobs] == [
        ("evaluate", "0 */4 * * *", "UTC"), ("collect", "0 */4 * * *", "UTC"),
        ("prune", "17 3 * * *", "UTC")]
    now = datetime.now(UTC)
    for job in jobs:
        times = [datetime.fromisoformat(moment) for moment in job["next"]]
        assert len(times) == 3 and all(moment.endswith("+00:00") for moment in job["next"])
        assert now - timedelta(minutes=1) < times[0] < times[1] < times[2]


def test_schedule_shows_times_in_each_jobs_zone(evaluated: Settings, sample: Path) -> None:
    config = write_config(sample, evaluated.database_url, schedule={
        "timezone": "America/New_York",
        "evaluate": {"cron": "0 9 * * 1", "timezone": "Europe/Berlin"}})
    settings = load_settings(config)
    before = datetime.now(UTC)
    with TestClient(create_app(settings)) as app:
        jobs = {job["name"]: job for job in app.get("/api/v1/schedule").json()}
    after = datetime.now(UTC)
    assert (jobs["evaluate"]["timezone"], jobs["prune"]["timezone"]) == ("Europe/Berlin",
                                                                        "America/New_York")
    row = schedule_table(settings.schedule)[0]
    assert jobs["evaluate"]["next"] in ([moment.isoformat() for moment in next_fire_times(row, at)]
                                        for at in (before, after))
    for moment in map(datetime.fromisoformat, jobs["evaluate"]["next"]):
        assert (moment.weekday(), moment.hour, moment.minute) == (0, 9, 0)  # Monday 09:00
    for moment in map(datetime.fromisoformat, jobs["prune"]["next"]):
        assert (moment.hour, moment.minute) == (3, 17)
        assert moment.utcoffset() in (timedelta(hours=-5), timedelta(hours=-4))


def test_schedule_needs_the_read_token_when_reads_are_closed(
    evaluated: Settings, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEVELSET_READ_TOKEN", READ_TOKEN)
    config = write_config(sample, evaluated.database_url, api={"read_token_required": True})
    with TestClient(create_app(load_settings(config))) as closed:
        assert closed.get("/api/v1/schedule").status_code == 401
        read = {"Authorization": f"Bearer {READ_TOKEN}"}
        assert closed.get("/api/v1/schedule", headers=read).status_code == 200
        assert closed.get("/api/v1/schedule", headers=AUTH).status_code == 200
