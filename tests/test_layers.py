"""The package's layers point one way, and no module imports itself back through others.

core ← config ← promql ← http ← {engine, sources, actions} ← {cluster, surface, replay}
← service ← cli

Another layer is imported through what its ``__init__`` exports, never through one of its
private modules.

Every import counts, wherever it stands: at the top, inside a function (lazy), or under
``if TYPE_CHECKING:``. The graph is read from the source (AST), not from what happens to
be imported at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import metric_reader

PACKAGE = Path(metric_reader.__file__).parent
RANK: dict[str, float] = {
    "_core": 0,
    "_config": 1,
    "_promql": 1.2,
    "_http": 1.5,
    "_engine": 2,
    "_sources": 2,
    "_actions": 2,
    "_cluster": 3,
    "_surface": 3,
    "_replay": 3,
    "_service": 4,
    "_cli": 5,
    "__main__": 6,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[str, int]]:
    """Every metric_reader module ``path`` imports, with the line."""
    return _imports_of(path.read_text(), _module_name(path), path.name == "__init__.py")


def _imports_of(source: str, name: str, is_package: bool) -> Iterator[tuple[str, int]]:
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("metric_reader"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("metric_reader"):
                continue
            for alias in node.names:  # "from . import _x" imports the module _x
                candidate = f"{target}.{alias.name}"
                yield (candidate if candidate in MODULES else target), node.lineno


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: sorted(set(_imports(path))) for name, path in MODULES.items()}


def _layer(module: str) -> str | None:
    """The layer a module belongs to: its subpackage, or itself at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_is_in_a_layer() -> None:
    unplaced = [
        name for name in MODULES if _layer(name) not in RANK and name not in ("metric_reader",)
    ]
    assert unplaced == [], f"modules outside the layers (add them to one): {unplaced}"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, imports in GRAPH.items():
        mine = _layer(module)
        for target, line in imports:
            theirs = _layer(target)
            if theirs is None or theirs == mine:
                continue  # the package itself (its public names), or its own layer
            if mine is None:  # the package's __init__: only what it exports, from core
                if RANK[theirs] != 0:
                    wrong.append(f"{MODULES[module]}:{line}: {module} -> {target}")
                continue
            if RANK[theirs] >= RANK[mine]:
                wrong.append(
                    f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: "
                    f"{mine} must not import {target}"
                )
    assert wrong == [], "imports against the layer order:\n" + "\n".join(wrong)


def test_the_package_itself_is_imported_only_for_its_version() -> None:
    """``from .. import __version__`` is fine; anything else from the package root would
    make every layer depend on what __init__ gathers from all of them."""
    wrong = [
        f"{module} line {line}"
        for module, imports in GRAPH.items()
        for target, line in imports
        if target == "metric_reader"
        and module != "metric_reader"
        and "__version__" not in MODULES[module].read_text().splitlines()[line - 1]
    ]
    assert wrong == [], wrong


def test_there_is_no_import_cycle() -> None:
    edges = {
        module: {target for target, _ in imports if target in GRAPH and target != module}
        for module, imports in GRAPH.items()
    }
    # Tarjan's strongly connected components; any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == [], f"import cycles: {cycles}"


def test_the_checker_sees_lazy_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .._surface._web import X\n"
        "def f():\n    from .._service import Service\n"
        "import metric_reader._cli\n"
    )
    found = {target for target, _ in _imports_of(source, "metric_reader._core._x", False)}
    assert found == {
        "metric_reader._surface._web",
        "metric_reader._service",
        "metric_reader._cli",
    }


PACKAGES = {name for name, path in MODULES.items() if path.name == "__init__.py"}


def _is_private_module(name: str) -> bool:
    """A module inside a layer's package (``metric_reader._core._durations``), not a layer
    that is one module (``metric_reader._cli``) nor a package (``metric_reader._core``)."""
    return name.count(".") > 1 and name not in PACKAGES


def test_other_layers_are_imported_through_their_exports() -> None:
    """A layer's modules are private to it: another layer imports what the layer's
    ``__init__`` exports (or a subpackage's, such as ``_core._gotemplate``), never one of its
    modules, so a module can be split or moved inside its layer without touching the rest."""
    wrong = [
        f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}: {module} -> {target}"
        for module, imports in GRAPH.items()
        for target, line in imports
        if _layer(target) not in (None, _layer(module)) and _is_private_module(target)
    ]
    assert wrong == [], "private modules of another layer imported:\n" + "\n".join(wrong)


def test_the_export_check_sees_a_private_import() -> None:
    source = "from .._core._durations import format_duration\nfrom .._core import Sample\n"
    found = [
        target
        for target, _ in _imports_of(source, "metric_reader._engine._x", False)
        if _layer(target) != "_engine" and _is_private_module(target)
    ]
    assert found == ["metric_reader._core._durations"]


def test_the_package_logs_through_the_core_logger_alone() -> None:
    """loguru is imported at the first record (``_core._logging.logger``): a module that
    imported it itself would log before the configuration is applied, and cost its import
    to commands that log nothing (``check --no-read``)."""
    direct = []
    for name, path in MODULES.items():
        if name == "metric_reader._core._logging":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "loguru":
                if any(alias.name != "Logger" for alias in node.names):  # the type is free
                    direct.append(f"{name}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name == "loguru" for a in node.names):
                direct.append(f"{name}:{node.lineno}")
    assert direct == []
