"""The import contract: layers point down only (bot → handlers → rules → storage), no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "storage", "locales")
ROLES = ("handlers.worker", "handlers.officer", "handlers.agency", "handlers.admin")


def layer(module: str) -> str:
    """The layer a module belongs to."""
    if module.startswith("handlers.rules"):
        return "rules"
    return module.split(".", 1)[0]


# Which layers each layer may import (besides itself).
ALLOWED = {
    "bot": {"handlers", "rules", "locales", "storage"},
    "handlers": {"rules", "locales", "storage"},
    "rules": {"locales", "storage"},
    "locales": set(),
    "storage": set(),
}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path) -> set[str]:
    """The project modules a file imports when it runs (not those imported for type checking only)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name.split(".", 1)[0] in PACKAGES}


def modules() -> dict[str, Path]:
    """Every module of the project's packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def graph() -> dict[str, set[str]]:
    """Module → the project modules it imports (names that are attributes map to their module)."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, path in known.items():
        targets = set()
        for imported in imports_of(path):
            while imported not in known and "." in imported:
                imported = imported.rsplit(".", 1)[0]
            if imported in known and imported != name:
                targets.add(imported)
        edges[name] = targets
    return edges


def test_imports_point_down_only() -> None:
    wrong = [f"{source} imports {target}" for source, targets in graph().items() for target in sorted(targets)
             if layer(target) != layer(source) and layer(target) not in ALLOWED[layer(source)]]
    assert wrong == []


def test_role_modules_do_not_import_each_other() -> None:
    edges = graph()
    crossing = [f"{role} imports {other}" for role in ROLES for other in ROLES
                if other != role and other in edges[role]]
    assert crossing == []


def test_no_import_cycles() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            # A package's __init__ importing its own submodules is not a cycle of concern.
            if target.startswith(node + "."):
                continue
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target] if target in path else [node, target])
            elif target not in state:
                walk(target, path + [target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert cycles == []


def test_the_contract_catches_a_wrong_import(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.py"
    wrong.write_text("from bot.config import Settings\nimport storage.models\n", "utf-8")
    guarded = tmp_path / "guarded.py"
    guarded.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.app import build_core\n",
                       "utf-8")
    assert imports_of(wrong) == {"bot.config", "bot.config.Settings", "storage.models"}
    assert imports_of(guarded) == set()
