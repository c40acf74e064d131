"""The top-level packages import downward only: core <- rules, collectors <- engine.

Every import statement of every module counts, including those inside functions and
``TYPE_CHECKING`` blocks: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Each package and the packages of ours it may import (itself included).
ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "rules": frozenset({"rules", "core"}),
    "collectors": frozenset({"collectors", "core"}),
    "engine": frozenset({"engine", "rules", "collectors", "core"}),
}


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level package) of each absolute import of one of our packages in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue  # relative imports stay inside their package
        for name in names:
            top = name.partition(".")[0]
            if top in ALLOWED:
                yield node.lineno, top


def package_imports(root: Path) -> Iterator[tuple[str, str, str]]:
    """(importing package, imported package, "file:line") for every module under ``root``."""
    for package in ALLOWED:
        for path in sorted((root / package).rglob("*.py")):
            for line, imported in imports_of(path):
                yield package, imported, f"{path.relative_to(root)}:{line}"


def layer_violations(root: Path) -> list[str]:
    return [
        f"{where}: {package} imports {imported} (allowed: {', '.join(sorted(ALLOWED[package]))})"
        for package, imported, where in package_imports(root)
        if imported not in ALLOWED[package]
    ]


def import_cycles(root: Path) -> list[str]:
    """Each cycle between packages, as ``a -> b (file:line) -> a (file:line)``."""
    edges: dict[str, dict[str, str]] = {package: {} for package in ALLOWED}
    for package, imported, where in package_imports(root):
        if imported != package:
            edges[package].setdefault(imported, where)
    cycles = []

    def visit(package: str, path: list[str]) -> None:
        for imported in sorted(edges[package]):
            if imported == path[0]:
                steps = [*path, imported]
                cycles.append(" -> ".join(
                    [steps[0], *(f"{b} ({edges[a][b]})" for a, b in itertools.pairwise(steps))]))
            elif imported not in path and imported > path[0]:  # each cycle once, from its least member
                visit(imported, [*path, imported])

    for package in sorted(edges):
        visit(package, [package])
    return cycles


def test_each_package_imports_only_the_layers_below_it() -> None:
    assert layer_violations(ROOT) == []


def test_no_import_cycle_between_top_level_packages() -> None:
    assert import_cycles(ROOT) == []


def test_a_wrong_import_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    for package in ALLOWED:
        (tmp_path / package).mkdir()
    (tmp_path / "core" / "service.py").write_text("import os\n\n\ndef f():\n    from engine import x\n")
    (tmp_path / "engine" / "catalog.py").write_text("from core.service import Service\n")

    assert layer_violations(tmp_path) == [
        "core/service.py:5: core imports engine (allowed: core)"]
    assert import_cycles(tmp_path) == [
        "core -> engine (core/service.py:5) -> core (engine/catalog.py:1)"]
