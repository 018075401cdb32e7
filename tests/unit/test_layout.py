"""The package keeps the shape docs/architecture.md describes: small modules, no cycles.

A module past 450 lines or a class past 300 is one doing several jobs; an import
cycle is two modules that cannot be read, tested or replaced apart.  Only imports
run when a module loads count (not those under ``TYPE_CHECKING`` or in functions).
"""

from __future__ import annotations

import ast
from graphlib import TopologicalSorter
from pathlib import Path

import pytest

import aiodax

PACKAGE = Path(aiodax.__file__).parent
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _load_time_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    imports: list[ast.Import | ast.ImportFrom] = []
    for statement in body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            imports.append(statement)
        elif isinstance(statement, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(statement.test):
                imports += _load_time_imports(statement.body)
            imports += _load_time_imports(statement.orelse)
        elif isinstance(statement, ast.Try):
            for block in [statement.body, statement.orelse, statement.finalbody]:
                imports += _load_time_imports(block)
            for handler in statement.handlers:
                imports += _load_time_imports(handler.body)
    return imports


def _dependencies(name: str, path: Path) -> set[str]:
    """The modules of the package that loading ``name`` loads first."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for statement in _load_time_imports(ast.parse(path.read_text()).body):
        if isinstance(statement, ast.Import):
            found |= {alias.name for alias in statement.names if alias.name in MODULES}
            continue
        if statement.level:
            base = package.split(".")[: len(package.split(".")) - statement.level + 1]
            target = ".".join([*base, *([statement.module] if statement.module else [])])
        else:
            target = statement.module or ""
        submodules = {f"{target}.{alias.name}" for alias in statement.names} & MODULES.keys()
        found |= submodules
        if len(submodules) < len(statement.names) and target in MODULES:
            found.add(target)  # a name defined in the module itself, not a submodule
    return found - {name}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_longer_than_450_lines(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines"


def test_no_class_is_longer_than_300_lines() -> None:
    too_long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert too_long == []


def test_no_module_imports_itself_back_through_others() -> None:
    graph = {name: _dependencies(name, path) for name, path in MODULES.items()}
    assert graph["aiodax"], "the import reader found none of aiodax's own imports"

    TopologicalSorter(graph).prepare()  # CycleError names the modules of a cycle
