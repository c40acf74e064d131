"""Cron expressions with standard semantics, and what each scheduler must be told to agree.

Standard (Vixie cron, Celery's ``crontab``): five fields ``minute hour day-of-month month
day-of-week``; each field is ``*``, a value, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a
comma list of those. Day of week 0 and 7 are Sunday, 1 is Monday; names ``sun``..``sat`` and
``jan``..``dec`` are accepted. APScheduler counts weekdays from Monday = 0, so no field is
handed over as written: each is parsed here into the values it allows, and both schedulers are
given those values.
"""

from __future__ import annotations

import re
from typing import NamedTuple

FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# The longest each month can be; February 29th exists in leap years.
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_PART = re.compile(r"^(?:(?P<star>\*)|(?P<first>[0-9a-z]+)(?:-(?P<last>[0-9a-z]+))?)(?:/(?P<step>[0-9]+))?$")


class _Field(NamedTuple):
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_SPECS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day-of-week", 0, 7, WEEKDAYS, 0),  # 7 is Sunday too
)


class CronExpression(NamedTuple):
    """A parsed cron expression: the values each field allows; ``None`` for a field written ``*``.

    Day-of-week values are 0 (Sunday) to 6 (Saturday), 7 folded into 0.
    """

    minute: frozenset[int] | None
    hour: frozenset[int] | None
    day_of_month: frozenset[int] | None
    month: frozenset[int] | None
    day_of_week: frozenset[int] | None

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text``, or raise ValueError saying which field is wrong and why."""
        fields = text.split()
        if len(fields) != len(FIELDS):
            raise ValueError(f"expected 5 fields ({' '.join(FIELDS)}), found {len(fields)}")
        minute, hour, day_of_month, month, day_of_week = (
            _parse_field(field, spec) for field, spec in zip(fields, _SPECS, strict=True))
        if day_of_week is not None:
            day_of_week = frozenset(day % 7 for day in day_of_week)
        if not (fields[2].startswith("*") or fields[4].startswith("*")):
            # Vixie cron fires when either day field matches, Celery and APScheduler when both do.
            raise ValueError(f"day-of-month {fields[2]!r} and day-of-week {fields[4]!r} are both "
                             "restricted: cron fires when either matches, Celery when both do; "
                             'make one of them "*"')
        months = month if month is not None else range(1, 13)
        days = day_of_month if day_of_month is not None else {1}
        if not any(day <= DAYS_IN_MONTH[m - 1] for m in months for day in days):
            raise ValueError(f"day-of-month {fields[2]!r} never occurs in month {fields[3]!r}")
        return cls(minute, hour, day_of_month, month, day_of_week)

    def for_apscheduler(self) -> dict[str, str]:
        """Keyword arguments of APScheduler's ``CronTrigger`` for the same instants."""
        return {
            "minute": _numbers(self.minute), "hour": _numbers(self.hour),
            "day": _numbers(self.day_of_month), "month": _numbers(self.month),
            "day_of_week": apscheduler_day_of_week(self.day_of_week),
        }

    def for_celery(self) -> dict[str, str | set[int]]:
        """Keyword arguments of Celery's ``crontab`` for the same instants."""

        def values(field: frozenset[int] | None) -> str | set[int]:
            # "*" as such: crontab takes a faster path when day and month are both "*".
            return "*" if field is None else set(field)

        return {
            "minute": values(self.minute), "hour": values(self.hour),
            "day_of_month": values(self.day_of_month), "month_of_year": values(self.month),
            "day_of_week": values(self.day_of_week),
        }


def apscheduler_day_of_week(days: frozenset[int] | None) -> str:
    """Standard weekdays (0 = Sunday) as APScheduler's names: its numbers start at Monday = 0."""
    if days is None:
        return "*"
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def _numbers(field: frozenset[int] | None) -> str:
    return "*" if field is None else ",".join(str(value) for value in sorted(field))


def _parse_field(text: str, spec: _Field) -> frozenset[int] | None:
    if text == "*":
        return None
    values: set[int] = set()
    for part in text.split(","):
        match = _PART.match(part.lower())
        if match is None:
            raise ValueError(f"{spec.name} {text!r}: {part!r} is not a value, a range a-b, or a "
                             "step */n or a-b/n")
        if match["star"]:
            first, last = spec.low, spec.high
        else:
            first = _value(match["first"], spec, text)
            last = _value(match["last"], spec, text) if match["last"] else first
            if spec.names is WEEKDAYS and match["last"] == "sun" and first > 0:
                last = 7  # fri-sun: Sunday closes the week
            if match["step"] and not match["last"]:
                raise ValueError(f"{spec.name} {text!r}: a step needs a range or *, "
                                 f"as in {first}-{spec.high}/{match['step']}")
        if last < first:
            raise ValueError(f"{spec.name} {text!r}: the range {part} runs backwards")
        step = int(match["step"]) if match["step"] else 1
        if step == 0:
            raise ValueError(f"{spec.name} {text!r}: a step of 0")
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _value(token: str, spec: _Field, text: str) -> int:
    if token.isdigit():
        value = int(token)
        if not spec.low <= value <= spec.high:
            raise ValueError(f"{spec.name} {text!r}: {value} is outside {spec.low}-{spec.high}")
        return value
    if token in spec.names:
        return spec.names.index(token) + spec.name_base
    allowed = f"numbers or {spec.names[0]}..{spec.names[-1]}" if spec.names else "numbers"
    raise ValueError(f"{spec.name} {text!r}: {token!r} is not a value ({allowed})")
