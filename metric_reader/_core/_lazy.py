"""A package's exports imported when first used (PEP 562), not when the package is.

``python -m metric_reader test`` and ``check`` start in tens of milliseconds only if
importing a layer does not import every module of it (and loguru, httpx, prometheus_client
behind them). Each layer's ``__init__`` states its exports twice: as imports under
``TYPE_CHECKING`` (what mypy and the layer checks read) and as the table given here (what
runs); ``tests/test_lazy_exports.py`` holds the two equal.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``exports`` maps each exported
    name to the module that defines it, relative to the package (``"._chart"``), with
    ``":name"`` when it is exported under another name (``"._values:url"``). A name is
    imported once, then kept in the package as if imported at its top."""

    def __getattr__(name: str) -> object:
        where = exports.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = where.partition(":")
        value = getattr(importlib.import_module(module, package), attribute or name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
