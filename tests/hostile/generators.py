"""Generators of hostile inputs too big or too odd to commit: keyword arguments in, file
content (str or bytes) out. A case names one under ``generate:``; the runner writes it."""

from __future__ import annotations

# --- rules --------------------------------------------------------------------------------


def _scorecard(name: str, expression: str) -> str:
    return (f"apiVersion: levelset.dev/v1\nkind: Scorecard\nmetadata: {{name: {name}}}\n"
            f"spec:\n  levels: [Bronze]\n  rules:\n"
            f"    - {{name: owned, level: Bronze, expression: 'service.owner != \"\"'}}\n"
            f"    - name: hostile\n      level: Bronze\n      expression: '{expression}'\n")


def long_expression(terms: int, name: str = "long") -> str:
    """A scorecard whose rule is ``1 + 1 + ... > 0`` with ``terms`` ones (on line 10)."""
    return _scorecard(name, " + ".join(["1"] * terms) + " > 0")


def late_syntax_error(column: int, name: str = "late") -> str:
    """A scorecard whose rule has its syntax error near ``column`` (on line 10)."""
    return _scorecard(name, 'service.owner == "' + "a" * column + '" && )')
