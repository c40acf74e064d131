"""The schedule table: standard cron, a time zone per job, and both schedulers firing together."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from core.errors import SettingsError
from engine.cli import app
from engine.scheduling.celery_app import ZonedCrontab, beat_schedule, cron
from engine.scheduling.embedded import build_scheduler
from engine.scheduling.schedule import Job, ScheduledJob, next_fire_times, schedule_table
from engine.settings import Settings, get_settings, load_settings

FRIDAY = datetime(2026, 11, 27, 10, 7, tzinfo=UTC)  # not on a fire time: both count from here


@pytest.fixture
def configure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], Settings]:
    """Point the process at a settings file with the given schedule section."""

    def write(schedule: dict[str, Any]) -> Settings:
        path = tmp_path / "levelset.yaml"
        path.write_text(yaml.safe_dump({"environment": "development", "schedule": schedule}))
        monkeypatch.setenv("LEVELSET_CONFIG", str(path))
        get_settings.cache_clear()
        return get_settings()

    return write


def apscheduler_fire_times(settings: Settings, name: str, now: datetime, count: int) -> list[datetime]:
    """What ``levelset serve`` would run: the job's trigger, asked as APScheduler asks it."""
    trigger = build_scheduler(settings).get_job(name).trigger  # type: ignore[attr-defined]
    times = [trigger.get_next_fire_time(None, now)]
    while len(times) < count:
        times.append(trigger.get_next_fire_time(times[-1], times[-1]))
    return times


def celery_fire_times(entry: ZonedCrontab, now: datetime, count: int) -> list[datetime]:
    """What beat would send: from a last run at ``now``, ``is_due`` says when the next is due."""
    times: list[datetime] = []
    last_run = now
    for _ in range(count):
        entry.nowfun = lambda at=last_run: at
        due, wait = entry.is_due(last_run)
        assert not due
        fire = last_run + timedelta(seconds=wait)
        entry.nowfun = lambda at=fire - timedelta(seconds=1): at
        assert not entry.is_due(last_run)[0]
        entry.nowfun = lambda at=fire: at
        assert entry.is_due(last_run)[0]
        times.append(fire)
        last_run = fire  # beat records the moment it sent the task
    return times


def berlin(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)


CASES = [
    # cron, time zone, now, the next three times (ISO-8601 in the zone)
    ("0 9 * * 1", "UTC", FRIDAY,
     ["2026-11-30T09:00:00+00:00", "2026-12-07T09:00:00+00:00", "2026-12-14T09:00:00+00:00"]),
    ("*/15 * * * *", "UTC", FRIDAY,
     ["2026-11-27T10:15:00+00:00", "2026-11-27T10:30:00+00:00", "2026-11-27T10:45:00+00:00"]),
    ("0 0 * * 0", "UTC", FRIDAY,
     ["2026-11-29T00:00:00+00:00", "2026-12-06T00:00:00+00:00", "2026-12-13T00:00:00+00:00"]),
    ("0 0 * * 7", "UTC", FRIDAY,
     ["2026-11-29T00:00:00+00:00", "2026-12-06T00:00:00+00:00", "2026-12-13T00:00:00+00:00"]),
    ("0 0 * * sat-sun", "UTC", FRIDAY,
     ["2026-11-28T00:00:00+00:00", "2026-11-29T00:00:00+00:00", "2026-12-05T00:00:00+00:00"]),
    ("0 0 * * 6,0", "UTC", FRIDAY,
     ["2026-11-28T00:00:00+00:00", "2026-11-29T00:00:00+00:00", "2026-12-05T00:00:00+00:00"]),
    # Clocks go forward in Berlin on Sunday 2027-03-28 at 02:00 (to 03:00).
    ("0 9 * * 1", "Europe/Berlin", berlin(2027, 3, 19, 11, 7),
     ["2027-03-22T09:00:00+01:00", "2027-03-29T09:00:00+02:00", "2027-04-05T09:00:00+02:00"]),
    ("*/15 * * * *", "Europe/Berlin", berlin(2027, 3, 28, 1, 37),
     ["2027-03-28T01:45:00+01:00", "2027-03-28T03:00:00+02:00", "2027-03-28T03:15:00+02:00"]),
    ("30 2 * * *", "Europe/Berlin", berlin(2027, 3, 26, 11, 7),  # 02:30 does not exist that night
     ["2027-03-27T02:30:00+01:00", "2027-03-28T03:30:00+02:00", "2027-03-29T02:30:00+02:00"]),
    # Clocks go back on Sunday 2026-10-25 at 03:00 (to 02:00): 02:xx happens twice, runs once.
    ("30 2 * * *", "Europe/Berlin", berlin(2026, 10, 23, 11, 7),
     ["2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]),
    ("*/15 * * * *", "Europe/Berlin", berlin(2026, 10, 25, 2, 37),
     ["2026-10-25T02:45:00+02:00", "2026-10-25T03:00:00+01:00", "2026-10-25T03:15:00+01:00"]),
    ("0 9 * * mon-fri", "America/New_York", datetime(2026, 10, 30, 20, 7, tzinfo=UTC),
     ["2026-11-02T09:00:00-05:00", "2026-11-03T09:00:00-05:00", "2026-11-04T09:00:00-05:00"]),
]


@pytest.mark.parametrize(("expression", "zone", "now", "expected"), CASES,
                         ids=[f"{c[0]} {c[1]} {c[2]:%Y-%m-%d}" for c in CASES])
def test_apscheduler_and_celery_beat_fire_at_the_same_times(
    configure: Callable[[dict[str, Any]], Settings], expression: str, zone: str, now: datetime,
    expected: list[str],
) -> None:
    settings = configure({"evaluate": {"cron": expression, "timezone": zone}})
    entry = beat_schedule()["evaluate"]
    assert entry["task"] == "levelset.evaluate" and entry["schedule"].zone == zone

    def local(times: list[datetime]) -> list[str]:
        return [moment.astimezone(UTC).astimezone(ZoneInfo(zone)).isoformat() for moment in times]

    assert local(celery_fire_times(entry["schedule"], now, 3)) == expected
    assert local(apscheduler_fire_times(settings, "evaluate", now, 3)) == expected
    row = next(job for job in schedule_table(settings.schedule) if job.name == "evaluate")
    assert [moment.isoformat() for moment in next_fire_times(row, now)] == expected


def test_next_fire_times_start_after_now() -> None:
    job = ScheduledJob("evaluate", Job.evaluate, "*/15 * * * *", "UTC")
    on_the_dot = datetime(2026, 11, 27, 10, 15, tzinfo=UTC)
    assert next_fire_times(job, on_the_dot, 2) == [on_the_dot + timedelta(minutes=15),
                                                   on_the_dot + timedelta(minutes=30)]


def test_table_has_every_job_with_its_own_or_the_default_zone(
    configure: Callable[[dict[str, Any]], Settings],
) -> None:
    settings = configure({"timezone": "Europe/Berlin", "evaluate": "0 9 * * 1",
                          "collect": {"cron": "0 9 * * 7", "timezone": "America/New_York"}})
    assert schedule_table(settings.schedule) == [
        ScheduledJob("evaluate", Job.evaluate, "0 9 * * 1", "Europe/Berlin"),
        ScheduledJob("collect", Job.collect, "0 9 * * 7", "America/New_York"),
        ScheduledJob("prune", Job.prune, "17 3 * * *", "Europe/Berlin"),
    ]
    beat = beat_schedule()
    assert {name: (entry["task"], entry["schedule"].zone) for name, entry in beat.items()} == {
        "evaluate": ("levelset.evaluate", "Europe/Berlin"),
        "collect": ("levelset.collect", "America/New_York"),
        "prune": ("levelset.prune", "Europe/Berlin"),
    }
    assert {job.id for job in build_scheduler(settings).get_jobs()} == {  # type: ignore[attr-defined]
        "evaluate", "collect", "prune"}


def test_beat_entry_keeps_its_zone_through_the_schedule_file() -> None:
    # Beat's shelve pickles the entries; a zone lost there would silently become UTC.
    berlin_monday = cron("0 9 * * 1", "Europe/Berlin")
    copy = pickle.loads(pickle.dumps(berlin_monday))
    assert copy == berlin_monday and copy.zone == "Europe/Berlin"
    assert cron("0 9 * * 1", "UTC") != berlin_monday
    assert "Europe/Berlin" in repr(berlin_monday)


# --- settings ------------------------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "levelset.yaml"
    path.write_text(text)
    return path


def test_bad_cron_and_time_zone_names_are_reported_with_file_and_line(tmp_path: Path) -> None:
    config = write(tmp_path, "schedule:\n"
                             "  timezone: Europe/Berln\n"
                             '  evaluate: "0 9 * * 8"\n'
                             "  collect:\n"
                             '    cron: "0 9 * * 1"\n'
                             "    timezone: Mars/Olympus\n"
                             "  prune: {cron: every night}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    text = str(error.value)
    assert (f"{config}:2: schedule.timezone: Value error, 'Europe/Berln' is not an IANA time zone "
            "name") in text
    assert (f"{config}:3: schedule.evaluate: Value error, '0 9 * * 8' is not a cron expression: "
            "day-of-week '8': 8 is outside 0-7") in text
    assert f"{config}:6: schedule.collect.timezone: Value error, 'Mars/Olympus' is not" in text
    assert f"{config}:7: schedule.prune.cron: Value error, 'every night' is not a cron" in text


def test_a_job_is_a_cron_string_or_a_mapping(tmp_path: Path) -> None:
    config = write(tmp_path, "schedule:\n  evaluate: 15\n  collect: {cron: '0 * * * *', tz: UTC}\n")
    with pytest.raises(SettingsError) as error:
        load_settings(config)
    text = str(error.value)
    assert f"{config}:2: schedule.evaluate: Value error, expected a cron expression or" in text
    assert f"{config}:3: schedule.collect.tz: unknown setting" in text


def test_schedule_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEVELSET_SCHEDULE__TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("LEVELSET_SCHEDULE__COLLECT", '{"cron": "0 9 * * 1", "timezone": "UTC"}')
    monkeypatch.setenv("LEVELSET_SCHEDULE__PRUNE", "0 4 * * *")
    table = schedule_table(load_settings(None).schedule)
    assert [(job.cron, job.timezone) for job in table] == [
        ("0 */4 * * *", "Europe/Berlin"), ("0 9 * * 1", "UTC"), ("0 4 * * *", "Europe/Berlin")]
    monkeypatch.setenv("LEVELSET_SCHEDULE__TIMEZONE", "Berlin")
    with pytest.raises(SettingsError, match=r"LEVELSET_SCHEDULE__TIMEZONE: .*'Berlin' is not an IANA"):
        load_settings(None)


# --- levelset schedule ---------------------------------------------------------------------

def test_schedule_command_lists_jobs_as_a_table_and_as_json(
    configure: Callable[[dict[str, Any]], Settings], tmp_path: Path,
) -> None:
    settings = configure({"evaluate": {"cron": "0 9 * * 1", "timezone": "Europe/Berlin"}})
    config = str(tmp_path / "levelset.yaml")
    before = datetime.now(UTC)
    table = CliRunner().invoke(app, ["schedule", "--config", config])
    as_json = CliRunner().invoke(app, ["schedule", "--config", config, "--format", "json"])
    after = datetime.now(UTC)
    assert table.exit_code == 0 and as_json.exit_code == 0, table.output + as_json.output
    jobs = json.loads(as_json.stdout)
    assert [(job["name"], job["cron"], job["timezone"]) for job in jobs] == [
        ("evaluate", "0 9 * * 1", "Europe/Berlin"), ("collect", "0 */4 * * *", "UTC"),
        ("prune", "17 3 * * *", "UTC")]
    evaluate = schedule_table(settings.schedule)[0]
    assert jobs[0]["next"] in ([t.isoformat() for t in next_fire_times(evaluate, moment)]
                               for moment in (before, after))
    for moment in map(datetime.fromisoformat, jobs[0]["next"]):
        assert (moment.weekday(), moment.hour, moment.minute) == (0, 9, 0)  # Monday 09:00
        assert moment.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["job", "cron", "timezone", "next"]
    assert lines[1].startswith("evaluate  0 9 * * 1    Europe/Berlin  ")
    assert ", ".join(jobs[0]["next"]) in lines[1]


def test_schedule_command_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    config = write(tmp_path, "schedule: {evaluate: '0 9 * * 1', timezone: Mars}\n")
    result = CliRunner().invoke(app, ["schedule", "--config", str(config)])
    assert result.exit_code == 2 and f"{config}:1: schedule.timezone" in result.output
    result = CliRunner().invoke(app, ["schedule", "--config", str(config), "--format", "yaml"])
    assert result.exit_code == 2 and "'yaml': use table or json" in result.output
