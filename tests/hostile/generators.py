"""Generators of hostile files for the corpus: keyword arguments in, file content out.

Each case's ``case.yaml`` names one under ``generate:``; the runner writes what it returns.
"""

from __future__ import annotations

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
