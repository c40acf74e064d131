"""The type checker agrees with the CEL runtime that evaluates rules.

Expressions are generated over facts of every declared type (and absent ones), the functions
the runtime registers and the operators of CEL, some well typed and some not:

- when the checker accepts an expression whose types it knows throughout (no ``dyn``), the
  runtime raises no type error on facts of the declared types;
- every problem the checker reports is one the runtime raises when it evaluates that
  sub-expression, except the deliberate differences of ``DELIBERATE`` (docs/rules.md, "Type
  checking"), for which the runtime indeed answers without an error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import cel
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.schema import Fact, FactSchema, FactType
from rules import typecheck
from rules.conversion import cel_context
from rules.expression import is_missing, lookup
from rules.functions import bind
from rules.references import fact_references

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SCHEMA = FactSchema("f", "one fact of each type", facts=(
    Fact("i", FactType.INT, ""), Fact("d", FactType.DOUBLE, ""), Fact("s", FactType.STRING, ""),
    Fact("b", FactType.BOOL, ""), Fact("t", FactType.TIMESTAMP, ""),
    Fact("ls", FactType.STRING_LIST, ""), Fact("m", FactType.MAP, ""),
    Fact("lo", FactType.OBJECT_LIST, "", items=(Fact("name", FactType.STRING, ""),
                                                 Fact("n", FactType.INT, ""))),
    Fact("o.n", FactType.INT, ""), Fact("o.ok", FactType.BOOL, ""),
))
ENV = typecheck.Environment({"f": SCHEMA})

# ------------------------------------------------------------------------------ facts

STRINGS = ["", "a", "12", "1.2.0", "v2.0.0", "2024-01-01T00:00:00Z"]
MOMENTS = ["2026-11-01T00:00:00Z", "2020-02-29T12:30:00+02:00"]


def _maybe(strategy: st.SearchStrategy[Any], absent: bool) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy) if absent else strategy


def facts(absent: bool) -> st.SearchStrategy[dict[str, Any]]:
    """The ``f`` namespace as a collector stores it; with ``absent``, any fact may be null."""
    text = st.sampled_from(STRINGS)
    return st.fixed_dictionaries({
        "i": _maybe(st.integers(-3, 3) | st.just(2**62), absent),
        "d": _maybe(st.floats(-3, 3, allow_nan=False, width=32), absent),
        "s": _maybe(text, absent),
        "b": _maybe(st.booleans(), absent),
        "t": _maybe(st.sampled_from(MOMENTS), absent),
        "ls": _maybe(st.lists(text, max_size=3), absent),
        "m": _maybe(st.dictionaries(st.sampled_from(["a", "b"]),
                                    st.integers(0, 2) | text | st.booleans(), max_size=2), absent),
        "lo": _maybe(st.lists(st.fixed_dictionaries({"name": text, "n": st.integers(0, 2)}),
                              max_size=2), absent),
        "o": _maybe(st.fixed_dictionaries({"n": _maybe(st.integers(0, 2), absent),
                                           "ok": _maybe(st.booleans(), absent)}), absent),
    })


# Variables that macros bind, by the type of what they range over; a sub-expression that
# reads one is run with a value of that type.
BOUND = {"s": "a", "n": 1, "o": {"name": "a", "n": 1}}

# ------------------------------------------------------------------------------ expressions

Kind = str
KINDS: tuple[Kind, ...] = ("int", "double", "string", "bool", "timestamp", "duration",
                           "strings", "ints", "map", "objects", "null", "uint")
# Leaves of each kind; "{var}" entries are bound variables, usable only inside their macro.
LEAVES: dict[Kind, list[str]] = {
    "int": ["0", "1", "-2", "f.i", "f.o.n", "9223372036854775807"],
    "double": ["0.0", "2.5", "-1.5", "f.d"],
    "string": ['"a"', '"12"', '"1.2.0"', "f.s"],
    "bool": ["true", "false", "f.b", "f.o.ok"],
    "timestamp": ["f.t", "now", 'timestamp("2024-01-01T00:00:00Z")'],
    "duration": ['duration("24h")'],
    "strings": ["f.ls", '["a", "12"]', "[]"],
    "ints": ["[1, 2]"],
    "map": ["f.m", '{"a": 1}', "f.o"],
    "objects": ["f.lo"],
    "null": ["null"],
    "uint": ["1u"],
}
DYN_LEAVES = ['f.m["a"]', "f.m.a", "f.lo[0].name", 'dyn(f.i)']
VARIABLES: dict[Kind, str] = {"string": "s", "int": "n"}
OPERATORS = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in"]
# Receivers of macros and the variable that ranges over their items (keys of a map).
MACRO_RECEIVERS = [("f.ls", "s"), ('["a", "12"]', "s"), ("[1, 2]", "n"), ("f.m", "s"),
                   ("f.lo", "o"), ("f.i", "s"), ("f.s", "s")]


@st.composite
def expression(draw: st.DrawFn, kind: Kind, depth: int, scope: frozenset[str]) -> str:
    """An expression meant to be of ``kind``; now and then one of another kind instead."""
    if draw(st.integers(0, 9)) == 0:
        kind = draw(st.sampled_from(KINDS))
    leaves = list(LEAVES[kind])
    if kind == "int" and "n" in scope:
        leaves.append("n")
    if kind == "string" and "s" in scope:
        leaves.append("s")
    if kind in ("int", "string", "bool", "double") and draw(st.integers(0, 11)) == 0:
        leaves.append(draw(st.sampled_from(DYN_LEAVES)) if "o" not in scope else "o.name")
    if depth <= 0 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(leaves))
    builders = COMPOSITES.get(kind, [])
    if not builders:
        return draw(st.sampled_from(leaves))
    build = draw(st.sampled_from(builders))
    return build(draw, depth - 1, scope)


def sub(kind: Kind) -> Callable[[st.DrawFn, int, frozenset[str]], str]:
    return lambda draw, depth, scope: draw(expression(kind, depth, scope))


def _binary(left: Kind | None, ops: list[str], right: Kind | None = None) -> Callable[..., str]:
    def build(draw: st.DrawFn, depth: int, scope: frozenset[str]) -> str:
        first = left or draw(st.sampled_from(KINDS))
        second = right or (first if draw(st.booleans()) else draw(st.sampled_from(KINDS)))
        a, b = draw(expression(first, depth, scope)), draw(expression(second, depth, scope))
        return f"({a} {draw(st.sampled_from(ops))} {b})"
    return build


def _call(template: str, *kinds: Kind) -> Callable[..., str]:
    def build(draw: st.DrawFn, depth: int, scope: frozenset[str]) -> str:
        return template.format(*(draw(expression(k, depth, scope)) for k in kinds))
    return build


def _unary(op: str, kind: Kind) -> Callable[..., str]:
    return lambda draw, depth, scope: f"{op}({draw(expression(kind, depth, scope))})"


def _ternary(kind: Kind) -> Callable[..., str]:
    def build(draw: st.DrawFn, depth: int, scope: frozenset[str]) -> str:
        other = kind if draw(st.integers(0, 3)) else draw(st.sampled_from(KINDS))
        parts = (draw(expression("bool", depth, scope)), draw(expression(kind, depth, scope)),
                 draw(expression(other, depth, scope)))
        return "({} ? {} : {})".format(*parts)
    return build


def _macro(name: str, body: Kind) -> Callable[..., str]:
    def build(draw: st.DrawFn, depth: int, scope: frozenset[str]) -> str:
        receiver, variable = draw(st.sampled_from(MACRO_RECEIVERS))
        inner = scope | {variable}
        text = draw(expression(body, depth, inner))
        if variable == "o" and draw(st.booleans()):
            text = draw(st.sampled_from(["o.n > 0", 'o.name == "a"', "has(o.name)", "o.n + 1 > 1"]))
        return f"{receiver}.{name}({variable}, {text})"
    return build


def _index(container: Kind, key: Kind) -> Callable[..., str]:
    return _call("{}[{}]", container, key)


NUMERIC = ["+", "-", "*", "/", "%"]
COMPOSITES: dict[Kind, list[Callable[..., str]]] = {
    "int": [_binary("int", NUMERIC), _unary("-", "int"), _call("size({})", "strings"),
            _call("size({})", "string"), _call("{}.size()", "map"), _call("int({})", "double"),
            _call("semver_compare({}, {})", "string", "string"), _call("{}.getHours()", "timestamp"),
            _call("{}.getDayOfWeek()", "timestamp"), _index("ints", "int"), _ternary("int"),
            _call("int({})", "string"), _call("size({})", "int")],
    "double": [_binary("double", NUMERIC), _unary("-", "double"),
               _call("days_since({})", "timestamp"), _call("hours_since({})", "string"),
               _call("days_since({})", "int"), _call("double({})", "int"), _ternary("double")],
    "string": [_binary("string", ["+"]), _call("string({})", "int"), _call("string({})", "bool"),
               _index("strings", "int"), _ternary("string"), _call("{}.lowerAscii()", "string"),
               _call("string({})", "timestamp")],
    "bool": [_binary(None, ["==", "!=", "<", "<=", ">", ">="]), _binary("bool", ["&&", "||"]),
             _binary(None, OPERATORS), _unary("!", "bool"), _unary("-", "bool"),
             _call("{}.startsWith({})", "string", "string"), _call("{}.contains({})", "string", "string"),
             _call("{}.matches({})", "string", "string"), _call("matches({}, {})", "string", "string"),
             lambda draw, depth, scope: draw(st.sampled_from(["has(f.i)", "has(f.o.n)", "has(f.m.a)"])),
             _call("has({}.x)", "map"), _call("has({}.x)", "int"),
             _call("({} in {})", "string", "strings"), _call("({} in {})", "int", "map"),
             _call("({} in {})", "int", "strings"), _call("({} in {})", "string", "string"),
             _call("semver_at_least({}, {})", "string", "string"), _ternary("bool"),
             _macro("exists", "bool"), _macro("all", "bool"), _macro("exists_one", "bool"),
             _macro("all", "int"), _call("({} == null)", "int"),
             _call("({} < {})", "timestamp", "string"), _call("({} > {})", "duration", "duration")],
    "timestamp": [_call("({} + {})", "timestamp", "duration"), _call("timestamp({})", "string"),
                  _call("timestamp({})", "int"), _ternary("timestamp")],
    "duration": [_call("({} - {})", "timestamp", "timestamp"), _call("duration({})", "string"),
                 _call("({} * {})", "duration", "int")],
    "strings": [_binary("strings", ["+"]), _macro("filter", "bool"), _macro("map", "string"),
                _call("[{}, {}]", "string", "string"), _call("{}.x", "strings")],
    "ints": [_macro("map", "int"), _call("[{}]", "int")],
    "map": [_call('{{{}: "v"}}', "string"), _call('{{{}: 1}}', "strings")],
}

# ------------------------------------------------------------------------------ the runtime


def run(source: str, values: dict[str, Any], extra: dict[str, Any] | None = None) -> BaseException | Any:
    """What the runtime answers for ``source`` on ``values`` (namespace ``f``): the value or
    the exception."""
    prepared = {"f": SCHEMA.prepare(values)}
    context, refused = cel_context({**prepared, **(extra or {})}, {"now": NOW}, bind(NOW))
    assert not refused, refused
    try:
        return cel.compile(source).execute(context)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:
        return error


def is_type_error(error: BaseException) -> bool:
    """An error the types of the operands cause, whatever their values: no overload for them,
    an undefined function or method, a rule function given the wrong type."""
    text = str(error)
    if isinstance(error, TypeError):
        return True
    return isinstance(error, RuntimeError) and (
        "Undefined variable or function" in text or "TypeError" in text)


def _parsed(problem: typecheck.TypeProblem) -> typecheck.Node:
    node = typecheck.parse(problem.subexpression)
    assert node is not None, problem
    return node


def _equality_across_types(problem: typecheck.TypeProblem) -> bool:
    node = _parsed(problem)
    return node.kind == "binary" and (node.text in ("==", "!=") or (
        node.text == "in" and " are of type " in problem.message))


def _negated_bool(problem: typecheck.TypeProblem) -> bool:
    node = _parsed(problem)
    return node.kind == "unary" and node.text == "-" and problem.message.endswith("not a bool")


def _list_plus_map(problem: typecheck.TypeProblem) -> bool:
    node = _parsed(problem)
    return node.kind == "binary" and node.text == "+" and " + " in problem.message and {
        part.split("(")[0] for part in problem.message.split(" + ", 1)} == {"list", "map"}


def _results_of_two_types(problem: typecheck.TypeProblem) -> bool:
    return _parsed(problem).kind == "ternary" and "two results" in problem.message


# The deliberate differences (docs/rules.md, "Type checking"): refused by the checker though
# the runtime answers them, because the answer is never what the rule's author meant.
DELIBERATE: dict[str, Callable[[typecheck.TypeProblem], bool]] = {
    # `1 == "1"`, `service.tier in [1, 2]`: always false at run time, never an error.
    "equality or membership between types that are never equal": _equality_across_types,
    # `-true`: the runtime answers false (CEL defines no negation of a bool).
    "minus applied to a bool": _negated_bool,
    # `list + map`: the runtime appends the map's keys (CEL defines no such operator).
    "a list and a map added": _list_plus_map,
    # `x ? 1 : "a"`: the rule's type would depend on a fact's value (CEL's own checker
    # refuses it too).
    "the two results of ? : of different types": _results_of_two_types,
}


def _deliberate(problem: typecheck.TypeProblem) -> str | None:
    return next((name for name, matches in DELIBERATE.items() if matches(problem)), None)


# ------------------------------------------------------------------------------ the property

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@PROPERTY
@given(source=expression("bool", 3, frozenset()), values=facts(absent=True),
       full=facts(absent=False))
def test_the_checker_and_the_runtime_agree(source: str, values: dict[str, Any],
                                           full: dict[str, Any]) -> None:
    analysis = typecheck.analyse(source, ENV)
    assert analysis is not None, f"the checker cannot parse {source}"
    if not analysis.problems:
        _accepted(source, values, analysis.dynamic)
    for problem in analysis.problems:
        inner = any(other is not problem and problem.start <= other.start and other.end <= problem.end
                    for other in analysis.problems)
        _refused(source, problem, full, inner)


def _accepted(source: str, values: dict[str, Any], dynamic: bool) -> None:
    answer = run(source, values)
    if not isinstance(answer, BaseException):
        assert dynamic or isinstance(answer, bool), f"accepted {source}, which answers {answer!r}"
        event("accepted: a bool" if isinstance(answer, bool) else "accepted, of type dyn: not a bool")
        return
    prepared = {"f": SCHEMA.prepare(values)}
    missing = [ref for ref in fact_references(source, {"f"}) if is_missing(lookup(prepared, ref.path))]
    if missing or isinstance(answer, KeyError):
        event("accepted: no data")  # evaluation reports the rule unknown, not an error
        return
    if dynamic:
        event("accepted, with a part of type dyn: checked when it runs")
        return
    assert not is_type_error(answer), f"accepted {source}, which raises {answer!r} on {values}"
    event("accepted: an error of a value (division by zero, index, parse)")


def _refused(source: str, problem: typecheck.TypeProblem, full: dict[str, Any], inner: bool) -> None:
    """``inner``: another problem lies within this one, and may be why the runtime raises."""
    text = f"({problem.subexpression}) ? true : false" if problem.needs_bool else problem.subexpression
    answer = run(text, full, BOUND)
    deliberate = _deliberate(problem)
    if deliberate is not None:
        event(f"refused deliberately: {deliberate}")
        alone = typecheck.analyse(problem.subexpression, ENV, expect_bool=False)
        if inner or alone is None or alone.dynamic:
            return  # another problem, or a part of type dyn, may make the runtime raise
        assert not (isinstance(answer, BaseException) and is_type_error(answer)), \
            f"{deliberate}: {problem.subexpression} raises {answer!r}: not a difference"
        return
    assert isinstance(answer, BaseException), (
        f"refused {problem.subexpression} in {source} ({problem.message}), which answers {answer!r}")
    event("refused: the runtime raises a type error" if is_type_error(answer)
          else "refused: the runtime raises (a value's error first)")


# ------------------------------------------------------------------------------ found before


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1.5 % 2.0 == 0.5", "% applies to int or uint, not double"),
        ("f.d % 2.0 > 0.0", "% applies to int or uint, not double"),
        ('-"a" == "a"', "- applies to an int or a double, not a string"),
        ("-1u == 1u", "- applies to an int or a double, not a uint"),
        ("size(f.i) > 0", "size() takes a bytes or a list or a map or a string as argument 1, not an int"),
        ('f.s.lowerAscii() == "a"', "the runtime has no method .lowerAscii()"),
        ('matches(f.s, "a")', "matches() is a method: write x.matches(...)"),
        ("cel.bind(x, 1, x > 0)", "the runtime has no cel.bind()"),
        ("string(f.b) == 'true'", "string() takes"),
        ('f.ls["a"] == "a"', "a list is indexed by an int, not a string"),
        ("f.i.x == 1", ".x selects a field of a map, not of an int"),
        ("has(f.s.x)", "has() tests a field of a map, not of a string"),
        ("f.i.exists(x, true)", ".exists() applies to a list or a map, not an int"),
        ("{[1]: 1}.size() > 0", "a map key is a string, an int, a uint or a bool; [1] is a list(int)"),
        ("days_since(f.t, now) > 1.0", "days_since() takes 1 argument, not 2"),
        ("unknown_fn(1)", "unknown function unknown_fn()"),
    ],
)
def test_what_the_runtime_refuses_is_refused(source: str, expected: str) -> None:
    found = [p.describe() for p in typecheck.check(source, ENV)]
    assert any(expected in text for text in found), found
    values = {"i": 1, "d": 2.5, "s": "a", "b": True, "t": "2026-11-01T00:00:00Z", "ls": ["a"]}
    answer = run(source, values)
    assert isinstance(answer, BaseException) and is_type_error(answer), answer


@pytest.mark.parametrize(
    ("source", "fix"),
    [
        ('1 in {"a": 1}', '"1" instead of 1'),
        ('f.i in {"a": 1}', "string(f.i) instead of f.i"),
        ('f.s in [1, 2]', "int(f.s) instead of f.s"),
        ('"2" in [1, 2]', "2 instead of \"2\""),
    ],
)
def test_membership_across_types_converts_the_item_never_the_container(source: str, fix: str) -> None:
    (problem,) = typecheck.check(source, ENV)
    assert problem.fix == fix
    assert "never" in problem.message


def test_accepted_forms_the_runtime_evaluates() -> None:
    accepted = [
        "f.i % 2 == 0", "-f.d < 1.0", "-f.i < 1", "size(f.ls) > 0", "f.ls.size() >= 0",
        'f.s.startsWith("a")', "now - f.t > duration('1h')", "f.t.getHours() >= 0",
        "(now - f.t).getHours() >= 0", "string(f.t) != ''", "f.lo.all(o, o.n >= 0)",
        'f.m.exists(k, k == "a")', "f.b ? f.i > 0 : f.d > 0.0", "f.o.n >= 0 && f.o.ok",
        "int(f.s) > 0 || true", 'timestamp("2024-01-01T00:00:00Z") < now', "f.i == null",
    ]
    values = {"i": 2, "d": 2.5, "s": "12", "b": True, "t": "2026-11-01T00:00:00Z", "ls": ["a"],
              "m": {"a": 1}, "lo": [{"name": "a", "n": 1}], "o": {"n": 1, "ok": True}}
    for source in accepted:
        assert typecheck.check(source, ENV) == [], source
        assert isinstance(run(source, values), bool), source
