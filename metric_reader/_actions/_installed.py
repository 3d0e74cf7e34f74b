"""Whether an installed package may declare a plugin: answered by a look at ``sys.path``,
without importing ``importlib.metadata`` nor the plugin loader, so that a command that
needs no plugin (``check`` of rules that name none) can tell it has nothing to load."""

from __future__ import annotations

import os
import sys

GROUP = "metric_reader.plugins"
"""The entry point group a package declares its plugins in."""


def plugins_may_be_installed() -> bool:
    """False when no distribution on ``sys.path`` can declare an entry point of
    :data:`GROUP`: none of the ``*.dist-info`` / ``*.egg-info`` directories of its
    directories has an ``entry_points.txt`` that names it. Looked at directly, since
    importing ``importlib.metadata`` costs more than most ``check`` runs take otherwise;
    wherever that look could miss one (a zip or egg on the path, a finder of distributions
    other than the standard one), True, and ``importlib.metadata`` decides."""
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            return True
    marker = GROUP.encode()
    for entry in sys.path:
        directory = entry or "."
        try:
            names = os.listdir(directory)
        except NotADirectoryError:
            return True  # a zip file
        except OSError:
            continue  # missing or unreadable: importlib.metadata finds nothing there either
        if directory.lower().endswith(".egg"):
            return True
        for name in names:
            if not name.lower().endswith((".dist-info", ".egg-info")):
                continue
            try:
                with open(os.path.join(directory, name, "entry_points.txt"), "rb") as file:
                    if marker in file.read():
                        return True
            except OSError:
                continue  # no entry points (or an egg-info file): nothing declared
    return False
