"""JSON loading that keeps the lines of the outer keys, rejects duplicate keys and stays
within limits.

The outer ``keyed_levels`` objects become :class:`engine.yamlsource.Node` mappings that
remember the line of each key (a facts file's services and namespaces), so errors read
``facts.json:14: service "payments": unknown namespace "githb"``; everything below is decoded
by the standard library's C decoder, which is why a large facts file should be JSON. The
nesting depth is checked on the text before decoding (the decoder recurses), and NaN and
Infinity, which are not JSON, are refused.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import accumulate
from json.decoder import scanstring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from core.errors import InputError, Problem
from core.inputfiles import ReadLimits
from engine.yamlsource import Node

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class _Refused(ValueError):
    """Valid to Python's decoder, refused here (NaN, Infinity, a duplicate key)."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON (write null for a value that is not known)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        duplicate = next(key for key, count in counts.items() if count > 1)
        raise _Refused(f'duplicate key "{duplicate}"')
    return result


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def depth_problem(text: str, file: str, max_depth: int) -> Problem | None:
    """A problem at the first bracket nested deeper than ``max_depth``, if there is one."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))  # both passes run in C
    if max(accumulate(map(_STEP.__getitem__, brackets)), default=0) <= max_depth:
        return None
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):  # only for the rare deep file: where?
        depth += _STEP.get(match.group(), 0)
        if depth > max_depth:
            return Problem(file, _line(text, match.start()), f"nesting deeper than {max_depth} levels")
    return None  # pragma: no cover - the first pass found one


class _Reader:
    def __init__(self, text: str, file: str, keyed_levels: int) -> None:
        self.text, self.file, self.keyed_levels = text, file, keyed_levels
        self.decoder = json.JSONDecoder(parse_constant=_refuse_constant,
                                        object_pairs_hook=_unique_keys)
        self.counted, self.lines = 0, 1  # lines before position `counted`, plus one

    def line_at(self, pos: int) -> int:
        if pos < self.counted:
            return _line(self.text, pos)
        self.lines += self.text.count("\n", self.counted, pos)
        self.counted = pos
        return self.lines

    def fail(self, pos: int, message: str) -> InputError:
        return InputError([Problem(self.file, _line(self.text, pos), f"invalid JSON: {message}")])

    def skip(self, pos: int) -> int:
        return _WHITESPACE.match(self.text, pos).end()  # type: ignore[union-attr] # matches ""

    def document(self) -> Any:
        value, end = self.value(self.skip(0), 0, "")
        end = self.skip(end)
        if end != len(self.text):
            raise self.fail(end, "extra data after the document")
        return value

    def value(self, pos: int, level: int, where: str) -> tuple[Any, int]:
        if level < self.keyed_levels and self.text.startswith("{", pos):
            return self.object(pos, level, where)
        try:
            return self.decoder.raw_decode(self.text, pos)
        except json.JSONDecodeError as error:
            raise InputError([Problem(self.file, error.lineno, f"invalid JSON: {error.msg}")]) from None
        except _Refused as error:
            message = f"{where}: {error}" if where else str(error)
            raise InputError([Problem(self.file, self.line_at(pos), message)]) from None

    def object(self, pos: int, level: int, where: str) -> tuple[Node, int]:
        text = self.text
        node = Node()
        node.line, node.key_lines = self.line_at(pos), {}
        pos = self.skip(pos + 1)
        if text.startswith("}", pos):
            return node, pos + 1
        while True:
            if not text.startswith('"', pos):
                raise self.fail(pos, "expecting a key in double quotes")
            key_line = self.line_at(pos)
            try:
                key, pos = scanstring(text, pos + 1)
            except json.JSONDecodeError as error:
                raise self.fail(error.pos, error.msg) from None
            if key in node:
                raise InputError([Problem(self.file, key_line, f'duplicate key "{key}" (first '
                                          f"defined on line {node.key_lines[key]})")])
            pos = self.skip(pos)
            if not text.startswith(":", pos):
                raise self.fail(pos, "expecting ':' after a key")
            node[key], pos = self.value(self.skip(pos + 1), level + 1,
                                        f"{where}.{key}" if where else key)
            node.key_lines[key] = key_line
            pos = self.skip(pos)
            if text.startswith(",", pos):
                pos = self.skip(pos + 1)
            elif text.startswith("}", pos):
                return node, pos + 1
            else:
                raise self.fail(pos, "expecting ',' or '}'")


def parse_json(text: str, path: str | Path, limits: ReadLimits, keyed_levels: int = 2) -> Any:
    """One JSON document within ``limits`` (but its size), its outer objects as Nodes."""
    text = text.removeprefix("\ufeff")
    problem = depth_problem(text, str(path), limits.max_depth)
    if problem is not None:
        raise InputError([problem])
    return _Reader(text, str(path), keyed_levels).document()
