"""Plugins: find the ``.py`` files, load each one safely, call them with a time limit.

A plugin file exposes a module-level ``Plugin``: an object with a string ``name``, a
callable ``execute`` and optionally ``resolve`` and ``validate_config``. As a convenience
``Plugin`` may also be a class; it is then created with no arguments.

Loading never raises: every file that cannot be used becomes a :class:`PluginProblem`
naming the file and the reason. Calling never lets a plugin take the service down: any
exception it raises (``SystemExit`` included) becomes a :class:`PluginFailure`.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import importlib.machinery
import importlib.util
import inspect
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Literal

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar, checkpoint_if_cancelled
from loguru import logger

from ._durations import format_duration
from ._events import Event

Method = Literal["execute", "resolve"]

_MODULE_PREFIX = "metric_reader._loaded_plugins"
_PLUGIN_THREADS = 32  # plain-``def`` plugin calls running at once; more wait their turn
_MAX_STUCK_THREADS = 4  # a plugin with this many abandoned calls still running gets no more
_POLL_SECONDS = 0.05  # how soon a worker notices that its caller gave up
_PROBE_ARGS = ("metric", 0.0, ">0", timedelta(0))

_thread_limiter: RunVar[anyio.CapacityLimiter] = RunVar("metric_reader_plugin_threads")


class PluginFailure(Exception):
    """A plugin call did not succeed: the plugin raised, or (subclass) ran out of time."""

    def __init__(self, message: str, *, plugin: str, method: str) -> None:
        super().__init__(message)
        self.plugin = plugin
        self.method = method


class PluginTimeout(PluginFailure):
    """A plugin call took longer than its timeout and was given up."""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin file that could not be loaded, and why; ``name`` when it was learnt."""

    path: Path
    reason: str
    name: str | None = None

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class _Callable:
    """One plugin method and how to call it (worked out once, at load time)."""

    fn: Callable[..., object]
    is_async: bool
    accepts_event: bool


class LoadedPlugin:
    """A plugin that loaded and validated: ``call`` runs its ``execute`` or ``resolve``."""

    def __init__(
        self,
        *,
        name: str,
        path: Path,
        bundled: bool,
        obj: object,
        execute: _Callable,
        resolve: _Callable | None,
    ) -> None:
        self.name = name
        self.path = path
        self.bundled = bundled
        self.obj = obj  # the ``Plugin`` object itself
        self._methods: dict[str, _Callable] = {"execute": execute}
        if resolve is not None:
            self._methods["resolve"] = resolve
        self._lock = threading.Lock()
        self._stuck: set[_ThreadJob] = set()

    @property
    def has_resolve(self) -> bool:
        return "resolve" in self._methods

    @property
    def stuck_threads(self) -> int:
        """Calls given up at their timeout whose thread is still running."""
        with self._lock:
            return len(self._stuck)

    def __repr__(self) -> str:
        origin = "bundled" if self.bundled else "PLUGIN_DIR"
        return f"<LoadedPlugin {self.name!r} from {self.path} ({origin})>"

    async def call(self, method: Method, event: Event, timeout: float) -> None:
        """Run ``method(metric_name, value, threshold, duration[, event=event])``.

        Returns when it succeeded. Raises :class:`PluginTimeout` after ``timeout`` seconds,
        :class:`PluginFailure` for anything the plugin raised. The caller's own cancellation
        is never turned into a failure. ``resolve`` on a plugin without one does nothing.
        """
        target = self._methods.get(method)
        if target is None:
            if method == "resolve":
                return
            raise ValueError(f"unknown plugin method {method!r}")
        args = (event.metric_name, event.value, event.threshold, event.duration)
        kwargs = {"event": event} if target.accepts_event else {}
        if not target.is_async:
            self._refuse_if_stuck(method)
        cancelled = anyio.get_cancelled_exc_class()
        scope = anyio.move_on_after(timeout)
        try:
            with scope:
                if target.is_async:
                    result = await target.fn(*args, **kwargs)
                else:
                    result = await self._run_in_thread(method, lambda: target.fn(*args, **kwargs))
                if inspect.isawaitable(result):
                    result = await result
        except cancelled as exc:
            if _caller_cancelled():
                raise
            await checkpoint_if_cancelled()  # an enclosing anyio scope is cancelled: raises
            raise self._failure(method, exc) from exc
        except BaseException as exc:  # SystemExit and KeyboardInterrupt too: see module doc
            if scope.cancel_called:  # the plugin turned our cancellation into an error
                raise self._timeout(method, timeout) from exc
            raise self._failure(method, exc) from exc
        if scope.cancelled_caught:
            await checkpoint_if_cancelled()
            raise self._timeout(method, timeout)
        if result is not None:
            logger.bind(plugin=self.name).debug("{} returned {!r}; ignored", method, result)

    def _refuse_if_stuck(self, method: str) -> None:
        """Bound the threads a hung plugin can pile up: one per timed-out call otherwise."""
        stuck = self.stuck_threads
        if stuck >= _MAX_STUCK_THREADS:
            raise PluginFailure(
                f"plugin {self.name!r} {method} not started: {stuck} earlier calls are "
                "still running after their timeout",
                plugin=self.name,
                method=method,
            )

    async def _run_in_thread(self, method: str, func: Callable[[], object]) -> object:
        job = _ThreadJob(func, f"plugin {self.name} {method}", self._lock, self._stuck)
        try:
            return await anyio.to_thread.run_sync(
                job.run_and_wait, abandon_on_cancel=True, limiter=_plugin_thread_limiter()
            )
        finally:
            if job.abandon():
                logger.bind(plugin=self.name).warning(
                    "{} gave up waiting for {}; its thread keeps running in the background "
                    "({} such thread(s) for this plugin)",
                    method,
                    self.name,
                    self.stuck_threads,
                )

    def _failure(self, method: str, exc: BaseException) -> PluginFailure:
        return PluginFailure(
            f"plugin {self.name!r} {method} failed: {_describe(exc)}",
            plugin=self.name,
            method=method,
        )

    def _timeout(self, method: str, timeout: float) -> PluginTimeout:
        return PluginTimeout(
            f"plugin {self.name!r} {method} timed out after {format_duration(timeout)}",
            plugin=self.name,
            method=method,
        )


class _ThreadJob:
    """One plain-``def`` plugin call in its own daemon thread.

    The plugin runs in a daemon thread rather than directly in anyio's worker so that one
    hung forever can neither keep the worker nor stop the process from exiting (Python
    waits for non-daemon threads at exit). The anyio worker only waits for it, and stops
    waiting as soon as the caller gives up.
    """

    def __init__(
        self, func: Callable[[], object], name: str, lock: threading.Lock, stuck: set[_ThreadJob]
    ) -> None:
        context = contextvars.copy_context()  # log context bound by the caller follows the call
        self._thread = threading.Thread(target=context.run, args=(self._run, func), name=name)
        self._thread.daemon = True
        self._lock = lock
        self._stuck = stuck
        self._done = threading.Event()
        self._gave_up = threading.Event()
        self._result: object = None
        self._error: BaseException | None = None

    def run_and_wait(self) -> object:
        """In an anyio worker: start the plugin thread, wait for it or for :meth:`abandon`."""
        self._thread.start()
        while not self._done.wait(_POLL_SECONDS):
            if self._gave_up.is_set():
                return None
        if self._error is not None:
            raise self._error
        return self._result

    def abandon(self) -> bool:
        """Stop waiting; True when the plugin thread is still running (it is left to finish)."""
        with self._lock:
            self._gave_up.set()
            running = self._thread.ident is not None and not self._done.is_set()
            if running:
                self._stuck.add(self)
            return running

    def _run(self, func: Callable[[], object]) -> None:
        try:
            self._result = func()
        except BaseException as exc:
            self._error = exc
        finally:
            with self._lock:
                self._done.set()
                self._stuck.discard(self)


def _plugin_thread_limiter() -> anyio.CapacityLimiter:
    """The plugin threads' own limiter (one per event loop): they never starve anyio's."""
    try:
        return _thread_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(_PLUGIN_THREADS)
        _thread_limiter.set(limiter)
        return limiter


def _caller_cancelled() -> bool:
    """Whether this task was asked to stop, rather than a plugin raising CancelledError."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # not asyncio: cannot tell, so never swallow it
        return True
    return task is None or task.cancelling() > 0


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class PluginCatalog:
    """Every plugin that loaded, by name, and every file that did not."""

    plugins: dict[str, LoadedPlugin]
    problems: list[PluginProblem]

    def problem_for(self, name: str) -> PluginProblem | None:
        """The problem of a file whose plugin name, or failing that file stem, is ``name``."""
        for problem in self.problems:
            if problem.name == name:
                return problem
        for problem in self.problems:
            if problem.path.stem == name:
                return problem
        return None


def bundled_plugin_dir() -> Path:
    """Where the bundled plugins are: inside an installed package, or the source tree's."""
    package_dir = Path(__file__).resolve().parent
    installed = package_dir / "_bundled_plugins"
    return installed if installed.is_dir() else package_dir.parent / "plugin_dir"


def discover_plugins(plugin_dir: Path | None) -> PluginCatalog:
    """Load the bundled plugins and those in ``plugin_dir``; a ``plugin_dir`` one wins.

    A ``plugin_dir`` file that fails to load also hides the bundled plugin of its name (or
    file stem): a broken override must be reported, not silently replaced by the default.
    """
    bundled_dir = bundled_plugin_dir()
    plugins, problems = _load_directory(bundled_dir, bundled=True)
    if plugin_dir is None or _same_dir(plugin_dir, bundled_dir):
        return PluginCatalog(plugins, problems)
    user_plugins, user_problems = _load_directory(plugin_dir, bundled=False)
    for name, plugin in user_plugins.items():
        if name in plugins:
            logger.bind(plugin=name, file=str(plugin.path)).info(
                "plugin {} from PLUGIN_DIR replaces the bundled one", name
            )
        plugins[name] = plugin
    problems = [p for p in problems if (p.name or p.path.stem) not in user_plugins]
    for problem in user_problems:
        hidden = plugins.get(problem.name or problem.path.stem)
        if hidden is not None and hidden.bundled:
            del plugins[hidden.name]
            logger.bind(plugin=hidden.name, file=str(problem.path)).warning(
                "bundled plugin {} not used: its replacement in PLUGIN_DIR failed to load",
                hidden.name,
            )
    return PluginCatalog(plugins, problems + user_problems)


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _load_directory(
    directory: Path, *, bundled: bool
) -> tuple[dict[str, LoadedPlugin], list[PluginProblem]]:
    """Load every plugin file directly in ``directory``; refuse names given twice."""
    try:
        files = sorted(
            p
            for p in directory.iterdir()
            if p.suffix == ".py" and not p.name.startswith(("_", ".")) and p.is_file()
        )
    except FileNotFoundError:
        return {}, [PluginProblem(directory, "plugin directory does not exist")]
    except NotADirectoryError:
        return {}, [PluginProblem(directory, "not a directory")]
    except OSError as exc:
        return {}, [PluginProblem(directory, f"cannot list the plugin directory: {exc}")]
    by_name: dict[str, list[LoadedPlugin]] = {}
    problems: list[PluginProblem] = []
    for path in files:
        loaded = load_plugin_file(path, bundled=bundled)
        if isinstance(loaded, PluginProblem):
            logger.bind(file=str(path)).debug("plugin not loaded: {}", loaded.reason)
            problems.append(loaded)
        else:
            by_name.setdefault(loaded.name, []).append(loaded)
    plugins: dict[str, LoadedPlugin] = {}
    for name, same in by_name.items():
        if len(same) == 1:
            plugins[name] = same[0]
            continue
        for plugin in same:
            others = ", ".join(str(o.path) for o in same if o is not plugin)
            reason = f"plugin name {name!r} is also given by {others}; both are refused"
            problems.append(PluginProblem(plugin.path, reason, name))
    return plugins, problems


class _Refused(Exception):
    """Internal: why a plugin file cannot be used."""

    def __init__(self, reason: str, name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name


def load_plugin_file(path: Path, *, bundled: bool = False) -> LoadedPlugin | PluginProblem:
    """Import one plugin file under a private module name, check it, validate it."""
    name: str | None = None
    try:
        module = _import_file(path)
        obj = _plugin_object(module)
        name = _plugin_name(obj)
        execute = _method(obj, "execute", name)
        if execute is None:
            hint = (
                " (found `Execute`: Python plugins use `execute`)"
                if hasattr(obj, "Execute")
                else ""
            )
            raise _Refused(f"`Plugin` has no `execute` method{hint}", name)
        resolve = _method(obj, "resolve", name)
        _validate(obj, name)
    except _Refused as refused:
        return PluginProblem(path, refused.reason, refused.name or name)
    except Exception as exc:  # a plugin object misbehaving in a way not foreseen above
        return PluginProblem(path, f"cannot be loaded: {_describe(exc)}", name)
    logger.bind(plugin=name, file=str(path)).debug("plugin loaded")
    return LoadedPlugin(
        name=name, path=path, bundled=bundled, obj=obj, execute=execute, resolve=resolve
    )


def _module_name(path: Path) -> str:
    """``metric_reader._loaded_plugins.<stem>_<hash>``: private, one per file."""
    stem = re.sub(r"\W", "_", path.stem, flags=re.ASCII)
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    return f"{_MODULE_PREFIX}.{stem}_{digest}"


class _NoBytecodeLoader(importlib.machinery.SourceFileLoader):
    """Loads a plugin without writing ``__pycache__`` into the plugin directory."""

    def set_data(self, path: str, data: bytes, *, _mode: int = 0o666) -> None:
        pass


def _import_file(path: Path) -> ModuleType:
    name = _module_name(path)
    loader = _NoBytecodeLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise _Refused("cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Registered while it runs (dataclasses and pickle look the module up), under the
    # private name only, so that a json.py never stands in for the standard library.
    previous = sys.modules.get(name)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except SyntaxError as exc:
        raise _Refused(_syntax_reason(exc, path)) from None
    except ImportError as exc:
        raise _Refused(f"import failed{_where(exc, path)}: {_describe(exc)}") from None
    except KeyboardInterrupt:
        raise  # Ctrl-C during start-up stops the program, as it should
    except BaseException as exc:  # SystemExit too: a plugin must not stop the service
        raise _Refused(f"raised {_describe(exc)} while being imported{_where(exc, path)}") from None
    finally:
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous
    return module


def _syntax_reason(exc: SyntaxError, path: Path) -> str:
    where = ""
    if exc.filename and Path(exc.filename) != path:
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
        raise _Refused("no module-level `Plugin` (expected e.g. `Plugin = MyPlugin()`)")
    obj: object = module.Plugin
    if isinstance(obj, type):
        try:
            obj = obj()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise _Refused(
                f"`Plugin` is a class and creating it with no arguments failed: {_describe(exc)}"
            ) from None
    return obj


def _plugin_name(obj: object) -> str:
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name.strip():
        return name
    if name is None:
        raise _Refused('`Plugin` has no `name` (add e.g. `name = "my_plugin"`)')
    hint = '; write `name = "..."`, not a method' if callable(name) else ""
    raise _Refused(f"`Plugin.name` must be a non-empty string, got {name!r}{hint}")


def _method(obj: object, method: str, name: str) -> _Callable | None:
    """How to call ``Plugin.<method>``; None when there is none."""
    fn = getattr(obj, method, None)
    if fn is None:
        return None
    if not callable(fn):
        raise _Refused(f"`Plugin.{method}` is not callable (got {type(fn).__name__})", name)
    # an object with an ``async def __call__`` counts as async too
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    return _Callable(fn, is_async, _accepts_event(fn, method, name))


def _accepts_event(fn: Callable[..., object], method: str, name: str) -> bool:
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
        raise _Refused(
            f"`Plugin.{method}{signature}` cannot be called as "
            f"{method}(metric_name, value, threshold, duration): {exc}",
            name,
        ) from None
    return False


def _validate(obj: object, name: str) -> None:
    validate = getattr(obj, "validate_config", None)
    if validate is None:
        return
    if not callable(validate):
        raise _Refused("`Plugin.validate_config` is not callable", name)
    try:
        result = validate()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise _Refused(f"validate_config() refused: {_describe(exc)}", name) from None
    if inspect.iscoroutine(result):
        result.close()
        raise _Refused("validate_config() must be a plain `def`, not `async def`", name)
