"""Cron expressions: standard semantics (0 and 7 are Sunday), told to APScheduler by name."""

from __future__ import annotations

import pytest

from engine.scheduling.cron import CronExpression


@pytest.mark.parametrize(("expression", "weekdays"), [
    ("0 9 * * 1", "mon"),
    ("0 0 * * 0", "sun"),
    ("0 0 * * 7", "sun"),
    ("0 0 * * SUN", "sun"),
    ("0 9 * * 1-5", "mon,tue,wed,thu,fri"),
    ("0 9 * * mon-fri", "mon,tue,wed,thu,fri"),
    ("0 9 * * 5-7", "sun,fri,sat"),
    ("0 9 * * fri-sun", "sun,fri,sat"),
    ("0 9 * * sun-mon", "sun,mon"),
    ("0 9 * * sun-sun", "sun"),
    ("0 9 * * */2", "sun,tue,thu,sat"),
    ("0 9 * * 1,3-4", "mon,wed,thu"),
    ("0 9 * * *", "*"),
])
def test_day_of_week_has_standard_numbers_and_reaches_apscheduler_by_name(
    expression: str, weekdays: str
) -> None:
    assert CronExpression.parse(expression).for_apscheduler()["day_of_week"] == weekdays


def test_ranges_lists_steps_and_month_names() -> None:
    parsed = CronExpression.parse("*/20 8-17/3 1,15 jan-mar *")
    assert parsed.for_apscheduler() == {"minute": "0,20,40", "hour": "8,11,14,17", "day": "1,15",
                                        "month": "1,2,3", "day_of_week": "*"}
    assert parsed.for_celery() == {"minute": {0, 20, 40}, "hour": {8, 11, 14, 17},
                                   "day_of_month": {1, 15}, "month_of_year": {1, 2, 3},
                                   "day_of_week": "*"}


@pytest.mark.parametrize(("expression", "message"), [
    ("0 9 * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4"),
    ("60 * * * *", "minute '60': 60 is outside 0-59"),
    ("0 9 * * 8", "day-of-week '8': 8 is outside 0-7"),
    ("0 9 * * monday", "day-of-week 'monday': 'monday' is not a value (numbers or sun..sat)"),
    ("mon * * * *", "minute 'mon': 'mon' is not a value (numbers)"),
    ("5/15 * * * *", "minute '5/15': a step needs a range or *, as in 5-59/15"),
    ("*/0 * * * *", "minute '*/0': a step of 0"),
    ("0 17-9 * * *", "hour '17-9': the range 17-9 runs backwards"),
    ("0 9 * * sat-mon", "day-of-week 'sat-mon': the range sat-mon runs backwards"),
    ("0 0 1,,2 * *", "day-of-month '1,,2': '' is not a value"),
    ("0 0 30 feb *", "day-of-month '30' never occurs in month 'feb'"),
    ("0 0 1 * 1", "day-of-month '1' and day-of-week '1' are both restricted"),
])
def test_bad_cron_expressions_say_which_field_and_why(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as error:
        CronExpression.parse(expression)
    assert str(error.value).startswith(message)


def test_february_29th_is_a_day() -> None:
    assert CronExpression.parse("0 0 29 2 *").day_of_month == frozenset({29})
