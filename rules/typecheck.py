"""Static type checking of rule expressions against the declared types of the facts they read.

``days_since(github.last_commit_at) + 1 < 60.0`` parses and compiles, then fails for every
service at run time (``double + int``: CEL never converts between number types). This module
finds such mistakes when scorecards load, names the sub-expression and proposes the fix.

Why a checker of our own rather than CEL's: the runtime (``common-expression-language``, Rust)
has no type checker. Google's ``cel-expr-python`` (C++) has one, but it disagrees with the
runtime that evaluates our rules, so it would refuse shipped rules that run correctly: it
rejects comparisons between number types (``days_since(x) <= 90``, which the runtime
evaluates), with no option to allow them nor a way to add the overloads; it types
``has(github.x)`` as the fact's own type when facts are declared as qualified names; and it is
a 50 MB native package for checking alone. So this is a small Pratt parser for CEL's
expression grammar (the runtime's parser stays the authority on syntax: anything this one
cannot parse is not checked) and a checker that follows the runtime's rules:

- arithmetic needs both operands of one type (``int + int``, ``double * double``, ``string +
  string``, ``timestamp - timestamp``); ``int + double`` is an error;
- ordering and equality between int, uint and double are allowed (the runtime compares them);
  between a string and a number, a bool and a number, a timestamp and a string, they are
  errors (the runtime raises, or quietly answers false for ``==``);
- ``&&``, ``||``, ``!`` and the condition of ``? :`` need a bool, and so does a whole rule;
- only the functions and methods the runtime defines, on the types it defines them for
  (``_GLOBAL``, ``_METHODS``): it has no string extensions and no ``cel.bind()``;
- anything of unknown type (``dyn``: free-form facts, map values) passes.

tests/rules/test_typecheck_agrees_with_runtime.py compares the checker with the runtime on
generated expressions; the differences kept on purpose are listed in docs/rules.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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


# ---------------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""
    (?P<string>[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
    | (?P<comment>//[^\n]*)
    | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?|\d+)[uU]?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<space>\s+)
    | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?.:,()\[\]{}])
    """,
    re.VERBOSE,
)


@dataclass(slots=True)
class Node:
    """A node of the syntax tree; ``start``/``end`` are offsets in the source, ``at`` is the
    offset of its operator (where an error points)."""

    kind: str  # literal, ident, select, call, index, list, map, unary, binary, ternary
    start: int
    end: int
    text: str = ""  # operator, identifier, field or function name, literal kind
    children: list[Node] = field(default_factory=list)
    at: int = 0
    member: bool = False  # a method call: children[0] is the receiver


class _Unparsable(Exception):
    pass


_BINARY = {"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3,
           "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        for match in _TOKEN.finditer(source):
            kind = match.lastgroup or ""
            if kind not in ("space", "comment"):
                self.tokens.append((kind, match.group(), match.start()))
        if sum(len(m.group()) for m in _TOKEN.finditer(source)) != len(source):
            raise _Unparsable
        self.pos = 0
        self.length = len(source)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "", self.length)

    def take(self, text: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token[0] == "end" or (text is not None and token[1] != text):
            raise _Unparsable
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self.expression()
        if self.pos != len(self.tokens):
            raise _Unparsable
        return node

    def expression(self) -> Node:
        condition = self.binary(1)
        if self.peek()[1] != "?":
            return condition
        at = self.take("?")[2]
        then = self.binary(1)
        self.take(":")
        otherwise = self.expression()
        return Node("ternary", condition.start, otherwise.end, "?:", [condition, then, otherwise], at)

    def binary(self, precedence: int) -> Node:
        left = self.unary()
        while True:
            kind, text, offset = self.peek()
            level = _BINARY.get(text) if kind in ("op", "ident") else None
            if level is None or level < precedence:
                return left
            self.pos += 1
            right = self.binary(level + 1)
            left = Node("binary", left.start, right.end, text, [left, right], offset)

    def unary(self) -> Node:
        text, offset = self.peek()[1:]
        if text in ("!", "-"):
            self.pos += 1
            operand = self.unary()
            # ``-1`` and ``-2.5`` are number literals; ``-"a"`` and ``-1u`` stay negations
            # (which the runtime refuses).
            if text == "-" and operand.kind == "literal" and operand.text in ("int", "double") \
                    and operand.start == offset + 1:
                operand.start = offset
                return operand
            return Node("unary", offset, operand.end, text, [operand], offset)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            text = self.peek()[1]
            if text == ".":
                at = self.take()[2]
                kind, name, offset = self.take()
                if kind != "ident":
                    raise _Unparsable
                if self.peek()[1] == "(":
                    args, end = self.arguments("(", ")")
                    node = Node("call", node.start, end, name, [node, *args], offset, member=True)
                else:
                    node = Node("select", node.start, offset + len(name), name, [node], at)
            elif text == "[":
                at = self.take()[2]
                index = self.expression()
                end = self.take("]")[2] + 1
                node = Node("index", node.start, end, "[]", [node, index], at)
            else:
                return node

    def arguments(self, open_: str, close: str) -> tuple[list[Node], int]:
        self.take(open_)
        items: list[Node] = []
        while self.peek()[1] != close:
            items.append(self.expression())
            if self.peek()[1] == ":":  # a map entry: key, value pairs in order
                self.take(":")
                items.append(self.expression())
            if self.peek()[1] != ",":
                break
            self.take(",")
        return items, self.take(close)[2] + 1

    def primary(self) -> Node:
        kind, text, offset = self.peek()
        if kind == "number":
            self.pos += 1
            return Node("literal", offset, offset + len(text), _number_kind(text))
        if kind == "string":
            self.pos += 1
            prefix = text[:len(text) - len(text.lstrip("rRbB"))]
            literal = "bytes" if "b" in prefix.lower() else "string"
            return Node("literal", offset, offset + len(text), literal)
        if text == "(":
            self.pos += 1
            inner = self.expression()
            end = self.take(")")[2] + 1
            inner.start, inner.end = offset, end  # the brackets belong to the sub-expression
            return inner
        if text == "[":
            items, end = self.arguments("[", "]")
            return Node("list", offset, end, "[]", items, offset)
        if text == "{":
            items, end = self.arguments("{", "}")
            return Node("map", offset, end, "{}", items, offset)
        if text == ".":
            self.pos += 1
            kind, text, offset = self.peek()
        if kind != "ident":
            raise _Unparsable
        self.pos += 1
        if text in ("true", "false"):
            return Node("literal", offset, offset + len(text), "bool")
        if text == "null":
            return Node("literal", offset, offset + len(text), "null_type")
        if self.peek()[1] == "(":
            args, end = self.arguments("(", ")")
            return Node("call", offset, end, text, args, offset)
        return Node("ident", offset, offset + len(text), text)


def _number_kind(text: str) -> str:
    if text[-1] in "uU":
        return "uint"
    if text[:2].lower() != "0x" and ("." in text or "e" in text.lower()):
        return "double"
    return "int"


def parse(source: str) -> Node | None:
    """The syntax tree of ``source``, or None when this parser cannot read it."""
    try:
        return _Parser(source).parse()
    except (_Unparsable, RecursionError):
        return None


# ---------------------------------------------------------------------------------- checking


@dataclass(frozen=True, slots=True)
class TypeProblem:
    """A type error: where (``start``/``end`` of the sub-expression, offsets), what, the fix."""

    start: int
    end: int
    subexpression: str
    message: str
    fix: str = ""
    # The sub-expression is well typed itself, but is not a bool where one is needed (an
    # operand of && or ||, a condition, a whole rule).
    needs_bool: bool = False

    def describe(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f'type error in "{self.subexpression}": {self.message}{fix}'


ANY = frozenset({DYN})  # a parameter that takes any type
_LIST, _MAP = CelType("list"), CelType("map")  # any list, any map (as parameter types)
_SIZED = frozenset({STRING, BYTES, _LIST, _MAP})
_CONVERTIBLE = frozenset({INT, UINT, DOUBLE, STRING})

# The functions and methods the runtime defines, with the types it takes them on: anything
# else is "Undefined function" when the rule runs. (It has no string extensions such as
# lowerAscii() or split(), no cel.bind() and no time-zone arguments.)
_GLOBAL: dict[str, tuple[frozenset[CelType], CelType]] = {
    "size": (_SIZED, INT),
    "int": (_CONVERTIBLE, INT),
    "uint": (_CONVERTIBLE, UINT),
    "double": (_CONVERTIBLE, DOUBLE),
    "string": (_CONVERTIBLE | {BYTES, TIMESTAMP, DURATION}, STRING),
    "bytes": (frozenset({STRING, BYTES}), BYTES),
    "timestamp": (frozenset({STRING, TIMESTAMP}), TIMESTAMP),
    "duration": (frozenset({STRING, DURATION}), DURATION),
    "type": (ANY, TYPE),
    "dyn": (ANY, DYN),
}
_TIME_PARTS = ("getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear")
_CLOCK_PARTS = ("getHours", "getMinutes", "getSeconds", "getMilliseconds")
# method -> (receiver types, argument types, result)
_METHODS: dict[str, tuple[frozenset[CelType], tuple[frozenset[CelType], ...], CelType]] = {
    "size": (_SIZED, (), INT),
    **{name: (frozenset({STRING}), (frozenset({STRING}),), BOOL)
       for name in ("contains", "startsWith", "endsWith", "matches")},
    **{name: (frozenset({TIMESTAMP}), (), INT) for name in _TIME_PARTS},
    **{name: (frozenset({TIMESTAMP, DURATION}), (), INT) for name in _CLOCK_PARTS},
}
_MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter"})
_MAP_KEYS = frozenset({STRING, INT, UINT, BOOL})
_SIGNATURE = re.compile(r"^(\w+)\((.*)\)\s*->\s*(\w+)$")
_SCALARS = {"bool": BOOL, "int": INT, "uint": UINT, "double": DOUBLE, "string": STRING,
            "bytes": BYTES, "timestamp": TIMESTAMP, "duration": DURATION}


def _accepts(accepted: frozenset[CelType], given: CelType) -> bool:
    """Whether a parameter of the ``accepted`` types takes a value of type ``given``."""
    if given == DYN or DYN in accepted or given in accepted:
        return True
    kind = map_of(STRING, DYN) if given.name == "fact" else given
    return CelType(kind.name) in accepted and kind.name in ("list", "map")


def _names(accepted: frozenset[CelType]) -> str:
    return " or ".join(sorted(_a(kind) for kind in accepted))


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
        parameters.append(frozenset(_SCALARS.get(t.strip(), DYN) for t in parameter.split("|")))
    return match.group(1), Signature(tuple(parameters), _SCALARS.get(match.group(3), DYN))


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


class _Checker:
    def __init__(self, source: str, env: Environment) -> None:
        self.source, self.env = source, env
        self.problems: list[TypeProblem] = []
        self.scopes: list[dict[str, CelType]] = []
        self.dynamic = False  # some part's type is known only at run time

    def text(self, node: Node) -> str:
        return " ".join(self.source[node.start:node.end].split())

    def report(self, node: Node, message: str, fix: str = "", needs_bool: bool = False) -> CelType:
        self.problems.append(TypeProblem(node.start, node.end, self.text(node), message, fix,
                                         needs_bool))
        return DYN

    def check(self, node: Node) -> CelType:
        method: Callable[[Node], CelType] = getattr(self, "_" + node.kind)
        found = method(node)
        if found == DYN:
            self.dynamic = True
        return found

    def need_bool(self, node: Node, kind: CelType, message: str) -> None:
        if kind not in (BOOL, DYN):
            self.report(node, message, _to_bool(self.text(node), kind), needs_bool=True)

    def _literal(self, node: Node) -> CelType:
        return _SCALARS.get(node.text, NULL if node.text == "null_type" else DYN)

    def _ident(self, node: Node) -> CelType:
        for scope in reversed(self.scopes):
            if node.text in scope:
                return scope[node.text]
        return self.env.identifier(node.text)

    def _select(self, node: Node) -> CelType:
        operand = self.check(node.children[0])
        if operand.name == "fact":
            return self.env.select((*operand.path, node.text))
        if operand.name == "map":
            return operand.args[1]
        if operand == DYN:
            return DYN
        return self.report(node, f".{node.text} selects a field of a map, not of {_a(operand)}")

    def _index(self, node: Node) -> CelType:
        operand, index = self.check(node.children[0]), self.check(node.children[1])
        if operand.name == "list":
            if index not in (INT, UINT, DYN):
                return self.report(node, f"a list is indexed by an int, not {_a(index)}")
            return operand.args[0]
        if operand.name == "map":
            return operand.args[1]
        if operand.name == "fact" or operand == DYN:
            return DYN
        return self.report(node, f"[] indexes a list or a map, not {_a(operand)}")

    def _list(self, node: Node) -> CelType:
        kinds = {self.check(child) for child in node.children}
        return list_of(kinds.pop() if len(kinds) == 1 else DYN)

    def _map(self, node: Node) -> CelType:
        kinds = [self.check(child) for child in node.children]
        for key, kind in zip(node.children[0::2], kinds[0::2], strict=False):
            if kind != DYN and kind not in _MAP_KEYS:
                return self.report(node, f"a map key is a string, an int, a uint or a bool; "
                                   f"{self.text(key)} is {_a(kind)}")
        keys, values = set(kinds[0::2]), set(kinds[1::2])
        return map_of(keys.pop() if len(keys) == 1 else DYN, values.pop() if len(values) == 1 else DYN)

    def _unary(self, node: Node) -> CelType:
        operand = self.check(node.children[0])
        if node.text == "!":
            if operand not in (BOOL, DYN):
                return self.report(node, f"! applies to a bool, not {_a(operand)}")
            return BOOL
        if operand not in (INT, DOUBLE, DYN):
            return self.report(node, f"- applies to an int or a double, not {_a(operand)}")
        return operand

    def _ternary(self, node: Node) -> CelType:
        condition, then, otherwise = (self.check(child) for child in node.children)
        if condition not in (BOOL, DYN):
            self.need_bool(node.children[0], condition, f"the condition of ? : is {_a(condition)}, not a bool")
            return DYN
        both = _unify(then, otherwise)
        if both is None:
            return self.report(node, f"the two results of ? : are {_a(then)} and {_a(otherwise)}: "
                               "a rule's type must not depend on a fact's value")
        return both

    def _call(self, node: Node) -> CelType:
        if node.member:
            return self._method(node)
        if node.text == "has":
            return self._has(node)
        arguments = [self.check(child) for child in node.children]
        declared = self.env.functions.get(node.text)
        if declared is not None:
            return self._apply(node, declared.parameters, arguments, declared.result)
        if node.text in _GLOBAL:
            accepted, result = _GLOBAL[node.text]
            return self._apply(node, (accepted,), arguments, result)
        if node.text in _METHODS:
            return self.report(node, f"{node.text}() is a method: write x.{node.text}(...)")
        known = ", ".join(sorted([*_GLOBAL, "has", *self.env.functions]))
        return self.report(node, f"unknown function {node.text}() (functions: {known})")

    def _apply(self, node: Node, parameters: tuple[frozenset[CelType], ...], arguments: list[CelType],
               result: CelType, method: bool = False) -> CelType:
        """``result`` when ``arguments`` fit ``parameters``; else the problem."""
        name = f".{node.text}()" if method else f"{node.text}()"
        if len(arguments) != len(parameters):
            count = len(parameters)
            return self.report(node, f"{name} takes {count} argument{'s' if count != 1 else ''}, "
                               f"not {len(arguments)}")
        for index, (accepted, given) in enumerate(zip(parameters, arguments, strict=True)):
            if not _accepts(accepted, given):
                return self.report(node, f"{name} takes {_names(accepted)} as argument "
                                   f"{index + 1}, not {_a(given)}")
        return result

    def _has(self, node: Node) -> CelType:
        # The operand is a test, not a read (the fact check covers its names), but what it
        # selects from must be able to have fields.
        if len(node.children) != 1 or node.children[0].kind != "select":
            return self.report(node, "has() takes a field selection: has(x.field)")
        receiver = self.check(node.children[0].children[0])
        if receiver != DYN and receiver.name not in ("fact", "map"):
            return self.report(node, f"has() tests a field of a map, not of {_a(receiver)}")
        return BOOL

    def _method(self, node: Node) -> CelType:
        receiver = node.children[0]
        if node.text in _MACROS and len(node.children) == 3 and node.children[1].kind == "ident":
            return self._macro(node, self.check(receiver))
        if receiver.kind == "ident" and receiver.text == "cel" and node.text == "bind":
            for child in node.children[1:]:
                self.check(child)
            return self.report(node, "the runtime has no cel.bind(): write the bound expression "
                               "where it is used")
        kind = self.check(receiver)
        arguments = [self.check(child) for child in node.children[1:]]
        if node.text not in _METHODS:
            known = ", ".join(sorted([*_METHODS, *_MACROS]))
            return self.report(node, f"the runtime has no method .{node.text}() (methods: {known})")
        receivers, parameters, result = _METHODS[node.text]
        if not _accepts(receivers, kind):
            return self.report(node, f".{node.text}() applies to {_names(receivers)}, not {_a(kind)}")
        return self._apply(node, parameters, arguments, result, method=True)

    def _macro(self, node: Node, receiver: CelType) -> CelType:
        if receiver.name == "fact":
            receiver = map_of(STRING, DYN)
        if receiver != DYN and receiver.name not in ("list", "map"):
            self.check(node.children[2])
            return self.report(node, f".{node.text}() applies to a list or a map, not {_a(receiver)}")
        item = receiver.args[0] if receiver.args else DYN
        self.scopes.append({node.children[1].text: item})
        try:
            body = self.check(node.children[2])
        finally:
            self.scopes.pop()
        if node.text != "map":
            self.need_bool(node.children[2], body, f"the condition of {node.text}() is {_a(body)}, "
                           "not a bool")
        if node.text == "map":
            return list_of(body)
        if node.text == "filter":
            return receiver if receiver.name == "list" else list_of(item)
        return BOOL

    def _binary(self, node: Node) -> CelType:
        left, right = (self.check(child) for child in node.children)
        if left.name == "fact":
            left = map_of(STRING, DYN)
        if right.name == "fact":
            right = map_of(STRING, DYN)
        op = node.text
        if op in ("&&", "||"):
            for child, kind in zip(node.children, (left, right), strict=True):
                self.need_bool(child, kind, f"{op} joins bools; this is {_a(kind)}")
            return BOOL
        if op == "in":
            if right != DYN and right.name not in ("list", "map"):
                return self.report(node, f"in needs a list or a map on its right, not {_a(right)}")
            if right.name == "map" and left != DYN and left not in _MAP_KEYS:
                return self.report(node, f"in tests a map's keys, which are strings, ints, uints "
                                   f"or bools, never {_a(left)}")
            if right != DYN and not _comparable(left, right.args[0]):
                return self._not_an_item(node, left, right)
            return BOOL
        if op in ("==", "!="):
            return BOOL if _comparable(left, right) else self._mismatch(node, left, right)
        if op in ("<", "<=", ">", ">="):
            if DYN in (left, right) or (left in NUMBERS and right in NUMBERS) or (
                    left == right and left in (STRING, BYTES, TIMESTAMP, DURATION, BOOL)):
                return BOOL
            return self._mismatch(node, left, right)
        return self._arithmetic(node, left, right)

    def _arithmetic(self, node: Node, left: CelType, right: CelType) -> CelType:
        op = node.text
        if op == "%" and DOUBLE in (left, right) and {left, right} <= {DOUBLE, DYN}:
            return self.report(node, "% applies to int or uint, not double")
        if DYN in (left, right):
            return left if right is DYN and left in NUMBERS else right if left is DYN and right in NUMBERS else DYN
        if left == right and (left in NUMBERS or (op == "+" and (left in (STRING, BYTES, DURATION)
                                                                 or left.name == "list"))):
            return left
        if op == "-" and left == TIMESTAMP and right == TIMESTAMP:
            return DURATION
        if op in ("+", "-") and left == TIMESTAMP and right == DURATION:
            return TIMESTAMP
        if op in ("+", "-") and left == DURATION and right == DURATION:
            return DURATION
        if left.name == right.name == "list" and op == "+":
            return list_of(DYN)
        return self._mismatch(node, left, right)

    def _mismatch(self, node: Node, left: CelType, right: CelType) -> CelType:
        """A binary operator applied to types it does not take: the message and the fix."""
        left_node, right_node = node.children
        message = f"{left} {node.text} {right}"
        if left in NUMBERS and right in NUMBERS:
            message += " (CEL does not convert between number types)"
        elif (left == STRING and right in NUMBERS) or (right == STRING and left in NUMBERS):
            message += " (a string is never a number in CEL)"
        fix = _fix(self.text(left_node), left, self.text(right_node), right, left_node, right_node)
        return self.report(node, message, fix)

    def _not_an_item(self, node: Node, left: CelType, container: CelType) -> CelType:
        """``x in list`` or ``x in map`` where ``x`` can never be an item (a key of a map):
        the fix converts ``x``, never the container."""
        item = container.args[0]
        where = "the keys of a map" if container.name == "map" else "the items of a list"
        message = f"{left} in {container}: {where} are of type {item}, never {_a(left)}"
        if (left == STRING and item in NUMBERS) or (item == STRING and left in NUMBERS):
            message += " (a string is never a number in CEL)"
        left_node = node.children[0]
        fix = ""
        if item in _CONVERTIBLE and left in _CONVERTIBLE:
            text = self.text(left_node)
            converted = _convert(text, item, left_node)
            if left_node.kind == "literal":  # a literal is rewritten, not converted
                converted = f'"{text}"' if item == STRING else _unquote(text) if left == STRING else ""
            fix = f"{converted} instead of {text}" if converted else ""
        return self.report(node, message, fix)


def _unify(first: CelType, second: CelType) -> CelType | None:
    """The one type of two values that may take each other's place, or None."""
    first = map_of(STRING, DYN) if first.name == "fact" else first
    second = map_of(STRING, DYN) if second.name == "fact" else second
    if first == second:
        return first
    if DYN in (first, second):
        return DYN
    if first.name == second.name and first.name in ("list", "map"):
        return CelType(first.name, tuple(_unify(a, b) or DYN for a, b in zip(first.args, second.args,
                                                                            strict=True)))
    return None


def _a(kind: CelType) -> str:
    """``an int``, ``a string``."""
    text = str(kind)
    return f"an {text}" if text[0] in "aeio" else f"a {text}"  # a uint


def _comparable(left: CelType, right: CelType) -> bool:
    if DYN in (left, right) or NULL in (left, right) or left == right:
        return True
    if left in NUMBERS and right in NUMBERS:
        return True
    return left.name == right.name and left.name in ("list", "map")


def _to_bool(text: str, kind: CelType) -> str:
    if kind in NUMBERS:
        return f"{text} > 0"
    if kind == STRING or kind.name in ("list", "map", "fact"):
        return f"size({text}) > 0"
    return ""


def _fix(left_text: str, left: CelType, right_text: str, right: CelType,
         left_node: Node, right_node: Node) -> str:
    """The smallest change that makes ``left op right`` well typed, if there is an obvious one."""
    replacement, original = "", ""
    if left in NUMBERS and right in NUMBERS:
        target = DOUBLE if DOUBLE in (left, right) else INT
        original, node = (left_text, left_node) if left != target else (right_text, right_node)
        replacement = _convert(original, target, node)
    elif left == STRING and right in NUMBERS:
        original = left_text
        replacement = f"{right}({_bare(left_text)})" if left_node.kind != "literal" else _unquote(left_text)
    elif right == STRING and left in NUMBERS:
        original = right_text
        replacement = f"{left}({_bare(right_text)})" if right_node.kind != "literal" else _unquote(right_text)
    elif left == TIMESTAMP and right == STRING and right_node.kind == "literal":
        original, replacement = right_text, f"timestamp({right_text})"
    elif right == TIMESTAMP and left == STRING and left_node.kind == "literal":
        original, replacement = left_text, f"timestamp({left_text})"
    return f"{replacement} instead of {original}" if replacement else ""


def _bare(text: str) -> str:
    """``(a + b)`` without its outer brackets, when they enclose the whole text."""
    if text.startswith("(") and text.endswith(")") and parse(text[1:-1]) is not None:
        return text[1:-1]
    return text


def _convert(text: str, target: CelType, node: Node) -> str:
    if node.kind == "literal" and node.text == "int" and target == DOUBLE and text.lstrip("-").isdigit():
        return f"{text}.0"
    if node.kind == "literal" and node.text == "double" and target == INT and text.endswith(".0"):
        return text[:-2]
    return f"{target}({_bare(text)})"


def _unquote(text: str) -> str:
    inner = text.strip("'\"")
    return inner if re.fullmatch(r"-?\d+(\.\d+)?", inner) else ""


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the checker found: the problems, and whether some part of the expression has a
    type known only at run time (``dyn``: a map's values, free-form facts), which no check
    can vouch for."""

    problems: list[TypeProblem]
    dynamic: bool


def analyse(source: str, env: Environment, expect_bool: bool = True) -> Analysis | None:
    """The problems of ``source``, or None when this parser cannot read it."""
    tree = parse(source)
    if tree is None:
        return None
    checker = _Checker(source, env)
    try:
        result = checker.check(tree)
    except RecursionError:
        return None
    if expect_bool and not checker.problems and result not in (BOOL, DYN):
        checker.report(tree, f"a rule must be a bool; this is {_a(result)}",
                       _to_bool(checker.text(tree), result), needs_bool=True)
    return Analysis(checker.problems, checker.dynamic)


def check(source: str, env: Environment, expect_bool: bool = True) -> list[TypeProblem]:
    """The type errors of ``source``: none when it is well typed or could not be parsed here."""
    found = analyse(source, env, expect_bool)
    return found.problems if found is not None else []
