"""GitHub's published GraphQL schema, for validating and answering queries on loopback.

The schema comes from the npm package ``@octokit/graphql-schema`` (GitHub's introspection
result), installed with the machine's npm into ``.cache/npm`` under the repository the first
time it is needed. A query the real GitHub would reject fails validation here too.

``query_cost`` is GitHub's documented rule: each connection in the query is one request per
node of the connection it is nested in (assuming every ``first``/``last`` is filled), the sum
is divided by 100 and rounded to the nearest whole number, at least 1.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import threading
from functools import cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    build_client_schema,
    get_named_type,
    value_from_ast_untyped,
)
from graphql.type import GraphQLInterfaceType, GraphQLObjectType

ROOT = Path(__file__).resolve().parents[2]
NPM_PREFIX = ROOT / ".cache" / "npm"
PACKAGE = "@octokit/graphql-schema@15.26.1"
SCHEMA_JSON = NPM_PREFIX / "node_modules" / "@octokit" / "graphql-schema" / "schema.json"
_install_lock = threading.Lock()


def schema_file() -> Path:
    """The introspection JSON, installed with npm when it is not there yet (scripts/bootstrap
    installs it; this covers a test run without it). One process installs, the others wait."""
    if SCHEMA_JSON.is_file():
        return SCHEMA_JSON
    NPM_PREFIX.mkdir(parents=True, exist_ok=True)
    with _install_lock, open(NPM_PREFIX / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not SCHEMA_JSON.is_file():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("npm is needed to install GitHub's GraphQL schema "
                                   f"({PACKAGE}); install Node.js")
            subprocess.run([npm, "install", "--prefix", str(NPM_PREFIX), "--no-audit",
                            "--no-fund", "--no-save", PACKAGE], check=True,
                           capture_output=True, timeout=300)
    return SCHEMA_JSON


@cache
def github_schema() -> GraphQLSchema:
    raw = json.loads(schema_file().read_text(encoding="utf-8"))
    schema = build_client_schema(raw.get("data", raw))
    # GitHub's schema breaks a few interface-deprecation rules that graphql-core checks
    # before validating any query; the schema is GitHub's own, so it is taken as valid.
    schema._validation_errors = []
    return schema


def query_cost(schema: GraphQLSchema, document: DocumentNode,
               variables: dict[str, Any] | None = None) -> tuple[int, int]:
    """(rate-limit points, requests) of a query, by GitHub's documented rule."""
    fragments = {d.name.value: d for d in document.definitions
                 if isinstance(d, FragmentDefinitionNode)}
    requests = 0
    for definition in document.definitions:
        selection_set = getattr(definition, "selection_set", None)
        if selection_set is not None and not isinstance(definition, FragmentDefinitionNode):
            requests += _requests(schema, selection_set, schema.query_type, 1, fragments,
                                  variables or {})
    return max(1, int(requests / 100 + 0.5)), requests


def _requests(schema: GraphQLSchema, selection_set: SelectionSetNode, parent: Any,
              multiplier: int, fragments: dict[str, FragmentDefinitionNode],
              variables: dict[str, Any]) -> int:
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
                continue
            field = parent.fields.get(selection.name.value)
            if field is None or selection.selection_set is None:
                continue
            named = get_named_type(field.type)
            inner = multiplier
            if named.name.endswith("Connection"):
                total += multiplier
                arguments = {a.name.value: value_from_ast_untyped(a.value, variables)
                             for a in selection.arguments}
                page = arguments.get("first") or arguments.get("last") or 1
                inner = multiplier * int(page)
            total += _requests(schema, selection.selection_set, named, inner, fragments,
                               variables)
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            target = schema.get_type(condition.name.value) if condition else parent
            total += _requests(schema, selection.selection_set, target, multiplier, fragments,
                               variables)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            target = schema.get_type(fragment.type_condition.name.value)
            total += _requests(schema, fragment.selection_set, target, multiplier, fragments,
                               variables)
    return total


def connection(items: list[Any], *, first: int | None = None, after: str | None = None,
               last: int | None = None, edge: Any = None) -> dict[str, Any]:
    """A GraphQL connection over ``items`` (cursors are positions), as GitHub pages it."""
    start = int(after) + 1 if after is not None else 0
    size = first if first is not None else (last if last is not None else 100)
    chunk = items[start:start + size]
    return {
        "totalCount": len(items),
        "nodes": chunk,
        "edges": [{"cursor": str(start + i), "node": node, **(edge(node) if edge else {})}
                  for i, node in enumerate(chunk)],
        "pageInfo": {"hasNextPage": start + size < len(items), "hasPreviousPage": start > 0,
                     "startCursor": str(start) if chunk else None,
                     "endCursor": str(start + len(chunk) - 1) if chunk else None},
    }


def field_resolver(source: Any, info: Any, **arguments: Any) -> Any:
    """Values from dicts; a callable value is called with the field's arguments; a field
    named in the dict's ``__faults__`` raises the GraphQL error given there."""
    if not isinstance(source, dict):
        return getattr(source, info.field_name, None)
    fault = source.get("__faults__", {}).get(info.field_name)
    if fault is not None:
        raise fault()
    value = source.get(info.field_name)
    return value(**arguments) if callable(value) else value
