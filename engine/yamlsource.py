"""YAML loading that keeps line numbers and rejects duplicate keys.

Every mapping is loaded as a :class:`Node` (a ``dict``) that remembers the line of each key,
so later validation stages can say ``file:line: field: message``. Timestamps are left as
strings so that a bad date is reported by the schema stage with its line, not by the parser.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from core.errors import InputError, Problem


class Node(dict[str, Any]):
    """A mapping loaded from YAML with the line (1-based) of itself and of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str | int) -> int:
        return self.key_lines.get(str(key), self.line)


class NodeList(list[Any]):
    """A sequence loaded from YAML with the line of itself and of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class _Loader(yaml.SafeLoader):
    pass


# Dates stay strings: the schema stage parses them and reports bad ones with their line.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class DuplicateKeyError(yaml.MarkedYAMLError):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> Node:
    loader.flatten_mapping(node)
    result = Node()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) or key is None:
            raise yaml.constructor.ConstructorError(
                None, None, "mapping keys must be scalars", key_node.start_mark
            )
        skey = str(key)
        if skey in result:
            raise DuplicateKeyError(
                None,
                None,
                f'duplicate key "{skey}" (first defined on line {result.key_lines[skey]})',
                key_node.start_mark,
            )
        result[skey] = loader.construct_object(value_node, deep=True)
        result.key_lines[skey] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> NodeList:
    result = NodeList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _problem_from_yaml(path: str, error: yaml.YAMLError) -> Problem:
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    message = "; ".join(p for p in parts if p) or str(error)
    return Problem(path, line, f"invalid YAML: {message}")


def load_documents(text: str, path: str | Path) -> list[Any]:
    """Parse every document of a YAML stream; raise InputError naming file and line."""
    try:
        return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as error:
        raise InputError([_problem_from_yaml(str(path), error)]) from None


def load_file(path: Path) -> list[Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError.single(path, None, f"cannot read file: {error}") from None
    return load_documents(text, path)


def line_for(document: Any, loc: Sequence[str | int]) -> int | None:
    """The line of the deepest node on ``loc`` (a path of keys and indexes) that exists."""
    node: Any = document
    line: int | None = getattr(document, "line", None)
    for part in loc:
        if isinstance(node, Node) and str(part) in node:
            line = node.line_of(str(part))
            node = node[str(part)]
        elif isinstance(node, NodeList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.line_of(part)
            node = node[part]
        else:
            break
    return line


def walk_files(paths: Sequence[Path], suffixes: tuple[str, ...] = (".yaml", ".yml")) -> Iterator[Path]:
    """Files named by ``paths``: files as given, directories searched recursively, sorted."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in suffixes and p.is_file())
        else:
            yield path
