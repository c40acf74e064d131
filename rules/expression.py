"""A compiled CEL expression and the outcome of running it against one service's facts."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import cel

from rules.limits import violations
from rules.references import FactReference, fact_references
from rules.syntax import bound_names

# Names that are always defined, besides the fact namespaces.
BUILTIN_NAMES = frozenset({"now", "cel"})

_SYNTAX_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)")


class ExpressionError(ValueError):
    """An expression that cannot be a rule; ``line`` and ``column`` are 1-based within it."""

    def __init__(self, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class ExpressionSyntaxError(ExpressionError):
    """The expression does not parse."""


class ExpressionTooComplex(ExpressionError):
    """The expression exceeds a limit of ``rules.limits``: the runtime could not bear it."""


# Exceptions that stop the process, not a rule: never turned into a rule's error. Anything
# else a rule raises is its own error, BaseException subclasses of native code included
# (a Rust panic arrives as pyo3's PanicException, which is not an Exception).
PROCESS_EXITS = (KeyboardInterrupt, SystemExit)


class Outcome(StrEnum):
    TRUE = "true"
    FALSE = "false"
    ABSENT = "absent"  # a fact the expression needs is not there: no data
    ERROR = "error"  # the expression failed for another reason


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    outcome: Outcome
    detail: str = ""
    missing: tuple[str, ...] = ()


TRUE = EvaluationOutcome(Outcome.TRUE)
FALSE = EvaluationOutcome(Outcome.FALSE)
_MISSING = object()


def lookup(facts: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested mappings, or ``_MISSING``."""
    node: Any = facts
    for part in path:
        if type(node) is dict or isinstance(node, Mapping):
            node = node.get(part, _MISSING)
            if node is _MISSING:
                return node
        else:
            return _MISSING
    return node


def is_missing(value: Any) -> bool:
    return value is _MISSING


@dataclass(eq=False)
class Expression:
    """A CEL expression compiled once at load time and run many times."""

    source: str
    program: Any = field(repr=False)
    references: tuple[FactReference, ...]
    names: frozenset[str]  # top-level identifiers the expression reads that it does not bind

    @classmethod
    def compile(cls, source: str, namespaces: Collection[str]) -> Expression:
        if not source.strip():
            raise ExpressionSyntaxError("expression is empty")
        exceeded = violations(source)
        if exceeded:
            line, column = _position(source, exceeded[0].offset)
            raise ExpressionTooComplex("; ".join(v.message for v in exceeded), line, column)
        try:
            program = cel.compile(source)
        except PROCESS_EXITS:
            raise
        except ValueError as error:
            text = str(error)
            matches = list(_SYNTAX_POSITION.finditer(text))
            match = next((m for m in matches if m.group(3).startswith("Syntax error")),
                         matches[0] if matches else None)
            if match:
                line, column = int(match.group(1)), int(match.group(2))  # both 1-based
                raise ExpressionSyntaxError(
                    f"CEL syntax error at column {column}: {_readable(match.group(3))}"
                    + _caret(source, line, column),
                    line,
                    column,
                ) from None
            raise ExpressionSyntaxError(f"CEL syntax error: {_short(text)}") from None
        except BaseException as error:  # a panic of the native parser
            raise ExpressionSyntaxError(
                f"CEL syntax error: the parser failed ({type(error).__name__}: {_short(str(error))})"
            ) from None
        names = frozenset(set(program.variables()) - bound_names(source) - BUILTIN_NAMES)
        return cls(source, program, tuple(fact_references(source, namespaces)), names)

    @cached_property
    def paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The distinct fact paths read, as (dotted, parts), in order of appearance."""
        return tuple({ref.dotted: (ref.dotted, ref.path) for ref in self.references}.values())

    def missing_facts(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(dotted for dotted, path in self.paths if lookup(facts, path) is _MISSING)

    def evidence(self, facts: Mapping[str, Any], limit: int = 200) -> dict[str, Any]:
        """The values of the facts this expression reads, each shortened to ``limit`` chars."""
        found: dict[str, Any] = {}
        for dotted, path in self.paths:
            value = lookup(facts, path)
            if value is _MISSING or isinstance(value, Mapping):
                continue
            if isinstance(value, list | tuple) and len(repr(value)) > limit:
                value = f"[{len(value)} items]"
            elif isinstance(value, str) and len(value) > limit:
                value = value[: limit - 1] + "…"
            found[dotted] = value
        return found

    def run(self, context: cel.Context, facts: Mapping[str, Any]) -> EvaluationOutcome:
        """Evaluate against a prepared context. ``facts`` is the same data, for diagnosis."""
        try:
            value = self.program.execute(context)
        except PROCESS_EXITS:
            raise
        except BaseException as error:
            return self.diagnose(error, facts)
        return self.outcome_of(value)

    @staticmethod
    def outcome_of(value: Any) -> EvaluationOutcome:
        if value is True:
            return TRUE
        if value is False:
            return FALSE
        return EvaluationOutcome(
            Outcome.ERROR,
            f"expression returned {type(value).__name__} {_short_repr(value)}, not a bool",
        )

    def diagnose(self, error: BaseException, facts: Mapping[str, Any]) -> EvaluationOutcome:
        """Why an expression raised: absent facts (no data) or a genuine error."""
        missing = self.missing_facts(facts)
        if missing:
            return EvaluationOutcome(Outcome.ABSENT, "no data for " + ", ".join(missing), missing)
        if isinstance(error, KeyError):
            # An index into a present map (service.labels["team"]) found no such key.
            key = error.args[0] if error.args else "?"
            return EvaluationOutcome(Outcome.ABSENT, f"no data: key {key!r} is absent", (str(key),))
        return EvaluationOutcome(Outcome.ERROR, describe_error(error) + self._type_error(error, facts))

    def _type_error(self, error: BaseException, facts: Mapping[str, Any]) -> str:
        """The sub-expression a run-time type error comes from, found by checking the
        expression against the types of the facts themselves; empty when none is found."""
        if not isinstance(error, TypeError | ValueError | RuntimeError):
            return ""
        from rules import typecheck

        try:
            found = typecheck.check(self.source, typecheck.Environment({}, values=facts))
        except Exception:
            return ""
        return f"; {found[0].describe()}" if found else ""


_SHORT = 200
_repr = reprlib.Repr()  # bounded: a rule may return a huge or deeply nested value
_repr.maxlevel, _repr.maxstring, _repr.maxother = 3, _SHORT, _SHORT


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHORT else text[: _SHORT - 1] + "…"


def _short_repr(value: Any) -> str:
    try:
        return _short(_repr.repr(value))
    except Exception:
        return f"<{type(value).__name__}>"


_EXPECTING = re.compile(r"\s*expecting\s+(\{[^}]*\}|\S+)\s*$")


def _readable(message: str) -> str:
    """The parser's message without its list of expected tokens, in words."""
    message = message.split("\n")[0].removeprefix("Syntax error: ")
    message = _EXPECTING.sub("", message)
    if message.startswith("mismatched input '<EOF>'"):
        return "the expression ends where an operand or a closing bracket is expected"
    for prefix in ("mismatched input ", "no viable alternative at input ", "extraneous input "):
        if message.startswith(prefix):
            return f"unexpected {message.removeprefix(prefix)}"
    if message.startswith("token recognition error at: "):
        return f"unexpected characters {message.removeprefix('token recognition error at: ')}"
    return _short(message)


def _caret(source: str, line: int, column: int) -> str:
    """The line of ``source`` with the error and a caret under ``column`` (1-based)."""
    lines = source.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    start = max(0, column - 60)
    shown = text[start:start + 100]
    return f"\n    {shown}\n    {' ' * (column - 1 - start)}^"


def describe_error(error: BaseException) -> str:
    """A short message for a rule's error: the exception's type and first sentence."""
    try:
        text = str(error)
    except Exception:
        text = ""
    first = text.split(". ")[0]
    return f"{type(error).__name__}: {_short(first)}" if first else type(error).__name__


def _position(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1
