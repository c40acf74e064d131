"""Custom facts, kept per key from two origins: the facts file and pushes.

Pure rules, no database: what a service's ``custom`` namespace is, given what each origin
holds of each key (``resolve``); what a push changes (``plan_push``, with the merge rule of
``merge``); what a new reading of the facts file changes (``plan_file``); declared facts
checked and converted at the door (``coerce_declared``); and the limits of a push.

Precedence: where the file and a push both hold a key, the more recent value wins. A pushed
value dates from its arrival; a file value from when that key's value in the file changed.
A push of ``null`` removes the key (it wins over an older file value until the file's value
changes); a key the file stops holding leaves any pushed value in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import InputError, Problem, did_you_mean
from core.schema import FactSchema, FactType
from engine.settings import has_type
from engine.storage.models import FactOrigin

MAX_PUSH_KEYS = 1_000  # top-level keys in one push
MAX_PUSH_BYTES = 1_048_576  # the pushed facts as JSON
MAX_KEY_LENGTH = 200  # characters of a top-level key
MAX_SERVICE_KEYS = 10_000  # custom facts of one service, from the file and pushes
MAX_SERVICE_BYTES = 4_194_304  # the service's custom facts as JSON, summed per key
EXACT_DOUBLE = 2**53  # integers up to this convert to a double (and back) without loss


@dataclass(frozen=True)
class CustomValue:
    """What one origin holds of one key: a value, or ``removed``, since ``at``. ``size``:
    the value's length as JSON (``json_size``), -1 until measured."""

    key: str
    origin: FactOrigin
    value: Any
    removed: bool
    at: datetime
    size: int = -1

    @property
    def measured(self) -> int:
        return self.size if self.size >= 0 else json_size(self.value)


class FactsLimitError(InputError):
    """A push over one of the limits above. ``too_large``: a size (HTTP 413), else a count
    (HTTP 422)."""

    def __init__(self, message: str, *, too_large: bool) -> None:
        super().__init__([Problem("facts", None, message)])
        self.too_large = too_large


def json_size(value: Any) -> int:
    """The length of a value as compact JSON: what the size limits count."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


def same(left: Any, right: Any) -> bool:
    """Equal as JSON: ``1``, ``1.0`` and ``true`` differ (Python's ``==`` says they do not)."""
    return _canonical(left) == _canonical(right)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def resolve(entries: Iterable[CustomValue]) -> dict[str, CustomValue]:
    """The value a rule reads of each key, from the latest entry of each (key, origin).

    The most recent wins; at the same moment a push wins over the file. A file entry that is
    ``removed`` only means the file stopped holding the key: it hides nothing. A push that is
    ``removed`` (``null`` or DELETE) hides older values.
    """
    best: dict[str, CustomValue] = {}
    for entry in entries:
        if entry.removed and entry.origin is FactOrigin.FILE:
            continue
        held = best.get(entry.key)
        if held is None or _rank(entry) > _rank(held):
            best[entry.key] = entry
    return {key: entry for key, entry in sorted(best.items()) if not entry.removed}


def _rank(entry: CustomValue) -> tuple[datetime, bool]:
    return entry.at, entry.origin is FactOrigin.PUSH


def merge(current: Any, pushed: Any) -> Any:
    """A pushed value merged into the current one: objects are merged key by key, at every
    depth; ``null`` removes a key; anything else (a scalar, a list) replaces what was there."""
    if not isinstance(pushed, dict):
        return pushed
    merged = dict(current) if isinstance(current, dict) else {}
    for key, value in pushed.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(merged.get(key), value)
    return merged


def plan_push(
    resolved: Mapping[str, CustomValue], facts: Mapping[str, Any], now: datetime
) -> list[CustomValue]:
    """The entries a push appends: one per key whose value it changes (merged into the value
    as rules read it, whichever origin that came from), a removal for each ``null``."""
    changes: list[CustomValue] = []
    for key, value in facts.items():
        held = resolved.get(key)
        if value is None:
            if held is not None:
                changes.append(CustomValue(key, FactOrigin.PUSH, None, True, now))
            continue
        merged = merge(held.value if held is not None else None, value)
        if held is not None and held.origin is FactOrigin.PUSH and same(held.value, merged):
            continue  # nothing new: the pushed value stands, dated from when it arrived
        changes.append(CustomValue(key, FactOrigin.PUSH, merged, False, now))
    return changes


def plan_file(
    held: Mapping[str, CustomValue], values: Mapping[str, Any] | None, at: datetime
) -> list[CustomValue]:
    """The entries a reading of the facts file appends for one service: each key whose value
    in the file changed (dated ``at``), and a removal for each key it no longer holds."""
    values = values or {}
    changes = [CustomValue(key, FactOrigin.FILE, value, False, at)
               for key, value in values.items()
               if (old := held.get(key)) is None or old.removed or not same(old.value, value)]
    changes += [CustomValue(key, FactOrigin.FILE, None, True, at)
                for key, old in held.items() if not old.removed and key not in values]
    return changes


def apply(entries: Iterable[CustomValue], changes: Iterable[CustomValue]) -> list[CustomValue]:
    """The latest entry of each (key, origin) once ``changes`` are appended."""
    latest = {(e.key, e.origin): e for e in entries}
    latest.update({(c.key, c.origin): c for c in changes})
    return list(latest.values())


def check_push(facts: Mapping[str, Any]) -> None:
    """Refuse a push over the per-push limits (FactsLimitError names the limit)."""
    if len(facts) > MAX_PUSH_KEYS:
        raise FactsLimitError(f"a push holds at most {MAX_PUSH_KEYS:,} keys, got {len(facts):,}; "
                              "push in parts", too_large=False)
    long = [key for key in facts if len(key) > MAX_KEY_LENGTH]
    if long:
        raise FactsLimitError(f'key "{long[0][:40]}...": at most {MAX_KEY_LENGTH} characters '
                              f"per key, got {len(long[0]):,}", too_large=False)
    size = json_size(dict(facts))
    if size > MAX_PUSH_BYTES:
        raise FactsLimitError(f"the pushed facts are {size:,} bytes as JSON; at most "
                              f"{MAX_PUSH_BYTES:,} per push", too_large=True)


def check_service(service: str, before: Mapping[str, CustomValue],
                  after: Mapping[str, CustomValue]) -> None:
    """Refuse a push that takes a service over its limits; one that shrinks or keeps a
    service's facts is always taken, so a service over a limit can be repaired."""
    if len(after) > MAX_SERVICE_KEYS and len(after) > len(before):
        raise FactsLimitError(f'service "{service}" would hold {len(after):,} custom facts; at '
                              f"most {MAX_SERVICE_KEYS:,} per service", too_large=False)
    size, was = _total(after), _total(before)
    if size > MAX_SERVICE_BYTES and size > was:
        raise FactsLimitError(f'service "{service}" would hold {size:,} bytes of custom facts '
                              f"as JSON; at most {MAX_SERVICE_BYTES:,} per service",
                              too_large=True)


def _total(values: Mapping[str, CustomValue]) -> int:
    return sum(entry.measured for entry in values.values())


def coerce_declared(
    values: Mapping[str, Any], schema: FactSchema | None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Values checked against the declared custom facts, converted where lossless (an
    integer for a ``double``, a whole number for an ``int``), and a problem per key that is
    not declared or does not convert. Free-form (nothing declared): values as they are."""
    if schema is None or schema.free_form:
        return dict(values), []
    declared = {fact.path: fact.type for fact in schema.facts if "." not in fact.path}
    converted: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in values.items():
        kind = declared.get(key)
        if kind is None:
            close = did_you_mean(key, list(declared))
            hint = f" ({close})" if close else ""
            known = ", ".join(sorted(declared)) or "none"
            problems.append((key, f"not declared in custom_facts{hint}; declared: {known}"))
        elif value is None:
            converted[key] = None
        else:
            ok, result = convert(value, kind)
            if ok:
                converted[key] = result
            else:
                problems.append((key, f"declared in custom_facts as {kind.value}, got "
                                      f"{type(value).__name__} {value!r:.100}{result}"))
    return converted, problems


def convert(value: Any, kind: FactType) -> tuple[bool, Any]:
    """(True, the value as ``kind``) when it is one or converts without loss; else (False,
    why it does not convert, or "")."""
    if isinstance(value, bool) or kind not in (FactType.DOUBLE, FactType.INT):
        return (True, value) if has_type(value, kind) else (False, "")
    if kind is FactType.DOUBLE and isinstance(value, int):
        if abs(value) > EXACT_DOUBLE:
            return False, " (beyond ±2^53: not exact as a double)"
        return True, float(value)
    if kind is FactType.INT and isinstance(value, float):
        if value.is_integer() and abs(value) <= EXACT_DOUBLE:
            return True, int(value)
        return False, " (not a whole number)" if not value.is_integer() else ""
    return (True, value) if has_type(value, kind) else (False, "")
