"""Loading plugins: files, each imported under a private module name, and installed
packages' entry points; each checked against the contract, configured and validated, all
within a time limit.

Loading never raises: every plugin that cannot be used becomes a :class:`PluginProblem`
naming the file (or the entry point and its package) and the reason.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import signal
import sys
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any, cast

from .._config import describe_dir_error
from .._core import ActionPlugin, PluginSettings, ensure_logging, format_duration, logger
from ._result import EntryPointOrigin, PluginProblem, describe

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from typing_extensions import Buffer

    from ._callers import LoadedPlugin, PluginMethod

NO_SETTINGS: PluginSettings = {}

LOAD_TIMEOUT = 30.0
"""How long (seconds) loading one plugin file may take by default: ``PLUGIN_TIMEOUT``'s."""

_MODULE_PREFIX = "metric_reader._loaded_plugins"
_PROBE_ARGS = ("metric", 0.0, ">0", timedelta(0))


def load_directory(
    directory: Path,
    *,
    bundled: bool,
    settings: PluginSettings = NO_SETTINGS,
    load_timeout: float = 0.0,
    only: Collection[str] | None = None,
) -> tuple[dict[str, LoadedPlugin], list[PluginProblem]]:
    """Load every plugin file directly in ``directory``, or those whose stem is in
    ``only``; refuse names given twice."""
    try:
        files = sorted(
            p
            for p in directory.iterdir()
            if p.suffix == ".py"
            and not p.name.startswith(("_", "."))
            and (only is None or p.stem in only)
            and p.is_file()
        )
    except OSError as exc:
        return {}, [PluginProblem(directory, describe_dir_error(directory, exc))]
    by_name: dict[str, list[LoadedPlugin]] = {}
    problems: list[PluginProblem] = []
    for path in files:
        loaded = load_plugin_file(
            path, bundled=bundled, settings=settings, load_timeout=load_timeout or LOAD_TIMEOUT
        )
        if isinstance(loaded, PluginProblem):
            logger.bind(file=str(path)).debug("plugin not loaded: {}", loaded.reason)
            problems.append(loaded)
        else:
            by_name.setdefault(loaded.name, []).append(loaded)
    plugins, duplicates = one_per_name(by_name)
    return plugins, problems + duplicates


def one_per_name(
    by_name: Mapping[str, list[LoadedPlugin]],
    in_service: Callable[[str], Path | None] = lambda name: None,
) -> tuple[dict[str, LoadedPlugin], list[PluginProblem]]:
    """The plugins whose name only one file gives, and a problem for each file refused.

    A name given by two files refuses both, unless one of them is ``in_service(name)``:
    that one stays, and the others are refused alone.
    """
    plugins: dict[str, LoadedPlugin] = {}
    problems: list[PluginProblem] = []
    for name, same in by_name.items():
        if len(same) == 1:
            plugins[name] = same[0]
            continue
        path = in_service(name)
        keep = next((p for p in same if path is not None and p.path == path), None)
        for plugin in same:
            if plugin is keep:
                continue
            if keep is not None:
                reason = (
                    f"plugin name {name!r} is already given by {keep.path}, which stays "
                    "in service; this file is refused"
                )
            else:
                others = ", ".join(str(o.path) for o in same if o is not plugin)
                reason = f"plugin name {name!r} is also given by {others}; both are refused"
            problems.append(PluginProblem(plugin.path, reason, name))
        if keep is not None:
            plugins[name] = keep
    return plugins, problems


class _UnusableFile(Exception):
    """Raised while loading a file that cannot be used, with why; it becomes the file's
    :class:`PluginProblem`."""

    def __init__(self, reason: str, name: str | None = None, unconfigured: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name
        self.unconfigured = unconfigured


def load_plugin_file(
    path: Path,
    *,
    bundled: bool = False,
    settings: PluginSettings = NO_SETTINGS,
    load_timeout: float = LOAD_TIMEOUT,
) -> LoadedPlugin | PluginProblem:
    """Import one plugin file under a private module name, check it, configure it with its
    ``settings[name]`` table (if any), validate it; all within ``load_timeout`` seconds."""
    try:
        source = path.read_bytes()
    except OSError as exc:
        return PluginProblem(path, f"cannot be read: {describe(exc)}")
    return load_bounded(path, source, bundled=bundled, settings=settings, timeout=load_timeout)


def load_bounded(
    path: Path,
    source: bytes,
    *,
    bundled: bool,
    settings: PluginSettings,
    timeout: float,
    copy: Copy | None = None,
) -> LoadedPlugin | PluginProblem:
    """:func:`_load_source` in a daemon thread of its own, given up after ``timeout``.

    A plugin file whose import hangs (a ``sleep``, a busy loop, a blocking read at module
    level) must hold up neither the other files nor the service: its thread is abandoned
    like a hung call, and runs on until it ends or the process exits; what it ends with is
    ignored. The file is not tried again until it changes.

    ``copy``: load it as a plugin made of the file's (see :func:`load_copy`).
    """

    def late(stage: str) -> PluginProblem:
        return PluginProblem(
            path,
            f"{stage} did not finish within {format_duration(timeout)}; skipped "
            "(PLUGIN_TIMEOUT bounds loading a plugin file too; its loading is left running "
            "in the background and the file is tried again when it changes)",
        )

    ensure_logging()  # a plugin may log with loguru itself: as configured, from its import on
    stage = ["import"]
    load = functools.partial(
        _load_source, path, source, bundled=bundled, settings=settings, stage=stage, copy=copy
    )
    return _bounded(load, stage, timeout, f"plugin load {path.name}", late)


@dataclass(frozen=True)
class Copy:
    """A plugin made of another: its own name, and the name of the one it is made of."""

    name: str
    base: str


def load_copy(
    copy: Copy,
    *,
    path: Path,
    code: bytes | None,
    bundled: bool,
    entry_point: tuple[EntryPoint, EntryPointOrigin] | None,
    settings: PluginSettings = NO_SETTINGS,
    timeout: float = LOAD_TIMEOUT,
) -> LoadedPlugin | PluginProblem:
    """The plugin ``copy.name`` made of ``copy.base``: its code loaded again, a new object
    configured with ``settings[copy.name]`` and validated, as any plugin is loaded. A file's
    plugin is made of ``code``, the content the base was loaded from, in a module of its
    own; an installed package's, of its ``entry_point`` again, which must name a class."""
    if code is not None:
        return load_bounded(
            path, code, bundled=bundled, settings=settings, timeout=timeout, copy=copy
        )
    assert entry_point is not None
    return load_entry_point(*entry_point, settings=settings, timeout=timeout, copy=copy)


def load_entry_point(
    entry_point: EntryPoint,
    origin: EntryPointOrigin,
    *,
    settings: PluginSettings = NO_SETTINGS,
    timeout: float = LOAD_TIMEOUT,
    copy: Copy | None = None,
) -> LoadedPlugin | PluginProblem:
    """Load the plugin an installed package's entry point names, as a file's is loaded:
    the same checks, ``configure`` and ``validate_config``, the same time limit.

    Its name is the entry point's name. What ``entry_point.load()`` would return is the
    plugin: an object, or a class created with no arguments (a fresh object at each load,
    so a reload's ``configure`` never touches the one in service). The module is imported
    the normal way, once per process: a new version of the package needs a restart.
    """

    def late(stage: str) -> PluginProblem:
        reason = (
            f"{stage} did not finish within {format_duration(timeout)}; skipped (PLUGIN_TIMEOUT "
            "bounds loading a plugin too; its loading is left running in the background)"
        )
        return PluginProblem(None, reason, copy.name if copy else origin.name, entry_point=origin)

    ensure_logging()  # as for a file (load_bounded)
    stage = ["import"]
    load = functools.partial(
        _load_entry_point, entry_point, origin, settings=settings, stage=stage, copy=copy
    )
    return _bounded(load, stage, timeout, f"plugin load {origin.name}", late)


def _bounded(
    load: Callable[[], LoadedPlugin | PluginProblem],
    stage: list[str],
    timeout: float,
    thread_name: str,
    late: Callable[[str], PluginProblem],
) -> LoadedPlugin | PluginProblem:
    from ._jobs import run_bounded  # here, as the callers: listing plugins loads none

    outcome = run_bounded(load, timeout, thread_name)
    if outcome is None:
        return late(stage[-1])
    if outcome.error is not None:
        raise outcome.error
    return cast("LoadedPlugin | PluginProblem", outcome.value)


def _load_source(
    path: Path,
    source: bytes,
    *,
    bundled: bool,
    settings: PluginSettings = NO_SETTINGS,
    stage: list[str] | None = None,
    copy: Copy | None = None,
) -> LoadedPlugin | PluginProblem:
    """Load ``source``, the content of ``path`` as read: no second read can differ."""
    name: str | None = copy.name if copy is not None else None
    try:
        module = _import_file(path, source, copy.name if copy is not None else None)
        obj = _plugin_object(module)
        name = _plugin_name(obj) if copy is None else copy.name
        execute, resolve = _checked(obj, name, "Plugin", settings, stage)
    except _UnusableFile as refused:
        code = source if refused.unconfigured else None  # a plugin may be made of it
        return PluginProblem(
            path, refused.reason, refused.name or name, refused.unconfigured, code=code
        )
    except Exception as exc:  # a plugin object misbehaving in a way not foreseen above
        return PluginProblem(path, f"cannot be loaded: {describe(exc)}", name)
    logger.bind(plugin=name, file=str(path)).debug("plugin loaded")
    from ._callers import LoadedPlugin

    return LoadedPlugin(
        name=name,
        path=path,
        bundled=bundled,
        obj=cast(ActionPlugin, obj),  # checked above: a name and a callable execute
        execute=execute,
        resolve=resolve,
        code=source,
        made_of=copy.base if copy is not None else None,
    )


def _load_entry_point(
    entry_point: EntryPoint,
    origin: EntryPointOrigin,
    *,
    settings: PluginSettings = NO_SETTINGS,
    stage: list[str] | None = None,
    copy: Copy | None = None,
) -> LoadedPlugin | PluginProblem:
    name = origin.name if copy is None else copy.name
    try:
        module = _import_module(entry_point.module)
        attribute = _attribute(module, entry_point)
        if copy is not None and not isinstance(attribute, type):
            raise _UnusableFile(
                f"cannot be made of {origin.name}: its entry point names an object, not a "
                "class, so there is no other object to give these settings to",
                name,
            )
        obj = _instance(attribute, f"`{entry_point.value}`")
        _entry_point_name(obj, origin.name)
        execute, resolve = _checked(obj, name, entry_point.value, settings, stage)
    except _UnusableFile as refused:
        return PluginProblem(None, refused.reason, name, refused.unconfigured, origin)
    except Exception as exc:  # a plugin object misbehaving in a way not foreseen above
        return PluginProblem(None, f"cannot be loaded: {describe(exc)}", name, entry_point=origin)
    logger.bind(plugin=name, distribution=origin.package).debug("plugin loaded from {}", origin)
    from ._callers import LoadedPlugin

    return LoadedPlugin(
        name=name,
        path=_module_file(module, origin),
        bundled=False,
        obj=cast(ActionPlugin, obj),  # checked above: a callable execute
        execute=execute,
        resolve=resolve,
        entry_point=origin,
        made_of=copy.base if copy is not None else None,
    )


def _checked(
    obj: object, name: str, label: str, settings: PluginSettings, stage: list[str] | None
) -> tuple[PluginMethod, PluginMethod | None]:
    """``execute`` and ``resolve`` of a plugin object, once configured and validated;
    ``label`` is what messages call the object (``Plugin``, ``mr_slack:Plugin``)."""
    execute = _method(obj, "execute", name, label)
    if execute is None:
        hint = " (found `Execute`: Python plugins use `execute`)" if hasattr(obj, "Execute") else ""
        raise _UnusableFile(f"`{label}` has no `execute` method{hint}", name)
    resolve = _method(obj, "resolve", name, label)
    if stage is not None:
        stage.append("configure()")
    _configure(obj, name, settings.get(name))
    if stage is not None:
        stage.append("validate_config()")
    _validate(obj, name, label)
    return execute, resolve


def _module_name(path: Path, copy: str | None = None) -> str:
    """``metric_reader._loaded_plugins.<stem>_<hash>``: private, one per file (and per
    plugin made of it, named ``copy``)."""
    stem = re.sub(r"\W", "_", path.stem, flags=re.ASCII)
    key = str(path.resolve()) + (f"\0{copy}" if copy is not None else "")
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{_MODULE_PREFIX}.{stem}_{digest}"


class _NoBytecodeLoader(importlib.machinery.SourceFileLoader):
    """Runs the source it is given: reads no ``__pycache__`` (whose validity check, by
    mtime in seconds and size, could hand back a stale version after a quick edit) and
    writes none into the plugin directory."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_code(self, fullname: str) -> CodeType:
        return self.source_to_code(self._source, self.path)

    def set_data(self, path: str, data: Buffer, *, _mode: int = 0o666) -> None:
        pass


def _import_file(path: Path, source: bytes, copy: str | None = None) -> ModuleType:
    name = _module_name(path, copy)
    loader = _NoBytecodeLoader(name, str(path), source)
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise _UnusableFile("cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs (dataclasses and pickle look the module up), under the
    # private name only, so that a json.py never stands in for the standard library.
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        raise _UnusableFile(_syntax_reason(exc, path)) from None
    except ImportError as exc:
        raise _UnusableFile(f"import failed{_where(exc, path)}: {describe(exc)}") from None
    except _ctrl_c():
        raise  # Ctrl-C during start-up stops the program, as it should
    except BaseException as exc:  # SystemExit too: a plugin must not stop the service
        raise _UnusableFile(
            f"raised {describe(exc)} while being imported{_where(exc, path)}"
        ) from None
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    return module


def _ctrl_c() -> tuple[type[BaseException], ...]:
    """What to let through while loading plugin code: ``KeyboardInterrupt`` where it can be
    a real Ctrl-C (the main thread, with Python's own SIGINT handler). Elsewhere (a reload in
    a worker thread, or the service's start-up, where SIGINT is a clean stop and raises
    nothing) a plugin raised it, and it is that plugin file's problem like any other."""
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        return (KeyboardInterrupt,)
    return ()


def _syntax_reason(exc: SyntaxError, path: Path | None) -> str:
    where = ""
    if exc.filename and (path is None or Path(exc.filename) != path):
        where += f" in {exc.filename}"
    if exc.lineno:
        where += f" at line {exc.lineno}"
    return f"syntax error{where}: {exc.msg}"


def _where(exc: BaseException, path: Path) -> str:
    """`` (line N)``: the last line of the plugin file in the traceback, if any."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" (line {line})" if line else ""


def _plugin_object(module: ModuleType) -> object:
    if not hasattr(module, "Plugin"):
        raise _UnusableFile("no module-level `Plugin` (expected e.g. `Plugin = MyPlugin()`)")
    return _instance(module.Plugin, "`Plugin`")


def _instance(obj: object, what: str) -> object:
    """``obj``, or a new object of it when it is a class."""
    if not isinstance(obj, type):
        return obj
    try:
        return obj()
    except _ctrl_c():
        raise
    except BaseException as exc:
        raise _UnusableFile(
            f"{what} is a class and creating it with no arguments failed: {describe(exc)}"
        ) from None


def _import_module(module_name: str) -> ModuleType:
    """An installed package's module, imported the normal way."""
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        raise _UnusableFile(_syntax_reason(exc, None)) from None
    except ImportError as exc:
        raise _UnusableFile(f"import failed: {describe(exc)}") from None
    except _ctrl_c():
        raise
    except BaseException as exc:  # SystemExit too: a plugin must not stop the service
        raise _UnusableFile(f"raised {describe(exc)} while being imported") from None


def _attribute(module: ModuleType, entry_point: EntryPoint) -> object:
    """What ``module:attr.attr`` names (as ``EntryPoint.load`` finds it)."""
    if not entry_point.attr:
        raise _UnusableFile(
            f"it names the module {entry_point.module}, not an object in it: write "
            f'"{entry_point.name} = {entry_point.module}:Plugin" (the class or object)'
        )
    obj: object = module
    walked: list[str] = []
    for attr in entry_point.attr.split("."):
        if not hasattr(obj, attr):
            where = ":".join([entry_point.module, ".".join(walked)]) if walked else module.__name__
            raise _UnusableFile(f"{where} has no attribute {attr!r}")
        walked.append(attr)
        obj = getattr(obj, attr)
    return obj


def _entry_point_name(obj: object, name: str) -> None:
    """An entry point's plugin is named by the entry point; a ``name`` it has must agree."""
    own = getattr(obj, "name", None)
    if own is not None and own != name:
        raise _UnusableFile(
            f"the plugin's own name {own!r} differs from the entry point's name {name!r}: "
            "a package's plugin is named by its entry point; make them equal or drop `name`",
            name,
        )


def _module_file(module: ModuleType, origin: EntryPointOrigin) -> Path:
    """The file of an entry point's module (a namespace package: its first directory)."""
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return Path(file)
    for directory in getattr(module, "__path__", ()):
        return Path(directory)
    return Path(origin.value)  # a built-in module: no file; what the entry point says


def _plugin_name(obj: object) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name.strip():
        return name
    if name is None:
        raise _UnusableFile('`Plugin` has no `name` (add e.g. `name = "my_plugin"`)')
    hint = '; write `name = "..."`, not a method' if callable(name) else ""
    raise _UnusableFile(f"`Plugin.name` must be a non-empty string, got {name!r}{hint}")


def _method(obj: object, method: str, name: str, label: str) -> PluginMethod | None:
    """How to call ``<label>.<method>``; None when there is none."""
    fn = getattr(obj, method, None)
    if fn is None:
        return None
    if not callable(fn):
        raise _UnusableFile(f"`{label}.{method}` is not callable (got {type(fn).__name__})", name)
    # an object with an ``async def __call__`` counts as async too
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    from ._callers import PluginMethod

    return PluginMethod(fn, is_async, _accepts_event(fn, method, name, label))


def _accepts_event(fn: Callable[..., object], method: str, name: str, label: str) -> bool:
    """True when ``fn`` can take ``event=`` (a parameter of that name, or ``**kwargs``)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to inspect: call it the classic way
        return False
    try:
        signature.bind(*_PROBE_ARGS, event=None)
        return True
    except TypeError:
        pass
    try:
        signature.bind(*_PROBE_ARGS)
    except TypeError as exc:
        raise _UnusableFile(
            f"`{label}.{method}{signature}` cannot be called as "
            f"{method}(metric_name, value, threshold, duration): {exc}",
            name,
        ) from None
    return False


def _configure(obj: object, name: str, table: Mapping[str, Any] | None) -> None:
    """Hand a ``[plugins.NAME]`` table of the rule file to ``configure(settings)``."""
    if table is None:
        return
    configure = getattr(obj, "configure", None)
    if not callable(configure):
        raise _UnusableFile(
            f"the rule file has a [plugins.{name}] table but the plugin has no "
            "configure(settings) method to take it",
            name,
        )
    try:
        configure(dict(table))
    except _ctrl_c():
        raise
    except BaseException as exc:
        raise _UnusableFile(
            f"configure() refused its [plugins.{name}] settings: {describe(exc)}",
            name,
            unconfigured=True,
        ) from None


def _validate(obj: object, name: str, label: str) -> None:
    validate = getattr(obj, "validate_config", None)
    if validate is None:
        return
    if not callable(validate):
        raise _UnusableFile(f"`{label}.validate_config` is not callable", name)
    try:
        result = validate()
    except _ctrl_c():
        raise
    except BaseException as exc:
        raise _UnusableFile(
            f"validate_config() refused: {describe(exc)}", name, unconfigured=True
        ) from None
    if inspect.iscoroutine(result):
        result.close()
        raise _UnusableFile("validate_config() must be a plain `def`, not `async def`", name)
