"""Static analysis of which facts an expression reads.

CEL's own parser (in the Rust extension) does not expose its syntax tree, so the fact paths an
expression reads are found from its tokens (``rules.syntax``, which reads every expression the
runtime accepts, even those too deep for a tree): a namespace identifier followed by ``.field``
selections, e.g. ``github.branch_protection.required_reviews``. A selection that is followed
by ``(`` is a method call (``files.exists(...)``), which ends the path; so does an index
(``labels["team"]``). String literals and comments are skipped.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from rules.syntax import IDENT, tokens


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
    scanned = [(token.kind, token.text, token.start) for token in tokens(source)]
    found: list[FactReference] = []
    i = 0
    while i < len(scanned):
        kind, text, offset = scanned[i]
        preceded_by_dot = i > 0 and scanned[i - 1][1] == "."
        if kind == IDENT and text in namespaces and not preceded_by_dot:
            path = [text]
            j = i + 1
            while (
                j + 1 < len(scanned)
                and scanned[j][1] == "."
                and scanned[j + 1][0] == IDENT
                and not (j + 2 < len(scanned) and scanned[j + 2][1] == "(")
            ):
                path.append(scanned[j + 1][1])
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
    for token in tokens(source):
        if token.kind == IDENT and previous != "." and token.text in names:
            return True
        previous = token.text
    return False
