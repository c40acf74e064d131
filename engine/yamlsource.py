"""YAML loading that keeps line numbers, rejects duplicate keys and stays within limits.

Every mapping is loaded as a :class:`Node` (a ``dict``) that remembers the line of each key,
so later validation stages can say ``file:line: field: message``. Timestamps are left as
strings so that a bad date is reported by the schema stage with its line, not by the parser.

Parsing runs in libyaml (PyYAML's C loader, shipped in its wheels), which composes the same
nodes with the same marks about seven times faster than the pure-Python parser, and refuses
more than 1,000 levels of nesting itself. The limits of the file's kind
(:class:`core.inputfiles.ReadLimits`) are then checked on each composed document, before
anything recurses into it: the number of documents, the nesting depth (construction
recurses), and how many nodes aliases add (a few hundred bytes of nested aliases expand to
billions). Where libyaml is missing, the pure-Python loader checks the same limits while it
composes.
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

_CLoader: type[Any] | None = None
if getattr(yaml, "__with_libyaml__", False):

    class _LibyamlLoader(yaml.CSafeLoader):
        """libyaml composes; the constructors and resolvers are those of ``_Loader``."""

        yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
        yaml_constructors = _Loader.yaml_constructors

    _CLoader = _LibyamlLoader


# libyaml refuses more than 1,000 levels before composing (no exception class of its own).
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


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
    if _CLoader is None:  # pragma: no cover - PyYAML's wheels ship libyaml
        return _parse_in_python(text, path, limits)
    loader = _CLoader(text)
    documents: list[Any] = []
    try:
        count = 0
        while loader.check_node():
            node = loader.get_node()
            count += 1
            if count > limits.max_documents:
                raise LimitExceeded(None, None, f"more than {limits.max_documents:,} documents "
                                    f"in one {limits.kind} file", node.start_mark)
            anchors = "&" in text  # without an anchor there is no alias to expand
            if anchors:
                _check_composed(node, limits)
            else:
                _check_depth(node, limits.max_depth)
            document = _construct(loader, node, {} if anchors else None)
            loader.constructed_objects, loader.recursive_objects = {}, {}
            if document is not None:
                documents.append(document)
    except yaml.YAMLError as error:
        if isinstance(error, LimitExceeded) or getattr(error, "problem", None) == _LIBYAML_TOO_DEEP:
            # Past a limit: the Python parser, which checks while it composes, stops at the
            # event where the document first went past it, and says so with that line.
            return _parse_in_python(text, path, limits)
        raise InputError([_problem_from_yaml(str(path), error)]) from None
    finally:
        loader.dispose()
    return documents


def _parse_in_python(text: str, path: str | Path, limits: ReadLimits) -> list[Any]:
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


def _check_composed(root: yaml.Node, limits: ReadLimits) -> None:
    """The limits of a composed document: depth, and nodes added by aliases (a node reached
    again is an alias; composed documents share it instead of copying it).

    One pass over the distinct nodes, children before parents, without recursion: each
    node's expanded size and height. A node that contains itself is a recursive alias.
    """
    extents: dict[int, _Extent] = {}
    open_nodes: set[int] = set()
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if not children_done:
            if key in extents:
                continue
            if key in open_nodes:
                raise LimitExceeded(None, None, "an alias refers to a node that contains it "
                                    "(recursive structures are not read)", node.start_mark)
            if not isinstance(node, yaml.CollectionNode):
                extents[key] = _Extent(1, 0)
                distinct += 1
                continue
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(_children(node)))
            continue
        open_nodes.discard(key)
        extent = _Extent(1, 0)
        for child in _children(node):  # each done before its parent: it is in extents
            extent.add(extents[id(child)])
        extent.height += 1
        if extent.height > limits.max_depth:
            raise LimitExceeded(None, None, f"nesting deeper than {limits.max_depth} levels",
                                node.start_mark)
        extents[key] = extent
        distinct += 1
        if extent.size - distinct > limits.max_alias_nodes:
            raise LimitExceeded(None, None, f"aliases expand to more than "
                                f"{limits.max_alias_nodes:,} nodes", node.start_mark)


def _check_depth(node: yaml.Node, max_depth: int, depth: int = 0) -> None:
    """Nesting within ``max_depth`` (a tree: no aliases); recursion stops at the limit."""
    depth += 1
    if depth > max_depth:
        raise LimitExceeded(None, None, f"nesting deeper than {max_depth} levels", node.start_mark)
    values = (node.value if isinstance(node, yaml.SequenceNode)
              else [part for pair in node.value for part in pair])
    for child in values:
        if not isinstance(child, yaml.ScalarNode):
            _check_depth(child, max_depth, depth)


_STR = "tag:yaml.org,2002:str"
_MAP = yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG
_SEQ = yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG
_MERGE = "tag:yaml.org,2002:merge"


def _construct(loader: Any, node: yaml.Node, shared: dict[int, Any] | None) -> Any:
    """The value of a checked node: what ``construct_document`` builds, in a tenth of the
    calls (strings, mappings and sequences directly; other scalars by the constructor).
    ``shared`` memoizes nodes that aliases may reach twice (None: the document has none)."""
    if shared is not None and id(node) in shared:
        return shared[id(node)]
    tag = node.tag
    if tag == _STR and isinstance(node, yaml.ScalarNode):
        return node.value
    if tag == _MAP and isinstance(node, yaml.MappingNode):
        if any(key.tag == _MERGE for key, _ in node.value):
            loader.flatten_mapping(node)
        result = Node()
        result.line, result.key_lines = node.start_mark.line + 1, {}
        if shared is not None:
            shared[id(node)] = result
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, shared)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be scalars", key_node.start_mark)
            skey = str(key)
            if skey in result:
                raise DuplicateKeyError(
                    None, None, f'duplicate key "{skey}" (first defined on line '
                    f"{result.key_lines[skey]})", key_node.start_mark)
            result[skey] = _construct(loader, value_node, shared)
            result.key_lines[skey] = key_node.start_mark.line + 1
        return result
    if tag == _SEQ and isinstance(node, yaml.SequenceNode):
        items = NodeList()
        items.line = node.start_mark.line + 1
        items.item_lines = [child.start_mark.line + 1 for child in node.value]
        if shared is not None:
            shared[id(node)] = items
        items.extend(_construct(loader, child, shared) for child in node.value)
        return items
    value = loader.construct_object(node, deep=True)
    if shared is not None:
        shared[id(node)] = value
    return value


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)




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
