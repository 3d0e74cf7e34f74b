"""Plain-``def`` calls wait their turn for a plugin thread outside their timeout, and a call
given up at its timeout while its code runs on is handed back to be waited for
(``Dispatched.late``): it ends as done, failed, or declared lost."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _events import make_event
from loguru import logger

from metric_reader._actions import (
    PLUGIN_THREADS,
    LoadedPlugin,
    PluginCatalog,
    PluginFailure,
    _threads,
    dispatch,
    load_plugin_file,
    queued_calls,
)

SLOW = """
    import threading, time

    class Slow:
        name = "slow"
        seconds = 0.4
        release = threading.Event()
        ended = []

        def execute(self, m, v, t, d):
            if self.seconds is None:
                self.release.wait(30)
            else:
                time.sleep(self.seconds)
            self.ended.append(time.monotonic())
            if getattr(self, "error", None) is not None:
                raise self.error

    Plugin = Slow()
"""


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def load(tmp_path: Path) -> LoadedPlugin:
    path = tmp_path / "slow.py"
    path.write_text(textwrap.dedent(SLOW).lstrip("\n"))
    loaded = load_plugin_file(path)
    assert isinstance(loaded, LoadedPlugin), str(loaded)
    return loaded


@pytest.mark.anyio
async def test_the_wait_for_a_plugin_thread_is_not_part_of_the_timeout(tmp_path: Path) -> None:
    """More calls than threads, each 0.4 s against a 0.7 s timeout: the second wave waits
    0.4 s for a thread, then runs 0.4 s, and none of them times out."""
    plugin = load(tmp_path)
    calls = PLUGIN_THREADS + 8
    failures: list[BaseException] = []
    queued: list[int] = []

    async def one() -> None:
        try:
            await plugin.call("execute", make_event(), timeout=0.7)
        except PluginFailure as exc:
            failures.append(exc)

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(calls):
            group.start_soon(one)
        await anyio.sleep(0.1)
        queued.append(queued_calls())

    assert failures == []
    assert len(plugin.obj.ended) == calls  # type: ignore[attr-defined]
    assert queued == [8]
    assert queued_calls() == 0
    assert time.monotonic() - started >= 0.8  # two waves


@pytest.mark.anyio
async def test_a_full_queue_refuses_the_call_without_starting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_threads, "PLUGIN_THREADS", 1)
    monkeypatch.setattr(_threads, "QUEUE_LIMIT", 1)
    plugin = load(tmp_path)
    plugin.obj.seconds = None  # type: ignore[attr-defined]
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(plugin.call, "execute", make_event(), 5)  # runs
            group.start_soon(plugin.call, "execute", make_event(), 5)  # waits
            with anyio.fail_after(5):
                while queued_calls() < 1:
                    await anyio.sleep(0.01)
            with pytest.raises(PluginFailure) as caught:
                await plugin.call("execute", make_event(), 5)
            assert str(caught.value) == (
                "plugin 'slow' execute not started: the queue for a plugin thread is full "
                "(1 calls wait)"
            )
            plugin.obj.release.set()  # type: ignore[attr-defined]
    finally:
        plugin.obj.release.set()  # type: ignore[attr-defined]
    assert len(plugin.obj.ended) == 2  # type: ignore[attr-defined]


async def _dispatch(plugin: LoadedPlugin, timeout: float) -> Any:
    return await dispatch(
        PluginCatalog({plugin.name: plugin}, []),
        plugin.name,
        make_event(),
        logger.bind(rule="queue"),
        dry_run=False,
        timeout=timeout,
    )


@pytest.mark.anyio
@pytest.mark.parametrize("raises", [False, True], ids=["returns", "raises"])
async def test_a_call_timed_out_while_running_is_waited_for_until_it_ends(
    tmp_path: Path, raises: bool, log_records: list[dict[str, Any]]
) -> None:
    plugin = load(tmp_path)
    plugin.obj.seconds = 0.5  # type: ignore[attr-defined]
    if raises:
        plugin.obj.error = RuntimeError("too late")  # type: ignore[attr-defined]

    outcome = await _dispatch(plugin, timeout=0.4)  # ends 0.1 s after, lost at 0.4 s after

    assert (outcome.ok, outcome.result) == (False, "timeout")
    assert outcome.late is not None
    assert plugin.obj.ended == []  # type: ignore[attr-defined]
    done = await outcome.late.ended()
    assert plugin.obj.ended  # type: ignore[attr-defined]  # it waited for the end
    assert done is not raises
    [message] = [r["message"] for r in log_records if "after its timeout" in r["message"]]
    if raises:
        assert message.startswith("execute failed ")
        assert message.endswith(" after its timeout: RuntimeError: too late")
    else:
        assert message.startswith("execute returned ")
        assert message.endswith(" after its timeout: done, not run again")


@pytest.mark.anyio
async def test_a_call_still_running_a_timeout_after_its_timeout_is_declared_lost(
    tmp_path: Path, log_records: list[dict[str, Any]]
) -> None:
    plugin = load(tmp_path)
    plugin.obj.seconds = None  # type: ignore[attr-defined]
    try:
        started = time.monotonic()
        outcome = await _dispatch(plugin, timeout=0.2)
        assert outcome.late is not None
        assert await outcome.late.ended() is False
        assert time.monotonic() - started >= 0.4 - 0.01
        [lost] = [r["message"] for r in log_records if "declared lost:" in r["message"]]
        assert lost == (
            "execute declared lost: still running 200ms after its timeout; a retry may run "
            "while it does"
        )
    finally:
        plugin.obj.release.set()  # type: ignore[attr-defined]
    with anyio.fail_after(5):  # its end is still told
        while not any("(declared lost) returned" in r["message"] for r in log_records):
            await anyio.sleep(0.01)


@pytest.mark.anyio
async def test_a_call_that_ends_in_time_has_nothing_late(tmp_path: Path) -> None:
    plugin = load(tmp_path)
    plugin.obj.seconds = 0.0  # type: ignore[attr-defined]

    outcome = await _dispatch(plugin, timeout=5)

    assert (outcome.ok, outcome.result, outcome.late) == (True, "success", None)
