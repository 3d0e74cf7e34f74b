"""Plugin loading and calling, with real plugin files written to tmp_path."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from _events import make_event as _make_event
from loguru import logger

from metric_reader import Event
from metric_reader._actions import (
    LoadedPlugin,
    PluginCatalog,
    PluginFailure,
    PluginProblem,
    PluginTimeout,
    bundled_plugin_dir,
    discover_plugins,
    load_plugin_file,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def configured_bundled_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """exec_action refuses to validate without its command; these tests are about loading."""
    monkeypatch.setenv("EXEC_ACTION_COMMAND", "true")


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def write(directory: Path, filename: str, source: str) -> Path:
    path = directory / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


def load(directory: Path, source: str, filename: str = "plugin.py") -> LoadedPlugin:
    loaded = load_plugin_file(write(directory, filename, source))
    assert isinstance(loaded, LoadedPlugin), str(loaded)
    return loaded


def make_event(**changes: Any) -> Event:
    return _make_event(**changes)


GOOD = """
    class Good:
        name = "good"

        def __init__(self):
            self.calls = []

        async def execute(self, metric_name, value, threshold, duration):
            self.calls.append((metric_name, value, threshold, duration))

    Plugin = Good()
"""


# --- discovery -------------------------------------------------------------------------


def test_plugin_dir_plugins_load_next_to_the_bundled_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "good.py", GOOD)

    catalog = discover_plugins(tmp_path)

    good = catalog.plugins["good"]
    assert (good.name, good.path, good.bundled, good.has_resolve) == ("good", path, False, False)
    assert catalog.problems == []
    for name in ("log_action", "file_action"):
        assert catalog.plugins[name].bundled
        assert catalog.plugins[name].path.parent == bundled_plugin_dir()


def test_bundled_plugins_come_from_the_source_tree_when_not_installed() -> None:
    assert bundled_plugin_dir() == REPO / "plugin_dir"
    assert {"log_action", "file_action"} <= set(discover_plugins(None).plugins)


def test_a_class_named_plugin_is_created_with_no_arguments(tmp_path: Path) -> None:
    write(
        tmp_path,
        "klass.py",
        """
        class Plugin:
            name = "klass"

            def __init__(self):
                self.ready = True

            def execute(self, metric_name, value, threshold, duration):
                pass
        """,
    )

    plugin = discover_plugins(tmp_path).plugins["klass"]

    assert plugin.obj.ready is True


PROBLEMS = {
    "syntax_error": (
        """
        class P:
            name = "x"
            def execute(self, m, v, t, d)
                pass
        Plugin = P()
        """,
        ["syntax error at line 3"],
    ),
    "import_error": (
        """
        import os
        import no_such_module_for_metric_reader
        """,
        ["import failed (line 2)", "no_such_module_for_metric_reader"],
    ),
    "raises_at_import": (
        """
        x = 1
        raise RuntimeError("boom at import")
        """,
        ["RuntimeError: boom at import", "line 2"],
    ),
    "exits_at_import": ("import sys\nsys.exit(3)\n", ["SystemExit: 3"]),
    "no_plugin": ("class P:\n    name = 'x'\n", ["no module-level `Plugin`"]),
    "no_name": (
        """
        class P:
            def execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["`Plugin` has no `name`"],
    ),
    "name_not_string": (
        """
        class P:
            name = 42
            def execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["`Plugin.name` must be a non-empty string, got 42"],
    ),
    "name_is_a_method": (
        """
        class P:
            def name(self):
                return "x"
            def execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["must be a non-empty string", "not a method"],
    ),
    "no_execute": ("class P:\n    name = 'x'\nPlugin = P()\n", ["`Plugin` has no `execute`"]),
    "go_style_execute": (
        """
        class P:
            name = "x"
            def Execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["has no `execute`", "found `Execute`"],
    ),
    "execute_not_callable": (
        "class P:\n    name = 'x'\n    execute = 'run'\nPlugin = P()\n",
        ["`Plugin.execute` is not callable"],
    ),
    "resolve_not_callable": (
        """
        class P:
            name = "x"
            resolve = 3
            def execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["`Plugin.resolve` is not callable"],
    ),
    "execute_takes_no_arguments": (
        """
        class P:
            name = "x"
            def execute(self):
                pass
        Plugin = P()
        """,
        ["cannot be called as execute(metric_name, value, threshold, duration)"],
    ),
    "validate_config_refuses": (
        """
        class P:
            name = "x"
            def validate_config(self):
                raise ValueError("API_KEY is not set")
            def execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["validate_config() refused: ValueError: API_KEY is not set"],
    ),
    "async_validate_config": (
        """
        class P:
            name = "x"
            async def validate_config(self):
                pass
            def execute(self, m, v, t, d):
                pass
        Plugin = P()
        """,
        ["validate_config() must be a plain `def`"],
    ),
    "class_needs_arguments": (
        """
        class Plugin:
            name = "x"
            def __init__(self, endpoint):
                pass
            def execute(self, m, v, t, d):
                pass
        """,
        ["creating it with no arguments failed: TypeError"],
    ),
}


@pytest.mark.parametrize("case", sorted(PROBLEMS))
def test_a_bad_plugin_file_is_reported_with_file_and_reason(tmp_path: Path, case: str) -> None:
    source, expected = PROBLEMS[case]
    path = write(tmp_path, f"{case}.py", source)
    write(tmp_path, "good.py", GOOD)

    catalog = discover_plugins(tmp_path)

    problem = catalog.problem_for(case)
    assert problem is not None
    assert problem.path == path
    for text in expected:
        assert text in problem.reason
    assert str(problem) == f"{path}: {problem.reason}"
    assert [p.path for p in catalog.problems] == [path]
    assert "x" not in catalog.plugins
    assert "good" in catalog.plugins


def test_a_problem_found_after_the_name_is_known_can_be_looked_up_by_name(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "file.py", PROBLEMS["validate_config_refuses"][0])

    catalog = discover_plugins(tmp_path)

    assert catalog.problem_for("x") == catalog.problem_for("file")
    assert catalog.problem_for("x") == PluginProblem(
        path, catalog.problems[0].reason, "x", unconfigured=True
    )
    assert catalog.problem_for("nothing") is None


def test_underscore_dot_nested_and_non_python_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "_helper.py", "this is not python")
    write(tmp_path, ".hidden.py", "this is not python")
    write(tmp_path, "nested/deep.py", "this is not python")
    write(tmp_path, "notes.txt", "this is not python")
    write(tmp_path, "good.py", GOOD)

    catalog = discover_plugins(tmp_path)

    assert catalog.problems == []
    assert [p for p in catalog.plugins.values() if not p.bundled] == [catalog.plugins["good"]]


def test_two_files_with_the_same_name_are_both_refused_naming_each_other(
    tmp_path: Path,
) -> None:
    first = write(tmp_path, "first.py", GOOD)
    second = write(tmp_path, "second.py", GOOD)

    catalog = discover_plugins(tmp_path)

    assert "good" not in catalog.plugins
    by_path = {p.path: p for p in catalog.problems}
    assert set(by_path) == {first, second}
    assert str(second) in by_path[first].reason
    assert str(first) in by_path[second].reason
    assert all(p.name == "good" for p in catalog.problems)
    assert catalog.problem_for("good") is not None


def test_a_plugin_dir_plugin_replaces_the_bundled_one_of_the_same_name(
    tmp_path: Path, log_records: list[dict[str, Any]]
) -> None:
    path = write(tmp_path, "my_logger.py", GOOD.replace('"good"', '"log_action"'))

    catalog = discover_plugins(tmp_path)
    catalog.log_overrides()  # the service says it once the configuration is valid

    plugin = catalog.plugins["log_action"]
    assert (plugin.path, plugin.bundled) == (path, False)
    assert catalog.problems == []
    assert catalog.overrides == ["log_action"]
    replaced = [r for r in log_records if "replaces the bundled" in r["message"]]
    assert [r["level"].name for r in replaced] == ["INFO"]
    assert replaced[0]["extra"]["file"] == str(path)


def test_a_broken_replacement_hides_the_bundled_plugin_instead_of_falling_back(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "log_action.py", "def broken(:\n")

    catalog = discover_plugins(tmp_path)

    assert "log_action" not in catalog.plugins
    problem = catalog.problem_for("log_action")
    assert problem is not None and problem.path == path


def test_a_replaced_bundled_plugin_leaves_no_problem_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE_ACTION_SIZE", "abc")  # the bundled file_action refuses this
    assert discover_plugins(None).problem_for("file_action") is not None
    write(tmp_path, "file_action.py", GOOD.replace('"good"', '"file_action"'))

    catalog = discover_plugins(tmp_path)

    assert not catalog.plugins["file_action"].bundled
    assert catalog.problem_for("file_action") is None


def test_plugin_files_are_private_modules_and_never_shadow_the_standard_library(
    tmp_path: Path,
) -> None:
    for stem in ("json", "logging"):
        write(
            tmp_path,
            f"{stem}.py",
            f"""
            import {stem} as wanted

            class P:
                name = "{stem}_plugin"
                imported_file = wanted.__file__

                def execute(self, m, v, t, d):
                    pass

            Plugin = P()
            """,
        )
    modules_before = set(sys.modules)

    catalog = discover_plugins(tmp_path)

    import json
    import logging

    assert json.loads("[1]") == [1]
    assert logging.getLogger("x").name == "x"
    for stem in ("json", "logging"):
        plugin = catalog.plugins[f"{stem}_plugin"]
        assert not plugin.obj.imported_file.startswith(str(tmp_path))
        assert Path(sys.modules[stem].__file__ or "").parent != tmp_path
        module_name = type(plugin.obj).__module__
        assert module_name.startswith(f"metric_reader._loaded_plugins.{stem}_")
        assert module_name not in sys.modules
    assert {m for m in set(sys.modules) - modules_before if "_loaded_plugins" in m} == set()


def test_files_with_the_same_stem_in_two_directories_get_different_modules(
    tmp_path: Path,
) -> None:
    one = load(tmp_path / "one", GOOD, "same.py")
    two = load(tmp_path / "two", GOOD, "same.py")

    assert type(one.obj).__module__ != type(two.obj).__module__


def test_a_plugin_may_define_dataclasses(tmp_path: Path) -> None:
    plugin = load(
        tmp_path,
        """
        from __future__ import annotations

        import dataclasses
        from typing import ClassVar

        @dataclasses.dataclass
        class Settings:
            url: str = "http://x"
            kind: ClassVar[str] = "k"

        class P:
            name = "dc"
            settings = Settings()

            def execute(self, m, v, t, d):
                pass

        Plugin = P()
        """,
    )

    assert plugin.obj.settings.url == "http://x"


def test_loading_writes_no_bytecode_into_the_plugin_dir(tmp_path: Path) -> None:
    write(tmp_path, "good.py", GOOD)

    discover_plugins(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.py"]


def test_a_missing_plugin_dir_is_a_problem_not_an_exception(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    catalog = discover_plugins(missing)

    assert catalog.problems == [
        PluginProblem(
            missing,
            f"does not exist ([Errno 2] No such file or directory: '{missing}')",
        )
    ]
    assert catalog.dir_error == catalog.problems[0].reason
    assert "log_action" in catalog.plugins


def test_the_bundled_dir_as_plugin_dir_loads_each_plugin_once() -> None:
    catalog = discover_plugins(bundled_plugin_dir())

    assert catalog.problems == []
    assert all(p.bundled for p in catalog.plugins.values())


# --- calling ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_execute_runs_on_the_event_loop_with_the_classic_arguments(
    tmp_path: Path,
) -> None:
    plugin = load(tmp_path, GOOD)
    event = make_event()

    result = await plugin.call("execute", event, timeout=5)

    assert result is None
    assert plugin.obj.calls == [("queue_depth", 95.0, ">80", timedelta(seconds=30))]


@pytest.mark.anyio
async def test_sync_execute_runs_in_a_worker_thread(tmp_path: Path) -> None:
    plugin = load(
        tmp_path,
        """
        import threading

        class P:
            name = "sync"
            calls = []

            def execute(self, metric_name, value, threshold, duration):
                self.calls.append((metric_name, value, threshold, duration))
                self.thread = threading.get_ident()

        Plugin = P()
        """,
    )

    await plugin.call("execute", make_event(value=1.5), timeout=5)

    assert plugin.obj.calls == [("queue_depth", 1.5, ">80", timedelta(seconds=30))]
    assert plugin.obj.thread != threading.get_ident()


EVENT_SIGNATURES = {
    "positional only": ("metric_name, value, threshold, duration", False),
    "event keyword": ("metric_name, value, threshold, duration, event=None", True),
    "keyword-only event": ("metric_name, value, threshold, duration, *, event", True),
    "kwargs": ("metric_name, value, threshold, duration, **kwargs", True),
    "args and kwargs": ("*args, **kwargs", True),
}


@pytest.mark.anyio
@pytest.mark.parametrize("style", ["def", "async def"])
@pytest.mark.parametrize("signature", sorted(EVENT_SIGNATURES))
async def test_event_is_passed_only_to_methods_that_accept_it(
    tmp_path: Path, signature: str, style: str
) -> None:
    params, wants_event = EVENT_SIGNATURES[signature]
    plugin = load(
        tmp_path,
        f"""
        class P:
            name = "ev"
            seen = []

            {style} execute(self, {params}):
                self.seen.append(dict(locals()))

            {style} resolve(self, {params}):
                self.seen.append(dict(locals()))

        Plugin = P()
        """,
    )
    event = make_event()

    await plugin.call("execute", event, timeout=5)
    await plugin.call("resolve", event, timeout=5)

    for seen in plugin.obj.seen:
        received = seen.get("event", seen.get("kwargs", {}).get("event"))
        assert (received is event) == wants_event
        if "kwargs" in seen:
            assert seen["kwargs"] == ({"event": event} if wants_event else {})


@pytest.mark.anyio
async def test_resolve_is_optional(tmp_path: Path) -> None:
    plugin = load(tmp_path, GOOD)

    assert not plugin.has_resolve
    await plugin.call("resolve", make_event(kind="resolve"), timeout=5)  # does nothing

    assert plugin.obj.calls == []


@pytest.mark.anyio
async def test_a_coroutine_returned_by_a_plain_def_is_awaited(tmp_path: Path) -> None:
    plugin = load(
        tmp_path,
        """
        class P:
            name = "lazy"
            done = False

            async def _work(self):
                self.done = True

            def execute(self, m, v, t, d):
                return self._work()

        Plugin = P()
        """,
    )

    await plugin.call("execute", make_event(), timeout=5)

    assert plugin.obj.done


@pytest.mark.anyio
async def test_a_return_value_is_ignored(tmp_path: Path) -> None:
    plugin = load(
        tmp_path,
        """
        class P:
            name = "returns"
            def execute(self, m, v, t, d):
                return False
        Plugin = P()
        """,
    )

    assert await plugin.call("execute", make_event(), timeout=5) is None


@pytest.mark.anyio
async def test_log_context_of_the_caller_reaches_a_sync_plugin(
    tmp_path: Path, log_records: list[dict[str, Any]]
) -> None:
    plugin = load(
        tmp_path,
        """
        from loguru import logger

        class P:
            name = "ctx"
            def execute(self, m, v, t, d):
                logger.info("from the plugin")
        Plugin = P()
        """,
    )

    with logger.contextualize(rule="queue"):
        await plugin.call("execute", make_event(), timeout=5)

    [record] = [r for r in log_records if r["message"] == "from the plugin"]
    assert record["extra"]["rule"] == "queue"


HUNG_ASYNC = """
    import anyio

    class P:
        name = "hung"
        async def execute(self, m, v, t, d):
            await anyio.sleep(3600)

    Plugin = P()
"""

HUNG_SYNC = """
    import time

    class P:
        name = "hung"
        def execute(self, m, v, t, d):
            time.sleep(3600)

    Plugin = P()
"""


@pytest.mark.anyio
@pytest.mark.parametrize("source", [HUNG_ASYNC, HUNG_SYNC], ids=["async", "sync"])
async def test_a_hung_plugin_times_out_while_the_event_loop_keeps_running(
    tmp_path: Path, source: str
) -> None:
    plugin = load(tmp_path, source)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        started = time.monotonic()
        with pytest.raises(PluginTimeout) as caught:
            await plugin.call("execute", make_event(), timeout=0.5)
        elapsed = time.monotonic() - started
        tg.cancel_scope.cancel()

    assert 0.5 <= elapsed < 2.0
    assert str(caught.value) == "plugin 'hung' execute timed out after 500ms"
    assert (caught.value.plugin, caught.value.method) == ("hung", "execute")
    assert len(ticks) >= 20
    # The loop never stood still for as long as the call's timeout: it was not waiting on it.
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5


@pytest.mark.anyio
async def test_a_sync_plugin_that_keeps_hanging_is_not_given_more_threads(
    tmp_path: Path, log_records: list[dict[str, Any]]
) -> None:
    plugin = load(
        tmp_path,
        """
        import threading

        class P:
            name = "stuck"
            release = threading.Event()
            def execute(self, m, v, t, d):
                self.release.wait()

        Plugin = P()
        """,
    )
    try:
        for _ in range(4):
            with pytest.raises(PluginTimeout):
                await plugin.call("execute", make_event(), timeout=0.05)
        assert plugin.stuck_threads == 4
        assert any("keeps running in the background" in r["message"] for r in log_records)

        started = time.monotonic()
        with pytest.raises(PluginFailure, match="4 earlier calls are still running") as caught:
            await plugin.call("execute", make_event(), timeout=5)
        assert not isinstance(caught.value, PluginTimeout)
        assert time.monotonic() - started < 2.5  # refused at once, not after its 5 s timeout
    finally:
        plugin.obj.release.set()

    with anyio.fail_after(5):
        while plugin.stuck_threads:
            await anyio.sleep(0.01)
    plugin.obj.release.set()
    await plugin.call("execute", make_event(), timeout=5)


RAISES = """
    import asyncio

    class P:
        name = "raiser"
        error = None

        {style} execute(self, m, v, t, d):
            raise self.error

    Plugin = P()
"""

ERRORS = {
    "ValueError": (ValueError("bad value"), "ValueError: bad value"),
    "SystemExit": (SystemExit(3), "SystemExit: 3"),
    "KeyboardInterrupt": (KeyboardInterrupt(), "KeyboardInterrupt"),
    "its own TimeoutError": (TimeoutError("upstream slow"), "TimeoutError: upstream slow"),
    "its own CancelledError": (asyncio.CancelledError(), "CancelledError"),
}


@pytest.mark.anyio
@pytest.mark.parametrize("style", ["def", "async def"])
@pytest.mark.parametrize("error", sorted(ERRORS))
async def test_whatever_a_plugin_raises_becomes_a_plugin_failure(
    tmp_path: Path, style: str, error: str
) -> None:
    plugin = load(tmp_path, RAISES.format(style=style))
    plugin.obj.error, expected = ERRORS[error]

    with pytest.raises(PluginFailure) as caught:
        await plugin.call("execute", make_event(), timeout=5)

    assert type(caught.value) is PluginFailure
    assert str(caught.value) == f"plugin 'raiser' execute failed: {expected}"
    assert caught.value.__cause__ is plugin.obj.error
    await anyio.sleep(0)  # the task is not left cancelled


@pytest.mark.anyio
@pytest.mark.parametrize("source", [HUNG_ASYNC, HUNG_SYNC], ids=["async", "sync"])
async def test_cancelling_the_caller_cancels_the_call(tmp_path: Path, source: str) -> None:
    plugin = load(tmp_path, source)
    started = time.monotonic()

    with anyio.move_on_after(0.2) as outer:
        await plugin.call("execute", make_event(), timeout=30)
        pytest.fail("the call should have been cancelled")

    assert outer.cancelled_caught
    assert time.monotonic() - started < 1.5


@pytest.mark.anyio
@pytest.mark.parametrize("source", [HUNG_ASYNC, HUNG_SYNC], ids=["async", "sync"])
async def test_cancelling_the_task_propagates_cancelled_error(tmp_path: Path, source: str) -> None:
    plugin = load(tmp_path, source)
    task = asyncio.create_task(plugin.call("execute", make_event(), timeout=30))
    await asyncio.sleep(0.1)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_hung_sync_plugin_does_not_keep_the_process_from_exiting(tmp_path: Path) -> None:
    path = write(tmp_path, "hung.py", HUNG_SYNC)
    script = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime, timedelta
        from pathlib import Path

        import anyio

        from metric_reader import Event
        from metric_reader._actions import PluginTimeout, load_plugin_file

        plugin = load_plugin_file(Path(sys.argv[1]))
        event = Event("r", "m", {}, 1.0, ">0", "base", "fire", datetime.now(UTC),
                      timedelta(0), 0)

        async def main():
            try:
                await plugin.call("execute", event, 0.2)
            except PluginTimeout as exc:
                print(exc)

        anyio.run(main)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()

    done = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "plugin 'hung' execute timed out after 200ms"
    assert time.monotonic() - started < 15


def test_catalog_problem_lookup_prefers_the_plugin_name() -> None:
    by_stem = PluginProblem(Path("/p/alpha.py"), "broken")
    by_name = PluginProblem(Path("/p/other.py"), "refused", name="alpha")

    assert PluginCatalog({}, [by_stem, by_name]).problem_for("alpha") is by_name
    assert PluginCatalog({}, [by_stem]).problem_for("alpha") is by_stem


# --- async plugins run on an event loop of their own ----------------------------------------

UNCANCELLABLE = {
    "to_thread": "await anyio.to_thread.run_sync(self.release.wait)",
    "executor": "await asyncio.get_running_loop().run_in_executor(None, self.release.wait)",
    "blocks its loop": "self.release.wait()",
    "ignores cancellation": "while not self.release.is_set():\n"
    "                    try:\n"
    "                        await asyncio.sleep(0.01)\n"
    "                    except asyncio.CancelledError:\n"
    "                        pass",
}


@pytest.mark.anyio
@pytest.mark.parametrize("how", list(UNCANCELLABLE))
async def test_an_async_plugin_waiting_on_what_cannot_be_cancelled_still_times_out(
    tmp_path: Path, how: str, log_records: list[dict[str, Any]]
) -> None:
    plugin = load(
        tmp_path,
        f"""
        import asyncio, threading
        import anyio, anyio.to_thread

        class P:
            name = "uncancellable"
            release = threading.Event()
            async def execute(self, m, v, t, d):
                {UNCANCELLABLE[how]}

        Plugin = P()
        """,
    )
    try:
        started = time.monotonic()
        with pytest.raises(PluginTimeout, match="timed out after 300ms"):
            await plugin.call("execute", make_event(), timeout=0.3)
        assert time.monotonic() - started < 1.0
        if how == "blocks its loop":  # found blocked at the next call: that one gets a new loop
            await anyio.sleep(1.1)
            with pytest.raises(PluginTimeout):
                await plugin.call("execute", make_event(), timeout=0.3)
            assert any("has been blocked for 1s" in r["message"] for r in log_records)
        if how == "ignores cancellation":
            await anyio.sleep(1.2)
            [notice] = [
                r["message"] for r in log_records if "after it was cancelled" in r["message"]
            ]
            assert "execute of plugin uncancellable is still running 1.0s after" in notice
            assert plugin.stuck_threads == 1
    finally:
        plugin.obj.release.set()
    with anyio.fail_after(5):
        while plugin.stuck_threads:
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_calls_of_an_async_plugin_share_one_loop_that_is_not_the_callers(
    tmp_path: Path,
) -> None:
    """State bound to an event loop (a client, a lock, a queue) can be kept between calls."""
    plugin = load(
        tmp_path,
        """
        import asyncio

        class P:
            name = "stateful"
            loops = []
            lock = None
            async def execute(self, m, v, t, d):
                self.loops.append(asyncio.get_running_loop())
                if self.lock is None:
                    self.lock = asyncio.Lock()
                async with self.lock:
                    await asyncio.sleep(0.05)

        Plugin = P()
        """,
    )
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(plugin.call, "execute", make_event(), 5)
    await plugin.call("execute", make_event(), timeout=5)

    loops = plugin.obj.loops
    assert len(loops) == 4 and len(set(map(id, loops))) == 1
    assert loops[0] is not asyncio.get_running_loop()
