"""Functions that rule expressions can call, on top of CEL's standard library.

Functions that depend on the evaluation clock (``days_since``) are built per evaluation from
the clock, so an evaluation with ``--now`` is reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import semver

from core.registry import Registry


@dataclass(frozen=True)
class RuleFunction:
    """A CEL function: its signature as users write it, what it does, and a factory."""

    signature: str
    doc: str
    factory: Callable[[datetime], Callable[..., Any]]
    reads_clock: bool = False  # its result depends on `now`: re-evaluated on every run


functions: Registry[RuleFunction] = Registry("rule function")


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        raise TypeError(f"expected a timestamp or an ISO-8601 string, got {type(value).__name__}")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _version(value: Any) -> semver.Version:
    if not isinstance(value, str):
        raise TypeError(f"expected a version string, got {type(value).__name__}")
    text = value.strip().removeprefix("v").removeprefix("V")
    try:
        return semver.Version.parse(text, optional_minor_and_patch=True)
    except ValueError:
        raise ValueError(f"{value!r} is not a semantic version") from None


def _register(name: str, signature: str, doc: str, *, reads_clock: bool = False) -> Callable[
    [Callable[[datetime], Callable[..., Any]]], Callable[[datetime], Callable[..., Any]]
]:
    def decorator(
        factory: Callable[[datetime], Callable[..., Any]],
    ) -> Callable[[datetime], Callable[..., Any]]:
        functions.register(name)(RuleFunction(signature, doc, factory, reads_clock))
        return factory

    return decorator


@_register("days_since", "days_since(timestamp|string) -> double", "Days from a moment to `now`.",
           reads_clock=True)
def _days_since(now: datetime) -> Callable[[Any], float]:
    def days_since(moment: Any) -> float:
        return (now - _as_datetime(moment)).total_seconds() / 86400.0

    return days_since


@_register(
    "hours_since", "hours_since(timestamp|string) -> double", "Hours from a moment to `now`.",
    reads_clock=True,
)
def _hours_since(now: datetime) -> Callable[[Any], float]:
    def hours_since(moment: Any) -> float:
        return (now - _as_datetime(moment)).total_seconds() / 3600.0

    return hours_since


@_register(
    "semver_compare",
    "semver_compare(string, string) -> int",
    "-1, 0 or 1 as the first semantic version is lower, equal or higher ('v' prefix allowed).",
)
def _semver_compare(now: datetime) -> Callable[[Any, Any], int]:
    def semver_compare(left: Any, right: Any) -> int:
        return _version(left).compare(_version(right))

    return semver_compare


@_register(
    "semver_at_least",
    "semver_at_least(string, string) -> bool",
    "True when the first semantic version is at least the second: "
    "`semver_at_least(service.labels.sdk_version, \"2.4.0\")`.",
)
def _semver_at_least(now: datetime) -> Callable[[Any, Any], bool]:
    def semver_at_least(version: Any, minimum: Any) -> bool:
        return _version(version).compare(_version(minimum)) >= 0

    return semver_at_least


def bind(now: datetime) -> dict[str, Callable[..., Any]]:
    """Every registered function, bound to the evaluation clock."""
    return {name: spec.factory(now) for name, spec in functions.items()}


# The variable bound to the evaluation clock (``now - timestamp(x) > duration("24h")``).
NOW = "now"


def clock_names() -> frozenset[str]:
    """The identifiers through which an expression reads the clock: ``now`` and every
    function that reads it."""
    return frozenset({NOW, *(name for name, spec in functions.items() if spec.reads_clock)})
