"""YAML loading that keeps line numbers, rejects duplicate keys and stays within limits.

Every mapping is loaded as a :class:`Node` (a ``dict``) that remembers the line of each key,
so later validation stages can say ``file:line: field: message``. Timestamps are left as
strings so that a bad date is reported by the schema stage with its line, not by the parser.

The limits of the file's kind (:class:`core.inputfiles.ReadLimits`) are checked while the
document is composed, before anything recurses into it: the number of documents, the nesting
depth (PyYAML composes and constructs recursively, so 1,000 levels would raise RecursionError),
and how many nodes aliases add (a few hundred bytes of nested aliases expand to billions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from core.errors import InputError, Problem
from core.inputfiles import ReadLimits, check_size, read_text


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


class LimitExceeded(yaml.MarkedYAMLError):
    """The document goes past one of the limits of its file's kind."""


def _limit(message: str, event: yaml.Event) -> LimitExceeded:
    return LimitExceeded(None, None, message, cast(yaml.Mark, event.start_mark))


class _Loader(yaml.SafeLoader):
    """SafeLoader composing within ``limits``: depth, alias expansion (documents: the caller).

    An alias counts as the node it names, expanded: its nodes count towards the alias limit
    and its depth adds to the depth where it stands (a chain of aliases to deep nodes nests
    as deep as the expanded document, which is what the code reading it walks).
    """

    def __init__(self, stream: str, limits: ReadLimits) -> None:
        super().__init__(stream)
        self.limits = limits
        # For each collection being composed (innermost last): the expanded size and height
        # of its children so far. The first entry collects the documents.
        self.open: list[_Extent] = [_Extent()]
        self.anchored: dict[str, _Extent] = {}
        self.alias_nodes = 0  # nodes added by every alias of the file so far

    def compose_document(self) -> yaml.Node | None:
        self.anchored = {}
        return super().compose_document()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._count_alias(event)
            return super().compose_node(parent, index)
        collection = isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent)
        depth = len(self.open) - 1  # collections holding this node
        if collection and depth >= self.limits.max_depth:
            raise _limit(f"nesting deeper than {self.limits.max_depth} levels", event)
        self.open.append(_Extent())
        try:
            node = super().compose_node(parent, index)
        finally:
            children = self.open.pop()
        extent = _Extent(1 + children.size, children.height + collection)
        self.open[-1].add(extent)
        if event.anchor is not None:
            self.anchored[event.anchor] = extent
        return node

    def _count_alias(self, event: yaml.AliasEvent) -> None:
        anchor = event.anchor
        if anchor is None or anchor not in self.anchors:
            return  # the composer reports the undefined alias
        extent = self.anchored.get(anchor)
        if extent is None:
            raise _limit(f'alias "*{anchor}" refers to a node that contains it (recursive '
                         "structures are not read)", event)
        depth = len(self.open) - 1
        if depth + extent.height > self.limits.max_depth:
            raise _limit(f"nesting deeper than {self.limits.max_depth} levels (with alias "
                         f'"*{anchor}" expanded)', event)
        self.alias_nodes += extent.size
        if self.alias_nodes > self.limits.max_alias_nodes:
            raise _limit(f"aliases expand to more than {self.limits.max_alias_nodes:,} nodes", event)
        self.open[-1].add(extent)


@dataclass
class _Extent:
    """A node's size (nodes, aliases expanded) and height (collections nested in it, itself
    included)."""

    size: int = 0
    height: int = 0

    def add(self, child: _Extent) -> None:
        self.size += child.size
        self.height = max(self.height, child.height)


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
    if isinstance(error, LimitExceeded):
        return Problem(path, line, str(error.problem))
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    message = "; ".join(p for p in parts if p) or str(error)
    return Problem(path, line, f"invalid YAML: {message}")


def parse_documents(text: str, path: str | Path, limits: ReadLimits) -> list[Any]:
    """Parse every document of a YAML stream within ``limits`` (but its size); raise
    InputError naming file and line."""
    loader = _Loader(text, limits)
    documents: list[Any] = []
    try:
        count = 0
        while loader.check_data():
            count += 1
            if count > limits.max_documents:
                raise _limit(f"more than {limits.max_documents:,} documents in one "
                             f"{limits.kind} file", loader.peek_event())
            document = loader.get_data()
            if document is not None:
                documents.append(document)
    except yaml.YAMLError as error:
        raise InputError([_problem_from_yaml(str(path), error)]) from None
    finally:
        loader.dispose()
    return documents


def load_documents(text: str, path: str | Path, limits: ReadLimits) -> list[Any]:
    """Parse text read elsewhere (a stored or fetched file): its size, then its documents."""
    check_size(text, str(path), limits)
    return parse_documents(text, path, limits)


def load_file(path: Path, limits: ReadLimits) -> list[Any]:
    """Read a file within ``limits`` and parse its documents; InputError names file and line."""
    return parse_documents(read_text(path, limits), path, limits)


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
