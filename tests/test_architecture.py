"""The structure the code promises (docs/architecture.md), checked on the source itself.

Read statically with ``ast`` so that every import counts: module level, inside functions (lazy imports hide
cycles from Python, not from the reader) and under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("indexer", "engine", "lsp_server")
MAX_MODULE_LINES = 420  # "none over ~400 lines": a little slack for a docstring, not for a second job
LAYER = {"lsp_server": 2, "engine": 1, "indexer": 0}  # imports only go down: editor → lsp_server → engine → indexer


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """The modules of ours that ``module`` imports, wherever the import statement stands."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            names = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target
                     for alias in node.names]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


GRAPH = {module: _imports(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in GRAPH[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_the_checker_sees_imports_of_every_kind() -> None:
    """Guards the guard: a lazy import inside a function and a relative import are both edges."""
    assert "engine.config" in GRAPH["lsp_server.cli"]
    assert any(target.startswith("engine.") for target in GRAPH["lsp_server.cli"] - {"engine.config"})
    assert "indexer.api" in GRAPH["indexer"]  # `from .api import Index` in the package's __init__


def test_no_import_cycles() -> None:
    assert _cycles() == []


def test_imports_only_go_down_the_layers() -> None:
    upward = [(module, target) for module, targets in GRAPH.items() for target in targets
              if LAYER[target.split(".")[0]] > LAYER[module.split(".")[0]]]
    assert upward == []


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Underscore names a module defines: functions, classes, module globals, attributes set on any object."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


# Receivers that are third-party objects whose private fields we use on purpose: llama-cpp-python's ``Llama``
# exposes the loaded model's vocabulary (end-of-generation ids, grammar checks) only as ``Llama._model``.
THIRD_PARTY_RECEIVERS = {"llm", "self.llm"}

TREES = {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in MODULES.items()}
DEFINED = {module: _defined_private_names(tree) for module, tree in TREES.items()}
OURS = set().union(*DEFINED.values())


def test_no_module_reaches_into_another_modules_private_names() -> None:
    """``x._name`` and ``from m import _name`` only for names the same module defines.

    A private name that no module of ours defines belongs to a third-party object (llama-cpp-python's
    ``Llama._ctx`` and the like) and is that library's business, not a boundary of ours.
    """
    reaches: list[str] = []
    for module, tree in TREES.items():
        own = DEFINED[module]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, node)
                if target.split(".")[0] in PACKAGES:
                    reaches += [f"{module}: from {target} import {a.name}" for a in node.names
                                if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if node.attr in OURS and node.attr not in own and ast.unparse(node.value) not in THIRD_PARTY_RECEIVERS:
                    reaches.append(f"{module}:{node.lineno}: .{node.attr}")
    assert reaches == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_is_small_enough_to_have_one_job(module: str) -> None:
    lines = MODULES[module].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{MODULES[module].relative_to(ROOT)}: {lines} lines"


def test_tests_use_only_public_pieces() -> None:
    """A test that calls a private method pins an implementation detail; it tests public pieces instead."""
    reaches: list[str] = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        own = _defined_private_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in OURS and node.attr not in own:
                reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                reaches += [f"{path.relative_to(ROOT)}: from {node.module} import {a.name}" for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
    assert reaches == []
