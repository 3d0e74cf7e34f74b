"""Plugins of installed packages: the ``metric_reader.plugins`` entry points, and how they
stand beside the bundled plugins, which they replace name for name.

Entry points are read when the catalog is built (at start and at each reload): installed
packages do not change under a running process the way ``PLUGIN_DIR`` files do.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .._core import PluginSettings, logger
from ._installed import GROUP, plugins_may_be_installed
from ._loader import LOAD_TIMEOUT, NO_SETTINGS, load_entry_point
from ._result import EntryPointOrigin, PluginProblem

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from ._callers import LoadedPlugin


BUNDLED = "bundled"


class Hidden(NamedTuple):
    """A plugin not used because the one that replaces it, ``problem``, failed to load: a
    broken replacement is reported, never silently swapped for what it replaces."""

    name: str
    shadowed: LoadedPlugin
    problem: PluginProblem


@dataclass
class BasePlugins:
    """The plugins a ``PLUGIN_DIR`` file can replace: the bundled ones, with the installed
    packages' over them."""

    plugins: dict[str, LoadedPlugin]
    problems: list[PluginProblem]
    providers: dict[str, list[str]]
    """Per name, every origin other than ``PLUGIN_DIR`` that gives it, the one used first:
    ``["entry point mr-a 1.0", "entry point mr-b 2.0", "bundled"]``."""
    hidden: list[Hidden]
    installed: tuple[EntryPointOrigin, ...]
    """Every entry point of the group found, used or not."""


def installed_entry_points() -> list[tuple[EntryPoint, EntryPointOrigin]]:
    """Every entry point of :data:`GROUP`, by name, then by distribution name."""
    # Forget the directory listings importlib keeps: a package installed since the last
    # look (before a reload) must be seen, and its modules found.
    importlib.invalidate_caches()
    if not plugins_may_be_installed():
        return []
    from importlib.metadata import entry_points  # with email, zipfile...: tens of ms

    found = []
    for entry_point in entry_points(group=GROUP):
        name, version = _distribution(entry_point)
        origin = EntryPointOrigin(entry_point.name, entry_point.value, name, version)
        found.append((entry_point, origin))
    return sorted(found, key=lambda pair: (pair[1].name, _normalized(pair[1].distribution)))


def _distribution(entry_point: EntryPoint) -> tuple[str, str]:
    """The name and version of the distribution declaring ``entry_point``, as its metadata
    spells them; placeholders when its metadata lacks them."""
    dist = entry_point.dist
    name = version = None
    if dist is not None:
        # metadata without Name or Version, or unreadable: placeholders
        with contextlib.suppress(KeyError, OSError, ValueError):
            name, version = dist.metadata["Name"], dist.version
    return name or "(unnamed distribution)", version or "(no version)"


def _normalized(distribution: str) -> str:
    """A distribution name as the packaging standards compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def base_plugins(
    bundled: dict[str, LoadedPlugin],
    bundled_problems: list[PluginProblem],
    *,
    settings: PluginSettings = NO_SETTINGS,
    load_timeout: float = LOAD_TIMEOUT,
    installed: list[tuple[EntryPoint, EntryPointOrigin]] | None = None,
) -> BasePlugins:
    """The bundled plugins, replaced by the installed packages' plugins of their name.

    When several distributions give one name, the first by distribution name is used and
    the others are not even imported (each is named in the ``plugins`` table and the start
    log as replaced). An entry point that fails to load is a problem naming it and its
    package, and hides the bundled plugin of its name, as a broken ``PLUGIN_DIR`` file does.
    ``installed``: the entry points, when they have been read already.
    """
    plugins = dict(bundled)
    providers = {name: [BUNDLED] for name in bundled}
    for problem in bundled_problems:
        providers.setdefault(problem.key, [BUNDLED])
    by_name: dict[str, list[tuple[EntryPoint, EntryPointOrigin]]] = {}
    if installed is None:
        installed = installed_entry_points()
    for entry_point, origin in installed:
        by_name.setdefault(origin.name, []).append((entry_point, origin))
    problems: list[PluginProblem] = []
    hidden: list[Hidden] = []
    for name, offers in by_name.items():
        packages = [f"entry point {origin.package}" for _, origin in offers]
        providers[name] = list(dict.fromkeys(packages)) + providers.get(name, [])
        entry_point, origin = offers[0]
        loaded = load_entry_point(entry_point, origin, settings=settings, timeout=load_timeout)
        if isinstance(loaded, PluginProblem):
            logger.bind(distribution=origin.package).debug("plugin not loaded: {}", loaded)
            problems.append(loaded)
            shadowed = plugins.pop(name, None)
            if shadowed is not None:
                hidden.append(Hidden(name, shadowed, loaded))
        else:
            plugins[name] = loaded
    kept = [problem for problem in bundled_problems if problem.key not in by_name]
    origins = tuple(origin for _, origin in installed)
    return BasePlugins(plugins, kept + problems, providers, hidden, origins)
