"""Storage stays the one place that speaks SQL, in functions short enough to read."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import ROOT

STORAGE = ROOT / "engine" / "storage"
# What code outside storage may take from the database libraries: a session to pass along,
# and exception types to answer with.
ALLOWED = {"sqlmodel": {"Session"}, "sqlalchemy.exc": None}
QUERY_CALLS = {"execute", "exec_driver_sql", "scalars", "scalar"}


def python_files(*packages: str) -> Iterator[Path]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if STORAGE not in path.parents and "migrations" not in path.parts:
                yield path


def test_no_sql_outside_storage() -> None:
    found = []
    for path in python_files("engine", "collectors", "rules"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.ImportFrom) and node.module and (
                node.module.split(".")[0] in ("sqlalchemy", "sqlmodel")
            ):
                allowed = ALLOWED.get(node.module, set())
                names = {alias.name for alias in node.names}
                if allowed is not None and not names <= allowed:
                    found.append(f"{where}: imports {sorted(names - allowed)} from {node.module}")
            elif isinstance(node, ast.Import) and any(
                alias.name.split(".")[0] in ("sqlalchemy", "sqlmodel") for alias in node.names
            ):
                found.append(f"{where}: imports a database library")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr in QUERY_CALLS and _database_handle(node.func.value)
            ):
                found.append(f"{where}: calls .{node.func.attr}()")
    assert found == []


def _database_handle(node: ast.expr) -> bool:
    """A session, connection or engine by its name (a CEL program also has ``execute``)."""
    name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")
    return any(word in name.lower() for word in ("session", "connection", "conn", "engine"))


def test_longest_storage_function_is_under_60_lines() -> None:
    lengths = {}
    for path in sorted(STORAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                lengths[f"{path.relative_to(ROOT)}:{node.name}"] = node.end_lineno - node.lineno + 1
    longest = max(lengths, key=lengths.__getitem__)
    assert lengths[longest] < 60, longest
