"""Plugins made of another: a ``[plugins.NAME]`` table with ``plugin = "BASE"`` gives a
plugin named ``NAME``, ``BASE``'s code loaded again with ``NAME``'s settings.

They are made when the catalog is built (at start and at each reload), of the plugins it
holds then, and stay as they are until the next: a change to a ``PLUGIN_DIR`` file while
the service runs reaches the plugins made of it at the next reload, and a file giving one
of their names is not used until then.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .._core import PluginSettings
from ._callers import LoadedPlugin
from ._entry_points import installed_entry_points
from ._loader import LOAD_TIMEOUT, NO_SETTINGS, Copy, load_copy
from ._result import EntryPointOrigin, PluginProblem

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint


@dataclass(frozen=True)
class _Base:
    """Where a plugin's code is: a file's content, or an installed package's entry point."""

    path: Path
    code: bytes | None
    entry_point: EntryPointOrigin | None

    @classmethod
    def of(
        cls, name: str, plugins: Mapping[str, LoadedPlugin], problems: Sequence[PluginProblem]
    ) -> _Base | None:
        """Plugin ``name``'s code: one in use, or one that loaded but refused its own
        settings (``exec_action`` without a command of its own is the usual base)."""
        plugin = plugins.get(name)
        if plugin is not None:
            return cls(plugin.path, plugin.code, plugin.entry_point)
        for problem in problems:
            if problem.key == name and problem.unconfigured:
                if problem.code is not None and problem.path is not None:
                    return cls(problem.path, problem.code, None)
                if problem.entry_point is not None and problem.path is None:
                    return cls(Path(problem.entry_point.value), None, problem.entry_point)
        return None


def make_plugins(
    bases: Mapping[str, str],
    plugins: Mapping[str, LoadedPlugin],
    problems: Sequence[PluginProblem],
    *,
    bundled_dir: Path,
    settings: PluginSettings = NO_SETTINGS,
    load_timeout: float = LOAD_TIMEOUT,
) -> tuple[dict[str, LoadedPlugin], list[PluginProblem]]:
    """Each plugin of ``bases`` (its name to the one it is made of) made of the code of the
    plugin of that name (in ``plugins``, or among ``problems`` as unconfigured), or the
    problem that keeps it from being made."""
    made: dict[str, LoadedPlugin] = {}
    refused: list[PluginProblem] = []
    for name, base_name in bases.items():
        said = f"plugin = {base_name!r}"  # problems without a file: shown after the table
        taken = plugins.get(name)
        base = _Base.of(base_name, plugins, problems)
        if taken is not None:
            reason = (
                f"{said}: {name} is already the name of a plugin ({taken.source}); give "
                "the one made of it another name"
            )
            refused.append(PluginProblem(None, reason, name))
            continue
        if base is None:
            available = ", ".join(sorted(plugins)) or "none"
            reason = f"{said}: no plugin of that name is loaded (available: {available})"
            refused.append(PluginProblem(None, reason, name))
            continue
        entry_point: tuple[EntryPoint, EntryPointOrigin] | None = None
        if base.entry_point is not None:
            entry_point = next(
                ((ep, o) for ep, o in installed_entry_points() if o == base.entry_point), None
            )
            if entry_point is None:  # uninstalled since: nothing to load again
                reason = f"{said}: {base.entry_point} is no longer installed"
                refused.append(PluginProblem(None, reason, name))
                continue
        loaded = load_copy(
            Copy(name, base_name),
            path=base.path,
            code=base.code,
            bundled=base.path.parent == bundled_dir,
            entry_point=entry_point,
            settings=settings,
            timeout=load_timeout,
        )
        if isinstance(loaded, PluginProblem):
            refused.append(replace(loaded, made_of=base_name))
        else:
            made[name] = loaded
    return made, refused
