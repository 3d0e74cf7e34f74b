"""The bundled plugins ``log_action`` and ``file_action``, called as the service calls them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _events import make_event as _make_event
from loguru import logger

from metric_reader import Event
from metric_reader._actions import LoadedPlugin, PluginFailure, discover_plugins


@pytest.fixture
def log_records() -> Iterator[list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    sink = logger.add(lambda message: records.append(message.record), level=0)
    yield records
    logger.remove(sink)


def bundled(name: str) -> LoadedPlugin:
    plugin = discover_plugins(None).plugins[name]
    assert plugin.bundled
    return plugin


def make_event(**changes: Any) -> Event:
    return _make_event(**{"plugin": "log_action", **changes})


# --- log_action ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_log_action_logs_a_readable_line_with_every_field(
    log_records: list[dict[str, Any]],
) -> None:
    await bundled("log_action").call("execute", make_event(), timeout=5)

    [record] = [r for r in log_records if r["message"].startswith("log_action:")]
    assert record["message"] == 'log_action: queue_depth{job="x"} = 95 (>80) for 30s [fire #1]'
    assert record["level"].name == "WARNING"
    assert record["extra"] == {
        "rule": "queue",
        "metric_name": "queue_depth",
        "labels": {"job": "x"},
        "value": 95.0,
        "threshold": ">80",
        "breach_level": "base",
        "kind": "fire",
        "breach_started": "2024-01-02T03:04:05+00:00",
        "duration_seconds": 30.0,
        "fire_count": 0,
        "plugin": "log_action",
        "idempotency_key": "",
    }


@pytest.mark.anyio
async def test_log_action_shows_repeats_escalation_and_odd_label_values(
    log_records: list[dict[str, Any]],
) -> None:
    event = make_event(
        kind="repeat",
        level="hard",
        fire_count=2,
        value=0.25,
        labels={"path": 'a"b\\c', "job": "x"},
        duration=timedelta(seconds=90),
    )

    await bundled("log_action").call("execute", event, timeout=5)

    [record] = [r for r in log_records if r["message"].startswith("log_action:")]
    assert record["message"] == (
        'log_action: queue_depth{job="x",path="a\\"b\\\\c"} = 0.25 (>80) for 1m30s '
        "[repeat #3, hard]"
    )
    assert record["extra"]["breach_level"] == "hard"


@pytest.mark.anyio
async def test_log_action_logs_the_end_of_a_breach_at_info(
    log_records: list[dict[str, Any]],
) -> None:
    plugin = bundled("log_action")
    assert plugin.has_resolve

    await plugin.call("resolve", make_event(kind="resolve", value=12.0), timeout=5)

    [record] = [r for r in log_records if r["message"].startswith("log_action:")]
    assert record["message"] == 'log_action: queue_depth{job="x"} = 12 (>80) for 30s [resolve]'
    assert record["level"].name == "INFO"
    assert record["extra"]["kind"] == "resolve"


# --- file_action -----------------------------------------------------------------------

SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@pytest.fixture
def out_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "metric-files" / "nested"  # does not exist yet
    monkeypatch.setenv("FILE_ACTION_DIR", str(directory))
    monkeypatch.delenv("FILE_ACTION_SIZE", raising=False)
    return directory


@pytest.mark.anyio
@pytest.mark.parametrize("size", [0, 5, 3 * 1048576 + 5])
async def test_file_action_creates_a_file_of_exactly_the_configured_size(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    monkeypatch.setenv("FILE_ACTION_SIZE", str(size))

    await bundled("file_action").call("execute", make_event(), timeout=30)

    [created] = list(out_dir.iterdir())
    assert created.stat().st_size == size
    assert re.fullmatch(r"queue_depth_\d{8}T\d{6}\.\d{6}Z\.bin", created.name)


@pytest.mark.anyio
async def test_file_action_writes_one_mebibyte_by_default(out_dir: Path) -> None:
    await bundled("file_action").call("execute", make_event(), timeout=30)

    [created] = list(out_dir.iterdir())
    assert created.stat().st_size == 1048576


@pytest.mark.anyio
async def test_file_action_never_reuses_a_name_for_quick_events(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE_ACTION_SIZE", "1")
    plugin = bundled("file_action")

    for _ in range(20):
        await plugin.call("execute", make_event(), timeout=5)

    assert len(list(out_dir.iterdir())) == 20


NASTY_NAMES = [
    'sum(rate(x{a="/../b"}[5m])) > 0',
    "",
    "温度_°C",
    "x" * 1000,
    "..",
    "../../etc/passwd",
    "a/b",
    "-rf",
    ".hidden",
    "nul\x00byte",
    "back\\slash",
]


@pytest.mark.anyio
@pytest.mark.parametrize("metric_name", NASTY_NAMES)
async def test_file_action_makes_a_safe_file_name_from_any_metric_or_query(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch, metric_name: str
) -> None:
    monkeypatch.setenv("FILE_ACTION_SIZE", "1")

    await bundled("file_action").call("execute", make_event(metric_name=metric_name), timeout=5)

    [created] = list(out_dir.iterdir())
    assert created.parent == out_dir
    assert SAFE_NAME.fullmatch(created.name)
    assert ".." not in created.name
    assert not created.name.startswith((".", "-"))
    assert len(created.name) <= 120


@pytest.mark.anyio
async def test_file_action_keeps_different_queries_apart(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FILE_ACTION_SIZE", "1")
    names = ["a_b", "a/b", "a:b", "x" * 1000, "x" * 999 + "y"]

    for name in names:
        await bundled("file_action").call("execute", make_event(metric_name=name), timeout=5)

    stems = {p.name.rsplit("_", 1)[0] for p in out_dir.iterdir()}
    assert len(stems) == len(names)
    assert "a_b" in stems  # a name that is already safe is kept as it is


@pytest.mark.anyio
async def test_file_action_refuses_a_size_larger_than_the_free_space(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir.mkdir(parents=True)
    too_big = shutil.disk_usage(out_dir).free + 1024**4
    monkeypatch.setenv("FILE_ACTION_SIZE", str(too_big))

    with pytest.raises(PluginFailure) as caught:
        await bundled("file_action").call("execute", make_event(), timeout=5)

    message = str(caught.value)
    assert message.startswith("plugin 'file_action' execute failed: OSError: ")
    assert f"FILE_ACTION_SIZE={too_big} bytes does not fit in {out_dir}" in message
    assert "bytes are free" in message
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("size", ["abc", "-5", "1.5", "1e6", "10MB"])
def test_file_action_refuses_to_load_with_a_size_that_is_not_a_byte_count(
    monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    monkeypatch.setenv("FILE_ACTION_SIZE", size)

    catalog = discover_plugins(None)

    assert "file_action" not in catalog.plugins
    problem = catalog.problem_for("file_action")
    assert problem is not None
    assert problem.path.name == "file_action.py"
    assert f"FILE_ACTION_SIZE={size!r} is not a size" in problem.reason
    assert "whole number of bytes" in problem.reason


@pytest.mark.anyio
async def test_file_action_reads_its_settings_at_each_call(
    out_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = bundled("file_action")
    monkeypatch.setenv("FILE_ACTION_SIZE", "abc")

    with pytest.raises(PluginFailure, match="FILE_ACTION_SIZE='abc' is not a size"):
        await plugin.call("execute", make_event(), timeout=5)

    monkeypatch.setenv("FILE_ACTION_SIZE", "7")
    await plugin.call("execute", make_event(), timeout=5)
    assert [p.stat().st_size for p in out_dir.iterdir()] == [7]


def test_file_action_refuses_a_directory_setting_that_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a_file = tmp_path / "taken"
    a_file.write_text("")
    monkeypatch.setenv("FILE_ACTION_DIR", str(a_file))

    problem = discover_plugins(None).problem_for("file_action")

    assert problem is not None
    assert "exists but is not a directory" in problem.reason


def test_a_command_can_load_only_the_bundled_plugins_it_names() -> None:
    """``check`` loads the bundled plugins the rules name, found by their file's name."""
    every = discover_plugins(None, settings={"file_action": {"dir": "/tmp"}})
    names = sorted(name for name, plugin in every.plugins.items() if plugin.bundled)
    assert {"log_action", "file_action"} <= set(names)
    for name in names:
        only = discover_plugins(
            None, settings={"file_action": {"dir": "/tmp"}}, bundled_only={name}
        )
        assert sorted(only.plugins) == [name]
        assert only.plugins[name].path == every.plugins[name].path
    assert discover_plugins(None, bundled_only=()).plugins == {}
