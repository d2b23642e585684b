"""The sandbox's shape: a DAG of its own modules, nothing else of the project, small modules and functions."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = ROOT / "sandbox"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _trees() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(SANDBOX.glob("*.py"))}


def _imported(tree: ast.Module) -> set[str]:
    """Every module imported anywhere in the file: in functions and under `TYPE_CHECKING` too."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # `from sandbox import odata` imports the module `sandbox.odata`.
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


class TestLayout:
    def test_imports_are_a_dag_of_sandbox_modules_only(self) -> None:
        trees = _trees()
        packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"sandbox"}
        foreign = sorted(
            f"{name}: {dep}" for name, tree in trees.items() for dep in _imported(tree) if dep.split(".")[0] in packages
        )
        assert not foreign, "the sandbox must not import the rest of the project"
        graph = {
            name: {dep.split(".")[1] for dep in _imported(tree) if dep.startswith("sandbox.")} & trees.keys() - {name}
            for name, tree in trees.items()
        }
        graphlib.TopologicalSorter(graph).prepare()  # raises CycleError, naming the cycle

    def test_no_module_or_function_is_too_long(self) -> None:
        too_long: list[str] = []
        for path in sorted(SANDBOX.glob("*.py")):
            text = path.read_text()
            if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
                too_long.append(f"{path.name}: {lines} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                    if (lines := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                        too_long.append(f"{path.stem}.{node.name}: {lines} lines")
        assert not too_long
