"""Generators of hostile inputs too big or too odd to commit: each takes keyword arguments
and returns the file's content (str or bytes). A case names one in its ``generate`` list."""

from __future__ import annotations

import json
from pathlib import Path

SAMPLE_FACTS = Path(__file__).resolve().parent.parent / "fixtures" / "sample" / "facts.json"


def facts_with_custom(service: str, **custom: object) -> str:
    """The sample facts file with ``custom`` facts added to one service."""
    facts = json.loads(SAMPLE_FACTS.read_text(encoding="utf-8"))
    facts.setdefault(service, {}).setdefault("custom", {}).update(custom)
    return json.dumps(facts)


def facts_with_long_list(service: str, name: str, length: int) -> str:
    """The sample facts with a custom list fact of ``length`` integers for one service."""
    return facts_with_custom(service, **{name: list(range(length))})


def nested_json_body(depth: int) -> str:
    """A facts push whose one fact nests ``depth`` arrays deep."""
    return '{"facts": {"deep": ' + "[" * depth + "]" * depth + "}}"


def big_facts_body(megabytes: int) -> bytes:
    """A facts push of about ``megabytes`` MiB: one long string."""
    return b'{"facts": {"blob": "' + b"x" * (megabytes << 20) + b'"}}'
