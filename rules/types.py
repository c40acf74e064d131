"""CEL's types as the checker knows them, and where they come from: the declared types of
facts (``Environment``), the runtime's functions and methods and what they take
(``GLOBAL``, ``METHODS``), and the types of the values of facts themselves."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from core.schema import FactSchema, FactType


@dataclass(frozen=True, slots=True)
class CelType:
    """A CEL type: ``int``, ``list(string)``, ``map(string, dyn)``; ``fact`` is an object of a
    namespace's schema (``github.branch_protection``), selected into by path."""

    name: str
    args: tuple[CelType, ...] = ()
    path: tuple[str, ...] = ()  # for ``fact``: namespace first

    def __str__(self) -> str:
        if self.name == "fact":
            return "map"
        return f"{self.name}({', '.join(map(str, self.args))})" if self.args else self.name


DYN, BOOL, INT, UINT, DOUBLE = CelType("dyn"), CelType("bool"), CelType("int"), CelType("uint"), CelType("double")
STRING, BYTES, NULL = CelType("string"), CelType("bytes"), CelType("null_type")
TIMESTAMP, DURATION, TYPE = CelType("timestamp"), CelType("duration"), CelType("type")
NUMBERS = frozenset({INT, UINT, DOUBLE})


def list_of(item: CelType) -> CelType:
    return CelType("list", (item,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


FACT_TYPES: dict[FactType, CelType] = {
    FactType.BOOL: BOOL, FactType.INT: INT, FactType.DOUBLE: DOUBLE, FactType.STRING: STRING,
    FactType.TIMESTAMP: TIMESTAMP, FactType.STRING_LIST: list_of(STRING),
    FactType.OBJECT_LIST: list_of(DYN), FactType.MAP: map_of(STRING, DYN),
}


ANY = frozenset({DYN})  # a parameter that takes any type
_LIST, _MAP = CelType("list"), CelType("map")  # any list, any map (as parameter types)
SIZED = frozenset({STRING, BYTES, _LIST, _MAP})
CONVERTIBLE = frozenset({INT, UINT, DOUBLE, STRING})

# The functions and methods the runtime defines, with the types it takes them on: anything
# else is "Undefined function" when the rule runs. (It has no string extensions such as
# lowerAscii() or split(), no cel.bind() and no time-zone arguments.)
GLOBAL: dict[str, tuple[frozenset[CelType], CelType]] = {
    "size": (SIZED, INT),
    "int": (CONVERTIBLE, INT),
    "uint": (CONVERTIBLE, UINT),
    "double": (CONVERTIBLE, DOUBLE),
    "string": (CONVERTIBLE | {BYTES, TIMESTAMP, DURATION}, STRING),
    "bytes": (frozenset({STRING, BYTES}), BYTES),
    "timestamp": (frozenset({STRING, TIMESTAMP}), TIMESTAMP),
    "duration": (frozenset({STRING, DURATION}), DURATION),
    "type": (ANY, TYPE),
    "dyn": (ANY, DYN),
}
_TIME_PARTS = ("getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear")
_CLOCK_PARTS = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")
# method -> (receiver types, argument types, result)
METHODS: dict[str, tuple[frozenset[CelType], tuple[frozenset[CelType], ...], CelType]] = {
    "size": (SIZED, (), INT),
    **{name: (frozenset({STRING}), (frozenset({STRING}),), BOOL)
       for name in ("contains", "startsWith", "endsWith", "matches")},
    **{name: (frozenset({TIMESTAMP}), (), INT) for name in _TIME_PARTS},
    **{name: (frozenset({TIMESTAMP, DURATION}), (), INT) for name in _CLOCK_PARTS},
}
MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})
MAP_KEYS = frozenset({STRING, INT, UINT, BOOL})
_SIGNATURE = re.compile(r"^(\w+)\((.*)\)\s*->\s*(\w+)$")
SCALARS = {"bool": BOOL, "int": INT, "uint": UINT, "double": DOUBLE, "string": STRING,
            "bytes": BYTES, "timestamp": TIMESTAMP, "duration": DURATION}


def accepts(accepted: frozenset[CelType], given: CelType) -> bool:
    """Whether a parameter of the ``accepted`` types takes a value of type ``given``."""
    if given == DYN or DYN in accepted or given in accepted:
        return True
    kind = map_of(STRING, DYN) if given.name == "fact" else given
    return CelType(kind.name) in accepted and kind.name in ("list", "map")


def names_of(accepted: frozenset[CelType]) -> str:
    return " or ".join(sorted(article(kind) for kind in accepted))


@dataclass(frozen=True)
class Signature:
    """A rule function: the types each argument accepts, and its result."""

    parameters: tuple[frozenset[CelType], ...]
    result: CelType


def signature(text: str) -> tuple[str, Signature] | None:
    """``days_since(timestamp|string) -> double`` as a name and a Signature."""
    match = _SIGNATURE.match(text.strip())
    if not match:
        return None
    parameters = []
    for parameter in filter(None, (p.strip() for p in match.group(2).split(","))):
        parameters.append(frozenset(SCALARS.get(t.strip(), DYN) for t in parameter.split("|")))
    return match.group(1), Signature(tuple(parameters), SCALARS.get(match.group(3), DYN))


_ABSENT = object()


@lru_cache(maxsize=1)
def rule_functions() -> dict[str, Signature]:
    """The signatures of the registered rule functions (``days_since`` ...)."""
    from rules.functions import functions

    found = dict(filter(None, (signature(spec.signature) for _, spec in functions.items())))
    return found


class Environment:
    """The types of the names an expression may read: fact namespaces, ``now`` and functions."""

    def __init__(
        self,
        schemas: Mapping[str, FactSchema],
        functions: Mapping[str, Signature] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self.schemas = schemas
        self.functions = functions if functions is not None else rule_functions()
        self.values = values  # actual facts (diagnosis of a run-time error): their own types

    def identifier(self, name: str) -> CelType:
        if name == "now":
            return TIMESTAMP
        if self.values is not None:
            return self.select((name,)) if name in self.values else DYN
        if name in self.schemas:
            return CelType("fact", path=(name,))
        return DYN

    def select(self, path: tuple[str, ...]) -> CelType:
        """The type of the fact at ``path`` (namespace first)."""
        if self.values is not None:  # the types of the values themselves
            node: Any = self.values
            for part in path:
                node = node.get(part, _ABSENT) if isinstance(node, Mapping) else _ABSENT
            if node is _ABSENT:
                return DYN
            return CelType("fact", path=path) if isinstance(node, Mapping) else type_of_value(node)
        schema = self.schemas.get(path[0])
        if schema is None:
            return DYN
        dotted = ".".join(path[1:])
        fact = schema.fact(dotted)
        if fact is not None:
            return FACT_TYPES.get(fact.type, DYN)
        if schema.has_below(dotted):
            return CelType("fact", path=path)
        return DYN  # free-form, below a map, or unknown (the fact check reports it)


def type_of_value(value: Any) -> CelType:
    """The CEL type of a fact's value, as the runtime converts it."""
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int):
        return INT
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return STRING
    if isinstance(value, bytes):
        return BYTES
    if value is None:
        return NULL
    if isinstance(value, list | tuple):
        kinds = {type_of_value(v) for v in value[:50]}
        return list_of(kinds.pop() if len(kinds) == 1 else DYN)
    if isinstance(value, Mapping):
        return map_of(STRING, DYN)
    name = type(value).__name__
    return TIMESTAMP if name == "datetime" else DURATION if name == "timedelta" else DYN


def unify(first: CelType, second: CelType) -> CelType | None:
    """The one type of two values that may take each other's place, or None."""
    first = map_of(STRING, DYN) if first.name == "fact" else first
    second = map_of(STRING, DYN) if second.name == "fact" else second
    if first == second:
        return first
    if DYN in (first, second):
        return DYN
    if first.name == second.name and first.name in ("list", "map"):
        return CelType(first.name, tuple(unify(a, b) or DYN for a, b in zip(first.args, second.args,
                                                                            strict=True)))
    return None


def article(kind: CelType) -> str:
    """``an int``, ``a string``."""
    text = str(kind)
    return f"an {text}" if text[0] in "aeio" else f"a {text}"  # a uint


def comparable(left: CelType, right: CelType) -> bool:
    if DYN in (left, right) or NULL in (left, right) or left == right:
        return True
    if left in NUMBERS and right in NUMBERS:
        return True
    return left.name == right.name and left.name in ("list", "map")


