"""The bounds of a rule, checked when scorecards load, before the CEL runtime sees an expression.

The runtime (native code) has no limits of its own: a long chain of operators compiles, then
overflows the stack while it is evaluated (a segmentation fault, measured below), a syntax
error past column 65,535 panics the parser, and nested comprehensions over long lists run for
minutes. So ``levelset validate`` refuses what the runtime could not bear, by a scan of the
expression's tokens (``rules.syntax``: a tree of 15,000 terms would be the very recursion
that crashes), with the limit and the value. Measured on common-expression-language 0.10
(Python 3.11, Linux x86-64): ``1 + 1 + ... > 0`` is evaluated with 12,000 terms and crashes
with 15,000 on an 8 MiB stack; on a 1 MiB thread stack it crashes with 2,000. Selection and
index chains (``x.a.a...``, ``l[0][0]...``) crash at the same lengths; ``&&`` and ``||``
chains do not. The parser itself refuses about 100 nested brackets.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules.syntax import IDENT, LITERALS, OP, tokens

# Characters in one expression. Shipped rules are under 100; a long allow-list
# (`service.owner in ["a", "b", ...]`) fits. Far below the parser's 65,535-column panic.
MAX_EXPRESSION_CHARS = 10_000
# Terms in the longest chain of operations (`a + b + c` is 3 terms; selections, indexes,
# unary operators and the enclosing brackets count too): the depth the runtime recurses to.
# A twelfth of where an 8 MiB stack overflows, half of where a 1 MiB thread stack does.
MAX_CHAIN_TERMS = 1_000
# Brackets, parentheses and braces inside one another.
MAX_NESTING = 32
# Comprehensions (all, exists, exists_one, map, filter, ...) inside one another: two nested
# over lists of 1,000 items is a million steps; three is a billion (minutes, holding the GIL).
MAX_COMPREHENSION_NESTING = 2
# A rule's share of the score: finite and at most this, so a score is never NaN or infinite.
MAX_WEIGHT = 1_000.0

COMPREHENSIONS = frozenset({
    "all", "exists", "exists_one", "existsOne", "map", "filter",
    "sortBy", "transformList", "transformMap", "transformMapEntry",
})

_OPERATORS = frozenset({"&&", "||", "==", "!=", "<=", ">=", "<", ">", "-", "+", "*", "/", "%", "!",
                        "?", "."})
_OPEN, _CLOSE = frozenset("([{"), frozenset(")]}")
_OPERANDS = LITERALS | {IDENT}


@dataclass(frozen=True, slots=True)
class Violation:
    """One limit an expression exceeds; ``offset`` is where in the text it first does."""

    message: str
    offset: int


@dataclass(slots=True)
class Shape:
    """What the limits measure, with the offset where each maximum is first reached."""

    chain_terms: int = 1
    nesting: int = 0
    comprehension_nesting: int = 0
    chain_at: int = 0
    nesting_at: int = 0
    comprehension_at: int = 0


def measure(source: str) -> Shape:
    """The longest chain, deepest nesting and deepest comprehension nesting of ``source``.

    A scan of tokens, not a parse: it over-counts rather than under-counts. Each operator,
    selection (``.``) and index adds a term to the chain of its bracket level; a comma starts
    a new chain; the chains of enclosing brackets (and the brackets) add up.
    """
    shape = Shape()
    stack: list[tuple[int, bool]] = []  # (the enclosing level's operations, is a comprehension)
    operations = 0  # operations in the current chain at this level
    outer = 0  # operations and brackets of the enclosing levels
    comprehensions = 0
    previous = ("", "")  # the last two significant tokens' (kind, text)
    last = ("", "")
    for token in tokens(source):
        text = token.text
        kind = "open" if token.kind == OP and text in _OPEN else \
            "close" if token.kind == OP and text in _CLOSE else token.kind
        operand_end = last[0] in _OPERANDS or last[0] == "close"
        index = text == "[" and operand_end and last[1] != "in"  # l[0]
        if (kind == OP and text in _OPERATORS) or index or (kind == IDENT and text == "in"):
            operations += 1
            if outer + operations + 1 > shape.chain_terms:
                shape.chain_terms, shape.chain_at = outer + operations + 1, token.start
        if kind == "open":
            comprehension = text == "(" and previous[1] == "." and last[1] in COMPREHENSIONS
            stack.append((operations, comprehension))
            outer += operations + 1
            operations = 0
            comprehensions += comprehension
            if len(stack) > shape.nesting:
                shape.nesting, shape.nesting_at = len(stack), token.start
            if comprehensions > shape.comprehension_nesting:
                shape.comprehension_nesting = comprehensions
                shape.comprehension_at = token.start
        elif kind == "close":
            if stack:
                operations, comprehension = stack.pop()
                outer -= operations + 1
                comprehensions -= comprehension
        elif text == ",":
            operations = 0
        previous, last = last, (kind, text)
    return shape


def violations(source: str) -> list[Violation]:
    """Every limit ``source`` exceeds, with the value and the limit; empty when within all."""
    found = []
    if len(source) > MAX_EXPRESSION_CHARS:
        found.append(Violation(f"expression is {len(source):,} characters long; "
                               f"the limit is {MAX_EXPRESSION_CHARS:,}", 0))
    shape = measure(source)
    if shape.chain_terms > MAX_CHAIN_TERMS:
        found.append(Violation(f"expression has {shape.chain_terms:,} terms in one chain of "
                               f"operations; the limit is {MAX_CHAIN_TERMS:,} (split the rule)",
                               shape.chain_at))
    if shape.nesting > MAX_NESTING:
        found.append(Violation(f"expression nests brackets {shape.nesting:,} deep; "
                               f"the limit is {MAX_NESTING}", shape.nesting_at))
    if shape.comprehension_nesting > MAX_COMPREHENSION_NESTING:
        found.append(Violation(f"expression nests comprehensions (all, exists, map, filter, ...) "
                               f"{shape.comprehension_nesting} deep; the limit is "
                               f"{MAX_COMPREHENSION_NESTING}", shape.comprehension_at))
    return found
