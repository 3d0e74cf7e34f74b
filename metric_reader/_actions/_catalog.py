"""The plugin catalog: which plugins are loaded, by name, which are not and why.

The bundled plugins are loaded first, then the installed packages' (entry points of the
``metric_reader.plugins`` group), then ``PLUGIN_DIR``'s: of one name, a ``PLUGIN_DIR``
file wins over an entry point, which wins over a bundled plugin.
:meth:`PluginCatalog.watch` keeps the catalog in step with ``PLUGIN_DIR`` while the
service runs.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .._core import PluginSettings, format_duration, logger
from ._entry_points import BUNDLED, Hidden, base_plugins, installed_entry_points
from ._loader import LOAD_TIMEOUT, NO_SETTINGS, load_directory
from ._result import EntryPointOrigin, PluginProblem

if TYPE_CHECKING:  # the plugin objects and the watch: imported where used, not by check
    from ._callers import LoadedPlugin
    from ._watch import DirWatcher, Scan

WATCH_INTERVAL = 2.0
"""How often (seconds) :meth:`PluginCatalog.watch` looks at ``PLUGIN_DIR`` by default."""


@dataclass
class PluginCatalog:
    """Every plugin that loaded, by name, and every file or entry point that did not.

    A catalog that :func:`discover_plugins` built with a ``PLUGIN_DIR`` keeps itself current
    while :meth:`watch` runs: plugin files added, changed or removed are picked up without a
    restart. ``plugins`` stays the very same dict throughout. Every plugin put into it is
    fully imported, checked and validated first, and the entries of one round of changes are
    swapped in on the event loop with no ``await`` in between, so a caller on the loop sees
    either the old set or the new one, never a half-loaded plugin.
    """

    plugins: dict[str, LoadedPlugin]
    problems: list[PluginProblem]
    plugin_dir: Path | None = None
    insecure: bool = False
    """``PLUGIN_DIR_INSECURE``: load PLUGIN_DIR files others can change (with a warning)."""
    overrides: list[str] = field(default_factory=list)
    """Names whose plugin replaces another at start: a ``PLUGIN_DIR`` file replacing an
    entry point's or a bundled plugin, an entry point's replacing a bundled plugin or
    another package's (see :meth:`replaced`)."""
    hidden: list[Hidden] = field(default_factory=list)
    """Plugins not used because their replacement failed to load."""
    providers: dict[str, list[str]] = field(default_factory=dict)
    """Per name, each origin other than ``PLUGIN_DIR`` that gives it, by precedence."""
    installed: tuple[EntryPointOrigin, ...] = ()
    """The entry points of installed packages found when the catalog was built."""
    made: list[str] = field(default_factory=list)
    """The plugins made of another (``[plugins.NAME]`` with ``plugin``) when the catalog
    was built: watching ``PLUGIN_DIR`` keeps them as they are."""
    made_problems: list[PluginProblem] = field(default_factory=list)
    """Why the others of them could not be made."""
    _watcher: DirWatcher | None = field(default=None, init=False, repr=False, compare=False)

    def replaced(self, name: str) -> list[str]:
        """The origins (``bundled``, ``entry point mr-slack 1.2.0``) giving plugin ``name``
        that the one in use replaces."""
        plugin = self.plugins.get(name)
        offered = self.providers.get(name, [])
        if plugin is None:
            return []
        if plugin.from_plugin_dir:
            return list(offered)
        return offered[offered.index(plugin.origin) + 1 :] if plugin.origin in offered else []

    def log_overrides(self) -> None:
        """Say which plugins replace others: once the configuration is valid, so that an
        invalid one stays a single line on stderr."""
        for name in self.overrides:
            plugin = self.plugins.get(name)
            if plugin is None:
                continue
            replaced = (
                "the bundled one" if origin == BUNDLED else origin for origin in self.replaced(name)
            )
            fields = {"plugin": name, "file": str(plugin.path)}
            if plugin.entry_point is not None:
                fields["distribution"] = plugin.entry_point.package
            logger.bind(**fields).info(
                "plugin {} from {} replaces {}", name, plugin.origin, " and ".join(replaced)
            )
        for name, shadowed, problem in self.hidden:
            by = "in PLUGIN_DIR" if problem.entry_point is None else str(problem.entry_point)
            logger.bind(plugin=name).warning(
                "{} plugin {} not used: its replacement {} failed to load",
                shadowed.origin,
                name,
                by,
            )

    @property
    def dir_error(self) -> str | None:
        """Why ``PLUGIN_DIR`` itself cannot be used (cannot be listed, or refused as a
        whole by the trust rules); None when it can."""
        if self.plugin_dir is None:
            return None
        for problem in self.problems:
            if problem.path == self.plugin_dir:
                return problem.reason
        return None

    def explain_missing(self, name: str) -> str:
        """Why no plugin ``name`` is loaded and how to fix it, to follow ``X='name' ``.

        A name ending in ``.py`` is refused with a hint, wherever a plugin is named
        (``ACTION_PLUGIN``, a rule file, ``fire``): plugins are named by their ``name``,
        which usually is the file name without ``.py``.
        """
        stem = name.removesuffix(".py")
        suffix = f"it takes the plugin's name, without .py: {stem!r}" if stem != name else ""
        if suffix and stem in self.plugins:
            return f"is invalid: {suffix}"
        problem = self.problem_for(name) or (self.problem_for(stem) if suffix else None)
        if problem is not None:
            return f"cannot be loaded: {problem}" + (f" ({suffix})" if suffix else "")
        available = ", ".join(sorted(self.plugins)) or "none"
        where = (
            f"add {stem}.py to PLUGIN_DIR ({self.plugin_dir})"
            if self.plugin_dir is not None
            else f"put {stem}.py in a directory and set PLUGIN_DIR to it"
        )
        return (
            f"is invalid: {suffix + '; ' if suffix else ''}no plugin of that name "
            f"(available: {available}; {where})"
        )

    def problem_for(self, name: str) -> PluginProblem | None:
        """The problem of a plugin whose name, or failing that file stem, is ``name``."""
        for problem in self.problems:
            if problem.name == name:
                return problem
        for problem in self.problems:
            if problem.path is not None and problem.path.stem == name:
                return problem
        return None

    async def watch(self, interval: float = WATCH_INTERVAL) -> None:
        """Keep ``plugins`` in step with the files in ``PLUGIN_DIR``; runs until cancelled.

        Every ``interval`` seconds each ``*.py`` entry is looked at with ``stat`` (following
        symlinks: its real path, inode, size, mtime and ctime, mode and owner) and the
        directory is listed again; only what changed is loaded again, each file in a
        thread of its own. A look waits a second at most for its loads: a slower one (an
        import that hangs, until ``PLUGIN_TIMEOUT``) is taken by a later look, so that it
        holds up no other file.

        This polls rather than using inotify on purpose: inotify only reports changes made
        through this kernel (not those made on another host: NFS, CIFS, many FUSE file
        systems); a watch stays on the inode it was set on, so a re-pointed symlink (the
        Kubernetes ConfigMap update: a new timestamped directory, then ``..data_tmp``
        renamed over ``..data``) needs watching several directories and re-arming; and the
        per-user watch limit is shared by every container on the node. A few ``stat`` calls
        every couple of seconds cost next to nothing and behave the same on every file
        system, in every container, with every kind of update.

        - A new file is loaded and its plugin added; a changed one is loaded again and the
          new version replaces the old for the next call (calls already running finish with
          the version they started with).
        - A file that fails to load (syntax error, failing ``validate_config``, refused by
          the trust check...) leaves its previous version in service, with a warning naming
          the file and the reason.
        - A removed file removes its plugin (a bundled plugin it replaced is used again).
        - If ``PLUGIN_DIR`` cannot be read, everything stays as it is until it can.

        Does nothing when the catalog has no ``PLUGIN_DIR`` (bundled plugins never change).
        """
        watcher = self._watcher
        if watcher is None:
            return
        if not interval > 0:
            raise ValueError(f"watch interval must be more than 0, got {interval!r}")
        import anyio  # here: a catalog that is not watched (``check``) needs no event loop

        logger.bind(dir=str(watcher.directory)).info(
            "watching PLUGIN_DIR for plugin changes every {}", format_duration(interval)
        )
        while True:
            await anyio.sleep(interval)
            try:
                await self.reload_changed()
            except Exception:  # the watcher must never take the service down
                logger.opt(exception=True).error(
                    "checking PLUGIN_DIR for plugin changes failed; trying again in {}",
                    format_duration(interval),
                )

    async def reload_changed(self) -> bool:
        """Look at ``PLUGIN_DIR`` once, swap in what changed; True when ``plugins`` changed.

        What :meth:`watch` does at each interval.
        """
        watcher = self._watcher
        if watcher is None:
            return False
        import anyio

        from ._watch import LOOK_WAIT, off_the_loop

        if watcher.lock is None:
            watcher.lock = anyio.Lock()
        async with watcher.lock:
            scan = await off_the_loop(functools.partial(watcher.scan, LOOK_WAIT), "plugin reload")
            return self._apply(scan)

    def _apply(self, scan: Scan) -> bool:
        """Take a scan's results into the catalog: no ``await`` in here (see the class doc)."""
        watcher = self._watcher
        assert watcher is not None
        if scan.error is not None:
            if scan.error != watcher.listing_error:
                logger.bind(dir=str(watcher.directory)).warning(
                    "cannot read PLUGIN_DIR ({}); the plugins loaded from it stay in service",
                    scan.error,
                )
            watcher.listing_error = scan.error
            return False
        if watcher.listing_error is not None:
            logger.bind(dir=str(watcher.directory)).info("PLUGIN_DIR can be read again")
            watcher.listing_error = None
        if not (scan.loaded or scan.gone or scan.dir_problem != watcher.dir_problem):
            watcher.absorb(scan)
            return False
        failed = watcher.absorb(scan)
        for entry in failed:
            assert isinstance(entry.result, PluginProblem)
            log = logger.bind(file=str(entry.path))
            if entry.kept is not None:
                log.bind(plugin=entry.kept.name).warning(
                    "{} failed to load: {}; the previous version of plugin {} stays in service",
                    entry.path,
                    entry.result.reason,
                    entry.kept.name,
                )
            else:
                log.warning("plugin file {} not loaded: {}", entry.path, entry.result.reason)
        composed = watcher.compose(self.plugins)
        reported = {entry.result for entry in failed} | set(self.problems)
        for problem in composed.problems:  # e.g. a name given twice: the files loaded fine
            if problem not in reported:
                logger.bind(file=str(problem.path)).warning(
                    "plugin file {} not used: {}", problem.path, problem.reason
                )
        before = dict(self.plugins)
        after = dict(composed.plugins)
        # The names of [plugins.NAME] tables with `plugin` are the configuration's until it
        # is loaded again: what was made of another stays, what could not be stays out.
        for problem in self.made_problems:
            after.pop(problem.key, None)
        for name in self.made:
            if name in before:
                after[name] = before[name]
        _log_changes(before, after, set(scan.gone))
        # The swap: plain dict operations, no await, on the event loop.
        for name in [name for name in self.plugins if name not in after]:
            del self.plugins[name]
        self.plugins.update(after)
        self.problems[:] = composed.problems + self.made_problems
        return before != self.plugins

    def _make(self, bases: Mapping[str, str], settings: PluginSettings, timeout: float) -> None:
        """Add the plugins made of another; one that cannot be made is a problem, and
        takes a plugin of its name out of use: the configuration says that name is made of
        another, and a rule naming it must not get what it did not ask for."""
        if not bases:  # nothing made of another
            return
        from ._made import make_plugins

        made, problems = make_plugins(
            bases,
            self.plugins,
            self.problems,
            bundled_dir=bundled_plugin_dir(),
            settings=settings,
            load_timeout=timeout,
        )
        for problem in problems:
            self.plugins.pop(problem.key, None)
        self.plugins.update(made)
        self.problems.extend(problems)
        self.made = list(made)
        self.made_problems = problems


def _log_changes(
    before: dict[str, LoadedPlugin], after: dict[str, LoadedPlugin], gone: set[str]
) -> None:
    for name, plugin in after.items():
        old = before.get(name)
        if old is plugin:
            continue
        log = logger.bind(plugin=name, file=str(plugin.path))
        if old is None:
            log.info("plugin {} added from {}", name, plugin.source)
        elif plugin.bundled:
            log.info("plugin {}: the bundled one is used again", name)
        elif not plugin.from_plugin_dir:
            log.info("plugin {}: the one of {} is used again", name, plugin.source)
        elif old.path == plugin.path:
            log.info("plugin {} reloaded from {}", name, plugin.path)
        else:
            log.info("plugin {} now comes from {} (was {})", name, plugin.path, old.path)
    for name, old in before.items():
        if name in after:
            continue
        why = (
            f"{old.path} is gone"
            if old.path.name in gone
            else "see the problem reported for its file"
        )
        logger.bind(plugin=name, file=str(old.path)).warning(
            "plugin {} removed ({}); calls to it fail until it is back", name, why
        )


def bundled_plugin_dir() -> Path:
    """Where the bundled plugins are: inside an installed package, or the source tree's."""
    package_dir = Path(__file__).resolve().parent.parent  # metric_reader/
    installed = package_dir / "_bundled_plugins"
    return installed if installed.is_dir() else package_dir.parent / "plugin_dir"


def discover_plugins(
    plugin_dir: Path | None,
    *,
    insecure: bool = False,
    settings: PluginSettings = NO_SETTINGS,
    bases: Mapping[str, str] | None = None,
    load_timeout: float = LOAD_TIMEOUT,
    bundled_only: Collection[str] | None = None,
) -> PluginCatalog:
    """Load the bundled plugins, the installed packages' and those in ``plugin_dir``.

    Of one name, a ``plugin_dir`` file wins over an installed package's entry point, which
    wins over a bundled plugin; every replacement is reported (:meth:`PluginCatalog.
    log_overrides`, :meth:`PluginCatalog.replaced`). A replacement that fails to load also
    hides what it replaces: a broken override must be reported, not silently replaced by
    the default.

    ``plugin_dir`` files are code run by the service, so they must not be changeable by
    anyone but root and the user running the service (see :func:`._trust.file_finding`); with
    ``insecure`` they are loaded anyway, with a warning. The bundled plugins and installed
    packages, part of the Python installation, are not checked.

    ``settings`` holds the rule file's ``[plugins.NAME]`` tables: each is given to that
    plugin's ``configure(settings)`` before ``validate_config()``. ``bases``: the plugins
    made of another, each name to the plugin it is made of (see :mod:`._made`), made once
    the others are loaded.

    Loading a plugin (its import, ``configure``, ``validate_config``) may take at most
    ``load_timeout`` seconds (``PLUGIN_TIMEOUT``); one that takes longer is a problem of
    that plugin, its loading left to finish in the background (see
    :func:`._loader.load_bounded`).

    ``bundled_only``: load only the bundled plugins of these names (a bundled plugin's name
    is its file's stem), and those of a name an installed package gives too (its
    replacement is reported as ever); None: all of them. The others are not imported: a
    command that needs a few of them (``check``) need not pay for the rest.
    """
    bases = bases or {}
    every_table = settings
    # A made plugin's table is its own: never given to a plugin that has its name.
    settings = {name: table for name, table in settings.items() if name not in bases}
    bundled_dir = bundled_plugin_dir()
    installed = installed_entry_points()
    if bundled_only is not None:
        bundled_only = {*bundled_only, *(origin.name for _, origin in installed)}
    bundled, bundled_problems = load_directory(
        bundled_dir,
        bundled=True,
        settings=settings,
        load_timeout=load_timeout,
        only=bundled_only,
    )
    base = base_plugins(
        bundled,
        bundled_problems,
        settings=settings,
        load_timeout=load_timeout,
        installed=installed,
    )
    if plugin_dir is None or _same_dir(plugin_dir, bundled_dir):
        catalog = PluginCatalog(
            base.plugins,
            base.problems,
            hidden=base.hidden,
            providers=base.providers,
            installed=base.installed,
        )
        catalog.overrides = [name for name in catalog.plugins if catalog.replaced(name)]
        catalog._make(bases, every_table, load_timeout)
        return catalog
    if insecure:
        logger.bind(dir=str(plugin_dir)).warning(
            "PLUGIN_DIR_INSECURE is on: plugins in {} are loaded without checking who can "
            "change them; use this for development only",
            plugin_dir,
        )
    from ._watch import DirWatcher

    watcher = DirWatcher(
        plugin_dir,
        insecure=insecure,
        base=base.plugins,
        base_problems=base.problems,
        settings=settings,
        load_timeout=load_timeout,
    )
    scan = watcher.scan()
    if scan.error is not None:
        watcher.listing_error = scan.error
        watcher.dir_problem = PluginProblem(plugin_dir, scan.error)
    for entry in watcher.absorb(scan):
        assert isinstance(entry.result, PluginProblem)
        logger.bind(file=str(entry.path)).debug("plugin not loaded: {}", entry.result.reason)
    composed = watcher.compose({})
    catalog = PluginCatalog(
        composed.plugins,
        composed.problems,
        plugin_dir=plugin_dir,
        insecure=insecure,
        hidden=[h for h in base.hidden if h.name not in composed.plugins] + composed.hidden,
        providers=base.providers,
        installed=base.installed,
    )
    catalog.overrides = [name for name in catalog.plugins if catalog.replaced(name)]
    catalog._watcher = watcher
    catalog._make(bases, every_table, load_timeout)
    return catalog


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False
