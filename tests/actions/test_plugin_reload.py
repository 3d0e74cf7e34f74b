"""Drop-in plugins: ``PluginCatalog.watch`` picks up files added, changed or removed.

In-process, under anyio, with real files and a short watch interval. Every wait polls a
condition with a deadline; the plugins record each call (their version) in a real file.
"""

from __future__ import annotations

import os
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
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
    discover_plugins,
)

INTERVAL = 0.1
DEADLINE = 10.0


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    directory.chmod(0o755)
    return directory


@pytest.fixture
def record(tmp_path: Path) -> Path:
    """Where the test plugins append one line (their version) per call."""
    return tmp_path / "calls.txt"


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def versioned(name: str, version: int, record: Path, padding: int = 0) -> str:
    """A plugin recording ``version`` per call. ``Plugin`` comes last and ``execute`` needs
    ``COMPLETE``, so a partly written file cannot load, and a half-run module would fail."""
    filler = "".join(f"# filler line {i} to make the file longer\n" for i in range(padding))
    return (
        textwrap.dedent(
            f"""
        VERSION = {version}


        class Versioned:
            name = {name!r}

            async def execute(self, metric_name, value, threshold, duration):
                if not COMPLETE:
                    raise RuntimeError("half-loaded module")
                with open({str(record)!r}, "a") as out:
                    out.write(f"{{VERSION}}\\n")


        """
        ).lstrip()
        + filler
        + "COMPLETE = True\nPlugin = Versioned()\n"
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o644)
    return path


def make_event() -> Event:
    return _make_event(labels={})


def recorded(record: Path) -> list[int]:
    try:
        return [int(line) for line in record.read_text().splitlines()]
    except FileNotFoundError:
        return []


async def call(catalog: PluginCatalog, name: str) -> None:
    """What the service does: look the plugin up at call time, then call it."""
    await catalog.plugins[name].call("execute", make_event(), timeout=5.0)


async def version_called(catalog: PluginCatalog, name: str, record: Path) -> int | None:
    """Call the plugin ``name`` now; the version that answered (None: not there)."""
    if name not in catalog.plugins:
        return None
    before = len(recorded(record))
    await call(catalog, name)
    return recorded(record)[before]


async def eventually(
    predicate: Callable[[], Any], what: str | Callable[[], str], timeout: float = DEADLINE
) -> Any:
    """Poll ``predicate`` (sync or async) until it gives something truthy, or fail."""
    deadline = anyio.current_time() + timeout
    while True:
        result = predicate()
        if hasattr(result, "__await__"):
            result = await result
        if result:
            return result
        if anyio.current_time() >= deadline:
            text = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout}s waiting for: {text}")
        await anyio.sleep(0.02)


@asynccontextmanager
async def watching(catalog: PluginCatalog, interval: float = INTERVAL) -> AsyncIterator[None]:
    async with anyio.create_task_group() as group:
        group.start_soon(catalog.watch, interval)
        yield
        group.cancel_scope.cancel()


def messages(log_records: list[dict[str, Any]], level: str) -> list[str]:
    return [r["message"] for r in log_records if r["level"].name == level]


# -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_new_file_becomes_a_plugin(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    catalog = discover_plugins(plugin_dir)
    assert "fresh" not in catalog.plugins
    plugins = catalog.plugins

    async with watching(catalog):
        path = write(plugin_dir / "fresh.py", versioned("fresh", 1, record))
        await eventually(lambda: "fresh" in catalog.plugins, "plugin fresh to appear")
        assert await version_called(catalog, "fresh", record) == 1

    assert catalog.plugins is plugins  # the same dict the service holds
    assert f"plugin fresh added from {path}" in messages(log_records, "INFO")


@pytest.mark.anyio
async def test_a_changed_file_is_loaded_again_and_its_new_code_called(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)
    first = catalog.plugins["versioned"]
    assert await version_called(catalog, "versioned", record) == 1

    async with watching(catalog):
        # The same size, straight away: only the inode times or the content tell.
        write(path, versioned("versioned", 2, record))
        await eventually(
            lambda: version_called(catalog, "versioned", record), "any call to succeed"
        )
        await eventually(
            lambda: catalog.plugins["versioned"] is not first, "versioned to be reloaded"
        )
        assert await version_called(catalog, "versioned", record) == 2

    assert f"plugin versioned reloaded from {path}" in messages(log_records, "INFO")


@pytest.mark.anyio
async def test_an_edit_within_the_same_clock_tick_is_still_seen(
    plugin_dir: Path, record: Path
) -> None:
    # Rewrite in place (same inode, same size) and put mtime back: only ctime or the
    # content can tell, as with an edit landing in the same coarse timestamp tick.
    path = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)
    before = os.stat(path)

    async with watching(catalog):
        with open(path, "r+") as out:
            out.write(versioned("versioned", 2, record))
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        after = os.stat(path)
        assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
            before.st_ino,
            before.st_size,
            before.st_mtime_ns,
        )
        await eventually(
            lambda: _version_of(catalog.plugins["versioned"]) == 2, "version 2 to be loaded"
        )
        assert await version_called(catalog, "versioned", record) == 2


def _version_of(plugin: LoadedPlugin) -> int:
    """The ``VERSION`` of the module the plugin object was loaded from."""
    return int(type(plugin.obj).execute.__globals__["VERSION"])


@pytest.mark.anyio
async def test_a_removed_file_removes_the_plugin_and_it_can_come_back(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)

    async with watching(catalog):
        path.unlink()
        await eventually(lambda: "versioned" not in catalog.plugins, "versioned to be removed")
        assert any(
            f"plugin versioned removed ({path} is gone)" in m
            for m in messages(log_records, "WARNING")
        )
        write(path, versioned("versioned", 2, record))
        await eventually(lambda: "versioned" in catalog.plugins, "versioned to come back")
        assert await version_called(catalog, "versioned", record) == 2


@pytest.mark.anyio
async def test_a_broken_edit_keeps_the_previous_version_in_service(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)
    first = catalog.plugins["versioned"]

    async with watching(catalog):
        write(path, "def broken(:\n")

        def warned() -> list[str]:
            return [
                m
                for m in messages(log_records, "WARNING")
                if m.startswith(f"{path} failed to load: syntax error at line 1")
            ]

        [warning] = await eventually(warned, "a warning that versioned.py failed to load")
        assert warning.endswith("the previous version of plugin versioned stays in service")
        assert catalog.plugins["versioned"] is first
        assert await version_called(catalog, "versioned", record) == 1
        problem = catalog.problem_for("versioned")
        assert problem is not None and problem.path == path

        write(path, versioned("versioned", 3, record))  # fixed
        await eventually(lambda: catalog.plugins["versioned"] is not first, "the fixed version")
        assert await version_called(catalog, "versioned", record) == 3
        assert catalog.problem_for("versioned") is None


@pytest.mark.anyio
async def test_a_failing_validate_config_on_reload_keeps_the_previous_version(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    path = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)
    first = catalog.plugins["versioned"]
    refusing = versioned("versioned", 2, record).replace(
        "class Versioned:\n",
        "class Versioned:\n    def validate_config(self):\n        raise ValueError('no URL')\n\n",
    )

    async with watching(catalog):
        write(path, refusing)
        await eventually(
            lambda: any("validate_config() refused" in m for m in messages(log_records, "WARNING")),
            "a warning that validate_config refused",
        )
        assert catalog.plugins["versioned"] is first


@pytest.mark.anyio
async def test_a_new_file_others_can_write_is_refused_until_fixed(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    catalog = discover_plugins(plugin_dir)

    async with watching(catalog):
        path = plugin_dir / "loose.py"
        path.write_text(versioned("loose", 1, record))
        path.chmod(0o666)
        await eventually(
            lambda: any(
                m.startswith(f"plugin file {path} not loaded: refused: the file is group- and")
                for m in messages(log_records, "WARNING")
            ),
            "a warning that loose.py was refused",
        )
        assert "loose" not in catalog.plugins
        path.chmod(0o644)  # a mode change alone is noticed
        await eventually(lambda: "loose" in catalog.plugins, "loose to load once fixed")


@pytest.mark.anyio
async def test_removing_a_replacement_brings_the_bundled_plugin_back(
    plugin_dir: Path, record: Path
) -> None:
    path = write(plugin_dir / "log_action.py", versioned("log_action", 1, record))
    catalog = discover_plugins(plugin_dir)
    assert not catalog.plugins["log_action"].bundled

    async with watching(catalog):
        path.unlink()
        await eventually(
            lambda: "log_action" in catalog.plugins and catalog.plugins["log_action"].bundled,
            "the bundled log_action to be used again",
        )


@pytest.mark.anyio
async def test_a_broken_replacement_dropped_in_leaves_the_bundled_plugin_in_service(
    plugin_dir: Path, log_records: list[dict[str, Any]]
) -> None:
    # At start-up a broken replacement hides the bundled plugin (so naming it is fatal);
    # while running, the bundled plugin in service is "the previous version" and stays.
    catalog = discover_plugins(plugin_dir)
    bundled = catalog.plugins["log_action"]

    async with watching(catalog):
        path = write(plugin_dir / "log_action.py", "def broken(:\n")
        await eventually(
            lambda: any(
                m.startswith(f"plugin file {path} not loaded: syntax error")
                for m in messages(log_records, "WARNING")
            ),
            "a warning that log_action.py failed to load",
        )
        assert catalog.plugins["log_action"] is bundled


@pytest.mark.anyio
async def test_a_new_file_giving_the_name_of_a_plugin_in_use_is_refused_alone(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    first = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)
    in_use = catalog.plugins["versioned"]

    async with watching(catalog):
        copy = write(plugin_dir / "copy.py", versioned("versioned", 2, record))
        await eventually(
            lambda: (
                (problem := catalog.problem_for("versioned")) is not None and problem.path == copy
            ),
            "copy.py to be refused",
        )
        problem = catalog.problem_for("versioned")
        assert problem is not None
        assert f"is already given by {first}, which stays in service" in problem.reason
        assert f"plugin file {copy} not used: {problem.reason}" in messages(log_records, "WARNING")
        assert catalog.plugins["versioned"] is in_use
        assert await version_called(catalog, "versioned", record) == 1


@pytest.mark.anyio
async def test_a_configmap_update_swapping_the_data_symlink_is_picked_up(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    """kubelet's atomic writer: new timestamped dir, ``..data_tmp`` renamed over ``..data``,
    then old user-visible symlinks and the old timestamped dir are removed."""
    old = plugin_dir / "..2024_01_01_10_00_00.111111111"
    old.mkdir(mode=0o755)
    write(old / "versioned.py", versioned("versioned", 1, record))
    write(old / "dropped.py", versioned("dropped", 1, record))
    (plugin_dir / "..data").symlink_to(old.name)
    for name in ("versioned.py", "dropped.py"):
        (plugin_dir / name).symlink_to(f"..data/{name}")
    catalog = discover_plugins(plugin_dir)
    assert {"versioned", "dropped"} <= set(catalog.plugins)
    first = catalog.plugins["versioned"]

    async with watching(catalog):
        new = plugin_dir / "..2024_02_01_10_00_00.222222222"
        new.mkdir(mode=0o755)
        write(new / "versioned.py", versioned("versioned", 2, record))  # same size as v1
        (plugin_dir / "..data_tmp").symlink_to(new.name)
        os.rename(plugin_dir / "..data_tmp", plugin_dir / "..data")
        (plugin_dir / "dropped.py").unlink()  # no longer in the ConfigMap
        for leftover in old.iterdir():
            leftover.unlink()
        old.rmdir()

        await eventually(lambda: catalog.plugins["versioned"] is not first, "the new version")
        assert await version_called(catalog, "versioned", record) == 2
        await eventually(lambda: "dropped" not in catalog.plugins, "dropped to be removed")
    assert not [m for m in messages(log_records, "WARNING") if "versioned" in m]


@pytest.mark.anyio
async def test_a_caller_never_sees_a_half_loaded_plugin_while_the_file_is_rewritten(
    plugin_dir: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    """The file is rewritten in place (truncate, then two writes) hundreds of times while a
    caller calls the plugin in a loop: each call succeeds, with a complete version, and the
    versions only ever go up."""
    rewrites = 300
    path = write(plugin_dir / "versioned.py", versioned("versioned", 0, record, padding=200))
    catalog = discover_plugins(plugin_dir)
    errors: list[BaseException] = []
    calls = 0
    done = threading.Event()

    def rewrite_many_times() -> None:
        for version in range(1, rewrites + 1):
            text = versioned("versioned", version, record, padding=200)
            half = len(text) // 2
            with open(path, "w") as out:  # truncates: a reader can see a partial file
                out.write(text[:half])
                out.flush()
                time.sleep(0.001)  # widen the window a reader sees half a file in
                out.write(text[half:])
            time.sleep(0.002)  # pacing, so the watcher gets to load many versions
        done.set()

    async def call_in_a_loop() -> None:
        nonlocal calls
        while not done.is_set():
            try:
                await call(catalog, "versioned")
            except PluginFailure as exc:  # would mean a half-loaded module was called
                errors.append(exc)
            calls += 1
            await anyio.sleep(0)

    async with watching(catalog, interval=0.01), anyio.create_task_group() as group:
        group.start_soon(call_in_a_loop)
        await anyio.to_thread.run_sync(rewrite_many_times)

    assert errors == []  # not even a PluginFailure: the old version stays until a good one
    seen = recorded(record)
    assert len(seen) == calls > 0
    assert seen == sorted(seen), "a call went to an older version than an earlier call"
    assert len(set(seen)) >= 3, f"too few reloads during the rewrites: {sorted(set(seen))}"
    async with watching(catalog, interval=0.01):
        await eventually(
            lambda: version_called(catalog, "versioned", record),
            "a call to succeed",
        )
        await eventually(
            lambda: _version_of(catalog.plugins["versioned"]) == rewrites,
            lambda: (
                f"the last version ({rewrites}) to be loaded; have "
                f"{_version_of(catalog.plugins['versioned'])}"
            ),
        )
    assert await version_called(catalog, "versioned", record) == rewrites
    assert not [m for m in messages(log_records, "ERROR")]


@pytest.mark.anyio
async def test_an_unreadable_plugin_dir_keeps_the_plugins_until_it_is_back(
    tmp_path: Path, record: Path, log_records: list[dict[str, Any]]
) -> None:
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(mode=0o755)
    write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir)
    moved = tmp_path / "moved-away"

    async with watching(catalog):
        plugin_dir.rename(moved)
        await eventually(
            lambda: any(
                "cannot read PLUGIN_DIR (does not exist ([Errno 2]" in m
                for m in messages(log_records, "WARNING")
            ),
            "a warning that PLUGIN_DIR cannot be read",
        )
        assert "versioned" in catalog.plugins
        moved.rename(plugin_dir)
        await eventually(
            lambda: "PLUGIN_DIR can be read again" in messages(log_records, "INFO"),
            "PLUGIN_DIR to be read again",
        )
        assert await version_called(catalog, "versioned", record) == 1


@pytest.mark.anyio
async def test_a_catalog_without_plugin_dir_has_nothing_to_watch() -> None:
    catalog = discover_plugins(None)

    with anyio.fail_after(5):
        await catalog.watch(INTERVAL)  # returns at once: bundled plugins never change


def hanging(name: str, started: Path, release: Path) -> str:
    """A plugin whose import says it started, then hangs until ``release`` exists."""
    return textwrap.dedent(
        f"""
        import os
        import time

        open({str(started)!r}, "w").close()
        while not os.path.exists({str(release)!r}):
            time.sleep(0.02)


        class Late:
            name = {name!r}

            async def execute(self, metric_name, value, threshold, duration):
                pass


        Plugin = Late()
        """
    )


@pytest.mark.anyio
async def test_a_file_whose_import_hangs_holds_up_no_other_file(
    tmp_path: Path, plugin_dir: Path, record: Path
) -> None:
    """A new file hangs at import (within PLUGIN_TIMEOUT, 30 s here): a fix written to the
    plugin in use meanwhile is in service within a few looks, not when the hanging load
    gives up; the hanging file becomes a plugin once its import ends."""
    path = write(plugin_dir / "versioned.py", versioned("versioned", 1, record))
    catalog = discover_plugins(plugin_dir, load_timeout=30.0)
    started, release = tmp_path / "started", tmp_path / "release"
    try:
        async with watching(catalog):
            write(plugin_dir / "late.py", hanging("late", started, release))
            await eventually(started.exists, "the hanging file's import to start")
            write(path, versioned("versioned", 2, record))
            await eventually(
                lambda: _version_of(catalog.plugins["versioned"]) == 2,
                "the fix to be in service while late.py hangs",
                timeout=5.0,
            )
            assert "late" not in catalog.plugins
            release.touch()
            await eventually(lambda: "late" in catalog.plugins, "late.py, loaded at last")
    finally:
        release.touch()
    assert await version_called(catalog, "versioned", record) == 2
