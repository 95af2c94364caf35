"""The layout's rules that import-linter cannot state (docs/architecture.rst).

import-linter (``lint-imports``, contracts in pyproject.toml) checks the direction of
imports between packages. These tests check the rest, from the source alone: the core
reads no Flask request global, no module is over 400 lines, at most 16 modules sit at the
top of the package, and no flask-lucia module imports itself back through others (every
import counts: those under ``TYPE_CHECKING`` and those inside functions too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import flask_lucia

PACKAGE = Path(flask_lucia.__file__).parent
MAX_LINES = 400
MAX_TOP_MODULES = 16
REQUEST_GLOBALS = {"request", "g", "session"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The flask-lucia modules ``name`` imports, wherever in the module the import is."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in MODULES and module != name}


def test_the_core_reads_no_flask_request_global() -> None:
    offenders = []
    for name, path in MODULES.items():
        if not name.startswith("flask_lucia.core"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in ("flask", "flask.globals"):
                taken = {alias.name for alias in node.names} & REQUEST_GLOBALS
                offenders += [f"{name}: from {node.module} import {n}" for n in sorted(taken)]
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "flask"
                and node.attr in REQUEST_GLOBALS
            ):
                offenders.append(f"{name}: flask.{node.attr}")
    assert not offenders, "the core must take what it needs from the request as arguments"


def test_no_module_is_over_400_lines() -> None:
    long = {
        name: lines
        for name, path in MODULES.items()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"split these by job: {long}"


def test_at_most_16_modules_at_the_top_of_the_package() -> None:
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, top


def test_no_import_cycle_among_flask_lucia_modules() -> None:
    graph = {name: imports_of(name) for name in MODULES}
    # Tarjan's strongly connected components: any with two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph[module]):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    assert not cycles, cycles


def test_underscore_names_stay_in_their_package() -> None:
    """A feature takes from ``web`` and the core only what they offer by name, so their
    inner helpers can change without breaking a feature (inside a package they are shared)."""

    def package(module: str) -> str:
        return ".".join(module.split(".")[:2])

    offenders = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level:
                continue
            source = node.module or ""
            if not source.startswith("flask_lucia.") or package(source) == package(name):
                continue
            offenders += [
                f"{name}: from {source} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    assert not offenders, offenders


def test_the_graph_sees_the_imports_it_checks() -> None:
    """The checks are only as good as the graph: it holds the hook's way to the core."""
    assert {"flask_lucia.core.auth", "flask_lucia.web.base"} <= imports_of("flask_lucia.web.hook")
    assert "flask_lucia.web.pipeline" in imports_of("flask_lucia.mfa.plugin")
    assert "flask_lucia.web.commands" in imports_of("flask_lucia.mfa.commands")
