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
a 50 MB native package for checking alone. So this is a checker over the tree of
``rules.syntax`` (the runtime's parser stays the authority on syntax: anything that parser
cannot read is not checked) that follows the runtime's rules; the types and the functions the
runtime defines are in ``rules.types``, the fixes a problem proposes in ``rules.fixes``:

- arithmetic needs both operands of one type (``int + int``, ``double * double``, ``string +
  string``, ``timestamp - timestamp``); ``int + double`` is an error;
- ordering and equality between int, uint and double are allowed (the runtime compares them);
  between a string and a number, a bool and a number, a timestamp and a string, they are
  errors (the runtime raises, or quietly answers false for ``==``);
- ``&&``, ``||``, ``!`` and the condition of ``? :`` need a bool, and so does a whole rule;
- only the functions and methods the runtime defines, on the types it defines them for
  (``GLOBAL``, ``METHODS``): it has no string extensions and no ``cel.bind()``;
- anything of unknown type (``dyn``: free-form facts, map values) passes.

tests/rules/test_typecheck_agrees_with_runtime.py compares the checker with the runtime on
generated expressions; the differences kept on purpose are listed in docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rules.fixes import convert, fix_for, to_bool, unquote
from rules.syntax import Node, parse
from rules.types import (
    BOOL,
    BYTES,
    CONVERTIBLE,
    DOUBLE,
    DURATION,
    DYN,
    GLOBAL,
    INT,
    MACROS,
    MAP_KEYS,
    METHODS,
    NULL,
    NUMBERS,
    SCALARS,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    Environment,
    Signature,
    accepts,
    article,
    comparable,
    list_of,
    map_of,
    names_of,
    rule_functions,
    signature,
    type_of_value,
    unify,
)

__all__ = ["Analysis", "CelType", "Environment", "Node", "Signature", "TypeProblem", "analyse",
           "check", "parse", "rule_functions", "signature", "type_of_value"]


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
            self.report(node, message, to_bool(self.text(node), kind), needs_bool=True)

    def _literal(self, node: Node) -> CelType:
        return SCALARS.get(node.text, NULL if node.text == "null_type" else DYN)

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
        return self.report(node, f".{node.text} selects a field of a map, not of {article(operand)}")

    def _index(self, node: Node) -> CelType:
        operand, index = self.check(node.children[0]), self.check(node.children[1])
        if operand.name == "list":
            if index not in (INT, UINT, DYN):
                return self.report(node, f"a list is indexed by an int, not {article(index)}")
            return operand.args[0]
        if operand.name == "map":
            return operand.args[1]
        if operand.name == "fact" or operand == DYN:
            return DYN
        return self.report(node, f"[] indexes a list or a map, not {article(operand)}")

    def _list(self, node: Node) -> CelType:
        kinds = {self.check(child) for child in node.children}
        return list_of(kinds.pop() if len(kinds) == 1 else DYN)

    def _map(self, node: Node) -> CelType:
        kinds = [self.check(child) for child in node.children]
        for key, kind in zip(node.children[0::2], kinds[0::2], strict=False):
            if kind != DYN and kind not in MAP_KEYS:
                return self.report(node, f"a map key is a string, an int, a uint or a bool; "
                                   f"{self.text(key)} is {article(kind)}")
        keys, values = set(kinds[0::2]), set(kinds[1::2])
        return map_of(keys.pop() if len(keys) == 1 else DYN, values.pop() if len(values) == 1 else DYN)

    def _unary(self, node: Node) -> CelType:
        operand = self.check(node.children[0])
        if node.text == "!":
            if operand not in (BOOL, DYN):
                return self.report(node, f"! applies to a bool, not {article(operand)}")
            return BOOL
        if operand not in (INT, DOUBLE, DYN):
            return self.report(node, f"- applies to an int or a double, not {article(operand)}")
        return operand

    def _ternary(self, node: Node) -> CelType:
        condition, then, otherwise = (self.check(child) for child in node.children)
        if condition not in (BOOL, DYN):
            self.need_bool(node.children[0], condition, f"the condition of ? : is {article(condition)}, not a bool")
            return DYN
        both = unify(then, otherwise)
        if both is None:
            return self.report(node, f"the two results of ? : are {article(then)} and {article(otherwise)}: "
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
        if node.text in GLOBAL:
            accepted, result = GLOBAL[node.text]
            return self._apply(node, (accepted,), arguments, result)
        if node.text in METHODS:
            return self.report(node, f"{node.text}() is a method: write x.{node.text}(...)")
        known = ", ".join(sorted([*GLOBAL, "has", *self.env.functions]))
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
            if not accepts(accepted, given):
                return self.report(node, f"{name} takes {names_of(accepted)} as argument "
                                   f"{index + 1}, not {article(given)}")
        return result

    def _has(self, node: Node) -> CelType:
        # The operand is a test, not a read (the fact check covers its names), but what it
        # selects from must be able to have fields.
        if len(node.children) != 1 or node.children[0].kind != "select":
            return self.report(node, "has() takes a field selection: has(x.field)")
        receiver = self.check(node.children[0].children[0])
        if receiver != DYN and receiver.name not in ("fact", "map"):
            return self.report(node, f"has() tests a field of a map, not of {article(receiver)}")
        return BOOL

    def _method(self, node: Node) -> CelType:
        receiver = node.children[0]
        if node.text in MACROS and len(node.children) == 3 and node.children[1].kind == "ident":
            return self._macro(node, self.check(receiver))
        if receiver.kind == "ident" and receiver.text == "cel" and node.text == "bind":
            for child in node.children[1:]:
                self.check(child)
            return self.report(node, "the runtime has no cel.bind(): write the bound expression "
                               "where it is used")
        kind = self.check(receiver)
        arguments = [self.check(child) for child in node.children[1:]]
        if node.text not in METHODS:
            known = ", ".join(sorted([*METHODS, *MACROS]))
            return self.report(node, f"the runtime has no method .{node.text}() (methods: {known})")
        receivers, parameters, result = METHODS[node.text]
        if not accepts(receivers, kind):
            return self.report(node, f".{node.text}() applies to {names_of(receivers)}, not {article(kind)}")
        return self._apply(node, parameters, arguments, result, method=True)

    def _macro(self, node: Node, receiver: CelType) -> CelType:
        if receiver.name == "fact":
            receiver = map_of(STRING, DYN)
        if receiver != DYN and receiver.name not in ("list", "map"):
            self.check(node.children[2])
            return self.report(node, f".{node.text}() applies to a list or a map, not {article(receiver)}")
        item = receiver.args[0] if receiver.args else DYN
        self.scopes.append({node.children[1].text: item})
        try:
            body = self.check(node.children[2])
        finally:
            self.scopes.pop()
        if node.text != "map":
            self.need_bool(node.children[2], body, f"the condition of {node.text}() is {article(body)}, "
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
                self.need_bool(child, kind, f"{op} joins bools; this is {article(kind)}")
            return BOOL
        if op == "in":
            if right != DYN and right.name not in ("list", "map"):
                return self.report(node, f"in needs a list or a map on its right, not {article(right)}")
            if right.name == "map" and left != DYN and left not in MAP_KEYS:
                return self.report(node, f"in tests a map's keys, which are strings, ints, uints "
                                   f"or bools, never {article(left)}")
            if right != DYN and not comparable(left, right.args[0]):
                return self._not_an_item(node, left, right)
            return BOOL
        if op in ("==", "!="):
            return BOOL if comparable(left, right) else self._mismatch(node, left, right)
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
        fix = fix_for(self.text(left_node), left, self.text(right_node), right, left_node, right_node)
        return self.report(node, message, fix)

    def _not_an_item(self, node: Node, left: CelType, container: CelType) -> CelType:
        """``x in list`` or ``x in map`` where ``x`` can never be an item (a key of a map):
        the fix converts ``x``, never the container."""
        item = container.args[0]
        where = "the keys of a map" if container.name == "map" else "the items of a list"
        message = f"{left} in {container}: {where} are of type {item}, never {article(left)}"
        if (left == STRING and item in NUMBERS) or (item == STRING and left in NUMBERS):
            message += " (a string is never a number in CEL)"
        left_node = node.children[0]
        fix = ""
        if item in CONVERTIBLE and left in CONVERTIBLE:
            text = self.text(left_node)
            converted = convert(text, item, left_node)
            if left_node.kind == "literal":  # a literal is rewritten, not converted
                converted = f'"{text}"' if item == STRING else unquote(text) if left == STRING else ""
            fix = f"{converted} instead of {text}" if converted else ""
        return self.report(node, message, fix)




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
        checker.report(tree, f"a rule must be a bool; this is {article(result)}",
                       to_bool(checker.text(tree), result), needs_bool=True)
    return Analysis(checker.problems, checker.dynamic)


def check(source: str, env: Environment, expect_bool: bool = True) -> list[TypeProblem]:
    """The type errors of ``source``: none when it is well typed or could not be parsed here."""
    found = analyse(source, env, expect_bool)
    return found.problems if found is not None else []
