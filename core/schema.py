"""The vocabulary of a fact namespace: which facts exist, their types and where they come from.

Each source declares its schema; scorecard validation uses it to reject a rule that reads a
fact no collector provides (``github.has_reame``) and to suggest the closest known one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from core.errors import did_you_mean

# Levels of lists and maps below a namespace that evaluation converts (facts are a few levels
# deep; input files may nest 64). Deeper values would crash the CEL runtime's conversion near
# 20,000 levels and Python's recursion far earlier: the namespace is unknown instead.
MAX_FACT_DEPTH = 32


class UnreadableFacts(ValueError):
    """A namespace's facts that cannot be prepared for evaluation; the message says why."""


class FactType(StrEnum):
    BOOL = "bool"
    INT = "int"
    DOUBLE = "double"
    STRING = "string"
    TIMESTAMP = "timestamp"
    STRING_LIST = "list(string)"
    OBJECT_LIST = "list(object)"
    MAP = "map"  # free-form keys below this path


@dataclass(frozen=True)
class Fact:
    """One fact: ``path`` is relative to the namespace (``branch_protection.required_reviews``)."""

    path: str
    type: FactType
    description: str
    api: str = ""  # the call that produces it, for the fact reference
    items: tuple[Fact, ...] = ()  # the fields of each item of a list(object)
    default: Any = None  # the value of a service that has none (declared custom facts)


@dataclass(frozen=True)
class FactSchema:
    namespace: str
    description: str
    facts: tuple[Fact, ...] = ()
    free_form: bool = False
    provider: str = ""  # who provides the facts, for "unknown fact" (default: the collector)
    _paths: dict[str, Fact] = field(init=False, repr=False, compare=False)
    _timestamps: tuple[tuple[str, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_paths", {f.path: f for f in self.facts})
        object.__setattr__(
            self,
            "_timestamps",
            tuple(tuple(f.path.split(".")) for f in self.facts if f.type is FactType.TIMESTAMP),
        )

    @property
    def defaults(self) -> dict[str, Any]:
        """The value of each top-level fact that has a default, for a service without one."""
        return {f.path: f.default for f in self.facts if f.default is not None and "." not in f.path}

    def fact(self, path: str) -> Fact | None:
        """The fact declared at ``path`` (relative to the namespace), if any."""
        return self._paths.get(path)

    def has_below(self, path: str) -> bool:
        """Whether facts are declared below ``path``: it is an object of the namespace."""
        return any(p.startswith(path + ".") for p in self._paths)

    def known_paths(self) -> list[str]:
        """Every selectable path, leaves and the objects above them, with the namespace."""
        paths: set[str] = set()
        for fact in self.facts:
            parts = fact.path.split(".")
            for end in range(1, len(parts) + 1):
                paths.add(".".join([self.namespace, *parts[:end]]))
        return sorted(paths)

    def check(self, path: tuple[str, ...]) -> str | None:
        """None when ``path`` (namespace first) names a declared fact; else why not."""
        if self.free_form or len(path) <= 1:
            return None
        dotted = ".".join(path[1:])
        if dotted in self._paths:
            return None
        if any(p.startswith(dotted + ".") for p in self._paths):
            return None
        for declared, fact in self._paths.items():
            if fact.type is FactType.MAP and dotted.startswith(declared + "."):
                return None
        full = ".".join(path)
        close = did_you_mean(full, self.known_paths())
        hint = f" ({close})" if close else ""
        provider = self.provider or f"the {self.namespace} collector does not provide it"
        return f'unknown fact "{full}": {provider}{hint}'

    def prepare(
        self, values: Mapping[str, Any], only: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """A copy for evaluation: ``None`` removed (absent, not false), timestamps parsed.

        ``only`` is a tree of the keys rules read (see ``select``); the rest is not copied.
        A fact with a default that ``values`` lacks (or holds as null) has its default.
        """
        defaults = self.defaults
        if defaults:
            values = {**defaults, **{k: v for k, v in values.items() if v is not None}}
        cleaned = _without_none(values, 0) if only is None else select(values, only)
        for path in self._timestamps:
            _parse_timestamp_at(cleaned, path)
        return cleaned


def _without_none(value: Any, depth: int) -> Any:
    # Exact type checks: this runs over every fact of every service on each evaluation.
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth >= MAX_FACT_DEPTH and (kind is list or kind is tuple or isinstance(value, Mapping)):
        raise _too_deep()
    # Scalars, most values, are kept without a call.
    depth += 1
    if kind is list or kind is tuple:
        return [v if type(v) in _SCALARS else _without_none(v, depth) for v in value if v is not None]
    if kind is dict or isinstance(value, Mapping):
        return {k: v if type(v) in _SCALARS else _without_none(v, depth)
                for k, v in value.items() if v is not None}
    return value


def _too_deep() -> UnreadableFacts:
    return UnreadableFacts(f"a value is nested more than {MAX_FACT_DEPTH} levels deep")


_SCALARS = frozenset({str, int, float, bool, datetime})


def select(values: Mapping[str, Any], tree: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """The parts of ``values`` named by ``tree`` ({key: subtree, or None for all below}),
    with ``None`` values removed."""
    out: dict[str, Any] = {}
    for key, sub in tree.items():
        value = values.get(key)
        if value is None:
            continue
        if sub is None:
            out[key] = _without_none(value, depth + 1)
        elif isinstance(value, Mapping):
            if depth + 1 >= MAX_FACT_DEPTH:
                raise _too_deep()
            out[key] = select(value, sub, depth + 1)
        else:
            # A rule selects below a scalar or a list: CEL reports the type error.
            out[key] = _without_none(value, depth + 1)
    return out


def _parse_timestamp_at(values: dict[str, Any], path: tuple[str, ...]) -> None:
    node: Any = values
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return
    raw = node.get(path[-1])
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            return  # left as a string; a rule comparing it to a timestamp reports an error
        node[path[-1]] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    elif isinstance(raw, datetime) and raw.tzinfo is None:
        node[path[-1]] = raw.replace(tzinfo=UTC)


def facts(*items: tuple[str, FactType, str, str] | Fact) -> tuple[Fact, ...]:
    """Shorthand for declaring a schema: ``(path, type, description, api)`` tuples."""
    return tuple(item if isinstance(item, Fact) else Fact(*item) for item in items)


def merge(schemas: Iterable[FactSchema]) -> dict[str, FactSchema]:
    return {schema.namespace: schema for schema in schemas}
