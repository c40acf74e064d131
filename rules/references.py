"""Static analysis of which facts an expression reads.

CEL's own parser (in the Rust extension) does not expose its syntax tree, so the fact paths an
expression reads are found from its tokens: a namespace identifier followed by ``.field``
selections, e.g. ``github.branch_protection.required_reviews``. A selection that is followed
by ``(`` is a method call (``files.exists(...)``), which ends the path; so does an index
(``labels["team"]``). String literals and comments are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<string>[rRbB]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
    | (?P<comment>//[^\n]*)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[uU]?)
    | (?P<space>\s+)
    | (?P<op>.)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class FactReference:
    """A dotted fact path and the character offset where it starts in the expression."""

    path: tuple[str, ...]
    offset: int

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def fact_references(source: str, namespaces: Collection[str]) -> list[FactReference]:
    """Every ``namespace.a.b`` chain in ``source`` whose first identifier is a namespace."""
    tokens = [
        (m.lastgroup, m.group(), m.start())
        for m in _TOKEN.finditer(source)
        if m.lastgroup not in ("space", "comment")
    ]
    found: list[FactReference] = []
    i = 0
    while i < len(tokens):
        kind, text, offset = tokens[i]
        preceded_by_dot = i > 0 and tokens[i - 1][1] == "."
        if kind == "ident" and text in namespaces and not preceded_by_dot:
            path = [text]
            j = i + 1
            while (
                j + 1 < len(tokens)
                and tokens[j][1] == "."
                and tokens[j + 1][0] == "ident"
                and not (j + 2 < len(tokens) and tokens[j + 2][1] == "(")
            ):
                path.append(tokens[j + 1][1])
                j += 2
            found.append(FactReference(tuple(path), offset))
            i = j
        else:
            i += 1
    return found


def reads_identifier(source: str, names: Collection[str]) -> bool:
    """Whether ``source`` uses one of ``names`` as a variable or a function (not as a field
    selection such as ``custom.now``, nor inside a string literal or a comment)."""
    previous = ""
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup
        if kind in ("space", "comment"):
            continue
        if kind == "ident" and previous != "." and match.group() in names:
            return True
        previous = match.group()
    return False
