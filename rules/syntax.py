"""The one front end for rule expressions: CEL's tokens with their positions, and a syntax tree.

Everything that reads a rule's text goes through here: the facts it reads
(``rules.references``), the names it binds (``rules.expression``), its size and depth
(``rules.limits``) and its types (``rules.typecheck``). One number grammar, CEL's
(github.com/google/cel-spec, "Syntax"), which the runtime (``common-expression-language``)
follows: ``12``, ``0x1F`` (a lower-case ``x`` only), ``1u``, ``0x1Fu``, ``1.5``, ``.5``, ``2e3``, ``1.5e-3``; strings in
single, double and triple quotes, raw (``r"..."``) and bytes (``b"..."``).

The runtime's parser stays the authority on syntax: anything this parser cannot read
(``parse`` gives None) is not type checked, and its tokens are still what the other readers
scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

# Token kinds. Numbers and strings carry their literal type as kind; "invalid" is a character
# or an unterminated string that CEL does not accept (the runtime reports it).
IDENT, INT, UINT, DOUBLE, STRING, BYTES, OP, INVALID = (
    "ident", "int", "uint", "double", "string", "bytes", "op", "invalid")
NUMBERS = frozenset({INT, UINT, DOUBLE})
LITERALS = NUMBERS | {STRING, BYTES}

_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=")
_SINGLE = frozenset("<>!+-*/%?:.,()[]{}")
# CEL's STRING_LIT takes ``r`` or ``R``; BYTES_LIT is ``b`` or ``B`` before one (``br""``, not ``rb""``).
_STRING_PREFIXES = frozenset({"r", "R", "b", "B", "br", "bR", "Br", "BR"})
_SPACES = frozenset(" \t\n\r\f")  # CEL's WHITESPACE: other spaces are not (U+00A0 ...)
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")


def _ident_char(char: str) -> bool:
    return char == "_" or ("a" <= char <= "z") or ("A" <= char <= "Z") or char in _DIGITS


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text as written and where it starts (an offset)."""

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokens(source: str) -> tuple[Token, ...]:
    """The tokens of ``source``, without spaces and comments, in order."""
    # Each reader of a rule scans it: scans of rule-sized sources are kept, not huge ones.
    return _scan_kept(source) if len(source) <= 10_000 else _scan(source)


@lru_cache(maxsize=256)
def _scan_kept(source: str) -> tuple[Token, ...]:
    return _scan(source)


def _scan(source: str) -> tuple[Token, ...]:
    found: list[Token] = []
    at, length = 0, len(source)
    while at < length:
        char = source[at]
        if char in _SPACES:
            at += 1
        elif source.startswith("//", at):
            newline = source.find("\n", at)
            at = length if newline < 0 else newline
        elif char in _DIGITS or (char == "." and at + 1 < length and source[at + 1] in _DIGITS):
            kind, end = _number(source, at)
            found.append(Token(kind, source[at:end], at))
            at = end
        elif _ident_char(char):
            end = at
            while end < length and _ident_char(source[end]):
                end += 1
            if end < length and source[end] in "'\"" and source[at:end] in _STRING_PREFIXES:
                kind, end = _string(source, at, end)
            else:
                kind = IDENT
            found.append(Token(kind, source[at:end], at))
            at = end
        elif char in "'\"":
            kind, end = _string(source, at, at)
            found.append(Token(kind, source[at:end], at))
            at = end
        else:
            text = next((op for op in _OPERATORS if source.startswith(op, at)), char)
            found.append(Token(OP if text in _OPERATORS or text in _SINGLE else INVALID, text, at))
            at += len(text)
    return tuple(found)


def _number(source: str, at: int) -> tuple[str, int]:
    """The kind and end of the number literal at ``at``: CEL's INT, UINT and FLOAT_LIT."""
    length = len(source)
    if source.startswith("0x", at) and at + 2 < length and source[at + 2] in _HEX:
        end = at + 2
        while end < length and source[end] in _HEX:
            end += 1
        return (UINT, end + 1) if end < length and source[end] in "uU" else (INT, end)
    end = at
    while end < length and source[end] in _DIGITS:
        end += 1
    kind = INT
    if end + 1 < length and source[end] == "." and source[end + 1] in _DIGITS:
        kind, end = DOUBLE, end + 1
        while end < length and source[end] in _DIGITS:
            end += 1
    if end < length and source[end] in "eE":
        digits = end + 2 if end + 1 < length and source[end + 1] in "+-" else end + 1
        if digits < length and source[digits] in _DIGITS:
            kind, end = DOUBLE, digits
            while end < length and source[end] in _DIGITS:
                end += 1
    if kind == INT and end < length and source[end] in "uU":
        return UINT, end + 1
    return kind, end


def _string(source: str, at: int, quote_at: int) -> tuple[str, int]:
    """The kind and end of the string or bytes literal whose prefix starts at ``at`` and
    whose quotes start at ``quote_at``; INVALID up to the line's end when it is not closed."""
    prefix = source[at:quote_at].lower()
    kind = BYTES if "b" in prefix else STRING
    raw = "r" in prefix
    quote = source[quote_at] * 3 if source.startswith(source[quote_at] * 3, quote_at) \
        else source[quote_at]
    end, length = quote_at + len(quote), len(source)
    while end < length:
        if source.startswith(quote, end):
            return kind, end + len(quote)
        if source[end] == "\n" and len(quote) == 1:
            break
        end += 2 if source[end] == "\\" and not raw else 1
    newline = source.find("\n", quote_at)
    return INVALID, length if newline < 0 or len(quote) == 3 else newline


def string_text(token: Token) -> str | None:
    """The characters of a string literal written without escapes (``'tier-one'``,
    ``r"a\\b"``); None for any other token, and for a string with an escape sequence."""
    if token.kind != STRING:
        return None
    prefix = len(token.text) - len(token.text.lstrip("rR"))
    body = token.text[prefix:]
    quote = 3 if body[:3] in ("'''", '"""') and len(body) >= 6 else 1
    inner = body[quote:-quote]
    return inner if prefix or "\\" not in inner else None


# ------------------------------------------------------------------------------------ parsing


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
    """A Pratt parser of CEL's expression grammar over ``tokens``."""

    def __init__(self, source: str) -> None:
        self.tokens = tokens(source)
        if any(token.kind == INVALID for token in self.tokens):
            raise _Unparsable
        self.pos = 0
        self.end = Token("end", "", len(source))

    def peek(self) -> Token:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else self.end

    def take(self, text: str | None = None) -> Token:
        token = self.peek()
        if token.kind == "end" or (text is not None and token.text != text):
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
        if self.peek().text != "?":
            return condition
        at = self.take("?").start
        then = self.binary(1)
        self.take(":")
        otherwise = self.expression()
        return Node("ternary", condition.start, otherwise.end, "?:", [condition, then, otherwise], at)

    def binary(self, precedence: int) -> Node:
        left = self.unary()
        while True:
            token = self.peek()
            level = _BINARY.get(token.text) if token.kind in (OP, IDENT) else None
            if level is None or level < precedence:
                return left
            self.pos += 1
            right = self.binary(level + 1)
            left = Node("binary", left.start, right.end, token.text, [left, right], token.start)

    def unary(self) -> Node:
        token = self.peek()
        if token.kind == OP and token.text in ("!", "-"):
            self.pos += 1
            operand = self.unary()
            # ``-1`` and ``-2.5`` are number literals; ``-"a"`` and ``-1u`` stay negations
            # (which the runtime refuses).
            if token.text == "-" and operand.kind == "literal" and operand.text in (INT, DOUBLE) \
                    and operand.start == token.start + 1:
                operand.start = token.start
                return operand
            return Node("unary", token.start, operand.end, token.text, [operand], token.start)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            text = self.peek().text
            if text == ".":
                at = self.take().start
                name = self.take()
                if name.kind != IDENT:
                    raise _Unparsable
                if self.peek().text == "(":
                    args, end = self.arguments("(", ")")
                    node = Node("call", node.start, end, name.text, [node, *args], name.start,
                                member=True)
                else:
                    node = Node("select", node.start, name.end, name.text, [node], at)
            elif text == "[":
                at = self.take().start
                index = self.expression()
                end = self.take("]").end
                node = Node("index", node.start, end, "[]", [node, index], at)
            else:
                return node

    def arguments(self, open_: str, close: str) -> tuple[list[Node], int]:
        self.take(open_)
        items: list[Node] = []
        while self.peek().text != close:
            items.append(self.expression())
            if self.peek().text == ":":  # a map entry: key, value pairs in order
                self.take(":")
                items.append(self.expression())
            if self.peek().text != ",":
                break
            self.take(",")
        return items, self.take(close).end

    def primary(self) -> Node:
        token = self.peek()
        if token.kind in LITERALS:
            self.pos += 1
            return Node("literal", token.start, token.end, token.kind)
        if token.kind == OP and token.text == "(":
            self.pos += 1
            inner = self.expression()
            end = self.take(")").end
            inner.start, inner.end = token.start, end  # the brackets belong to the sub-expression
            return inner
        if token.kind == OP and token.text == "[":
            items, end = self.arguments("[", "]")
            return Node("list", token.start, end, "[]", items, token.start)
        if token.kind == OP and token.text == "{":
            items, end = self.arguments("{", "}")
            return Node("map", token.start, end, "{}", items, token.start)
        if token.kind == OP and token.text == ".":
            self.pos += 1
            token = self.peek()
        if token.kind != IDENT:
            raise _Unparsable
        self.pos += 1
        end = token.end
        if token.text in ("true", "false"):
            return Node("literal", token.start, end, "bool")
        if token.text == "null":
            return Node("literal", token.start, end, "null_type")
        if self.peek().text == "(":
            args, end = self.arguments("(", ")")
            return Node("call", token.start, end, token.text, args, token.start)
        return Node("ident", token.start, end, token.text)


def parse(source: str) -> Node | None:
    """The syntax tree of ``source``, or None when this parser cannot read it."""
    try:
        return _Parser(source).parse()
    except (_Unparsable, RecursionError):
        return None


# Macros that bind a variable: `list.exists(x, ...)`, `m.transformMap(k, v, ...)`, `cel.bind(x, ...)`.
BINDING_MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter", "sortBy",
                            "transformList", "transformMap", "bind"})


def bound_names(source: str) -> frozenset[str]:
    """The variables ``source`` binds: the first one or two arguments of a binding macro
    (``.exists(x, ...)``, ``.transformMap(k, v, ...)``) when they are bare names."""
    found: set[str] = set()
    scanned = tokens(source)
    for index, token in enumerate(scanned):
        following = scanned[index + 1:index + 7]
        if len(following) < 4 or token.text != "." or following[0].text not in BINDING_MACROS:
            continue
        if following[1].text != "(" or following[2].kind != IDENT or following[3].text != ",":
            continue
        found.add(following[2].text)
        if len(following) > 5 and following[4].kind == IDENT and following[5].text == ",":
            found.add(following[4].text)
    return frozenset(found)
