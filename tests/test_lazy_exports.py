"""Each layer's exports are imported when first used (``_core._lazy``): its ``__init__``
states them as imports under ``TYPE_CHECKING`` (for mypy and tests/test_layers.py) and as
the table that runs. The two say the same, and every exported name can be had."""

from __future__ import annotations

import ast
import importlib

import pytest
from test_layers import MODULES, PACKAGES


def _lazy_packages() -> list[str]:
    return sorted(name for name in PACKAGES if "lazy_exports(" in MODULES[name].read_text())


def _stated(name: str) -> tuple[dict[str, str], dict[str, str]]:
    """What the ``TYPE_CHECKING`` imports and the ``lazy_exports`` table of ``name`` say."""
    tree = ast.parse(MODULES[name].read_text())
    imports: dict[str, str] = {}
    table: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom)
                module = "." * statement.level + (statement.module or "")
                for alias in statement.names:
                    exported = alias.asname or alias.name
                    imports[exported] = (
                        module if exported == alias.name else f"{module}:{alias.name}"
                    )
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "lazy_exports":
            table = ast.literal_eval(node.args[1])
    return imports, table


def test_the_layers_export_lazily() -> None:
    assert {"metric_reader", "metric_reader._core", "metric_reader._config"} <= set(
        _lazy_packages()
    )


@pytest.mark.parametrize("name", _lazy_packages())
def test_the_table_says_what_the_imports_say(name: str) -> None:
    imports, table = _stated(name)
    assert table == imports
    package = importlib.import_module(name)
    assert set(package.__all__) - set(table) <= {"__version__", "lazy_exports"}  # bound at import
    for exported in package.__all__:
        assert getattr(package, exported) is not None
    assert set(package.__all__) <= set(dir(package))
