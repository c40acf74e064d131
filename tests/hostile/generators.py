"""Generators of hostile inputs too big or too odd to commit: keyword arguments in, file
content (str or bytes) out. A case names one under ``generate:``; the runner writes it."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_FACTS = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "facts.json"

# --- input files: size, depth, aliases ----------------------------------------------------------


def deep_yaml(depth: int, head: str = "", tail: str = "") -> str:
    """``head`` + a flow sequence nested ``depth`` deep + ``tail``."""
    return head + "[" * depth + "]" * depth + tail + "\n"


def deep_json(depth: int, service: str = "payments", namespace: str = "github") -> str:
    """A facts file whose one fact is a list nested ``depth`` deep."""
    return (f'{{"{service}": {{"{namespace}": {{"nested": ' + "[" * depth + "]" * depth
            + "}}}\n")


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Nested YAML aliases: a few hundred bytes that expand to ``width ** levels`` nodes."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def large_file(mib: int) -> bytes:
    """A YAML comment ``mib`` MiB long (valid YAML; only its size is hostile)."""
    return b"#" + b" " * (mib * 1024 * 1024 - 2) + b"\n"


# --- facts for rules ------------------------------------------------------------------------


def facts_with_custom(service: str, **custom: object) -> str:
    """The sample facts file with ``custom`` facts added to one service."""
    facts = json.loads(SAMPLE_FACTS.read_text(encoding="utf-8"))
    facts.setdefault(service, {}).setdefault("custom", {}).update(custom)
    return json.dumps(facts)


def facts_with_long_list(service: str, name: str, length: int) -> str:
    """The sample facts with a custom list fact of ``length`` integers for one service."""
    return facts_with_custom(service, **{name: list(range(length))})


# --- request bodies ------------------------------------------------------------------------


def nested_json_body(depth: int) -> str:
    """A facts push whose one fact nests ``depth`` arrays deep."""
    return '{"facts": {"deep": ' + "[" * depth + "]" * depth + "}}"


def big_facts_body(megabytes: int) -> bytes:
    """A facts push of about ``megabytes`` MiB: one long string."""
    return b'{"facts": {"blob": "' + b"x" * (megabytes << 20) + b'"}}'


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
