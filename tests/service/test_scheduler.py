"""The scheduler keeps its cadence: absolute deadlines, late ticks skipped, plugins aside."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from _virtual_clock import VirtualClockLoop
from loguru import logger

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._service import Service, next_tick
from metric_reader._sources._fetches import Fetch, Fetched
from metric_reader._sources._groups import Group, group_offset


def test_ticks_stay_on_the_grid_for_days() -> None:
    start, interval, index = 1234567.891, 0.1, 0
    for k in range(1, 3_600_000):  # four days of 100 ms ticks, each poll taking 30 ms
        index, skipped = next_tick(start, index, interval, now=start + (k - 1) * interval + 0.03)
        assert skipped == 0
    assert index == 3_599_999
    # Computed from the start, not summed: the last tick is where the grid says it is.
    assert start + index * interval == pytest.approx(start + 359_999.9, abs=1e-6)


def test_a_late_tick_is_skipped_not_queued() -> None:
    assert next_tick(0.0, 10, 1.0, now=10.5) == (11, 0)
    assert next_tick(0.0, 10, 1.0, now=13.2) == (14, 3)  # 11, 12 and 13 were missed
    assert next_tick(0.0, 10, 1.0, now=11.0) == (12, 1)
    assert next_tick(5.0, 0, 0.1, now=5.0 + 0.3) == (4, 3)  # the tick at 5.3 is not after 5.3


BLOCKING_PLUGIN = """
import os
import time

class Blocking:
    name = "blocking"

    def execute(self, metric_name, value, threshold, duration):
        with open(os.environ["BLOCKING_CALLS"], "a") as calls:
            calls.write("call\\n")
        time.sleep(1.5)  # plain def: runs in a worker thread

Plugin = Blocking()
"""


def test_a_blocking_plugin_does_not_delay_polling(
    tmp_path: Path, page_server: tuple[str, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, times = page_server
    calls = tmp_path / "calls"
    monkeypatch.setenv("BLOCKING_CALLS", str(calls))
    (tmp_path / "blocking.py").write_text(BLOCKING_PLUGIN)
    tmp_path.chmod(0o755)
    settings = load_settings(
        {
            "SCRAPE_URL": url,
            "METRIC_NAME": "slow_queue",
            "THRESHOLD": ">50",
            "BACKOFF_DELAY": "100ms",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_DIR": str(tmp_path),
            "ACTION_PLUGIN": "blocking",
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))

    async def main() -> None:
        with anyio.move_on_after(2.0):
            await service.run()

    anyio.run(main)
    # The plugin blocked for most of the run, yet polls went on every 100 ms: about 20. Had
    # polling waited for the plugin, there would be a gap of 1.5 s and about 3 polls. The
    # bounds leave a busy 2-core machine half the rate and up to 1 s of stall.
    assert len(times) >= 10, f"only {len(times)} polls in 2 s"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 1.0, f"polling stalled for {max(gaps):.2f}s"
    # One call in flight at a time: the first blocked 1.5 s, so at most a second started.
    started = len(calls.read_text().splitlines())
    assert 1 <= started <= 2
    # Every call is counted with its outcome; every poll too.
    metric = service.metrics.registry.get_sample_value
    succeeded = metric(
        "metric_reader_plugin_calls_total",
        {"plugin": "blocking", "method": "execute", "result": "success"},
    )
    assert succeeded in (started - 1, started)  # the last one may have been cut off
    [group] = service.groups
    polls = metric("metric_reader_polls_total", {"group": group.name})
    assert polls in (len(times), len(times) + 1)  # the last poll may have been cut off


FAILING_PLUGINS = """
import asyncio

class Raising:
    name = "raising"

    async def execute(self, metric_name, value, threshold, duration):
        raise RuntimeError("the ticket system is down")


class Hanging:
    name = "hanging"

    async def execute(self, metric_name, value, threshold, duration):
        await asyncio.sleep(3600)
"""


@pytest.mark.parametrize(("plugin", "result"), [("raising", "failure"), ("hanging", "timeout")])
def test_failed_calls_are_counted_and_retried_with_exponential_backoff(
    tmp_path: Path, page_server: tuple[str, list[float]], plugin: str, result: str
) -> None:
    url, times = page_server
    (tmp_path / f"{plugin}.py").write_text(
        FAILING_PLUGINS + f"\nPlugin = {plugin.capitalize()}()\n"
    )
    tmp_path.chmod(0o755)
    settings = load_settings(
        {
            "SCRAPE_URL": url,
            "METRIC_NAME": "slow_queue",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_TIMEOUT": "50ms",
            "PLUGIN_DIR": str(tmp_path),
            "ACTION_PLUGIN": plugin,
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))

    async def main() -> None:
        with anyio.move_on_after(2.0):
            await service.run()

    anyio.run(main)
    calls = service.metrics.registry.get_sample_value(
        "metric_reader_plugin_calls_total",
        {"plugin": plugin, "method": "execute", "result": result},
    )
    # Tries at about 0, 0.1, 0.3, 0.7 and 1.5 s (delays 0.1, 0.2, 0.4, 0.8): about 20 polls
    # but only four or five calls.
    assert len(times) >= 15
    assert calls is not None and 3 <= calls <= 6, calls


# --- on a virtual clock: actions land on their ticks -------------------------------------------


RECORDING_PLUGIN = """
import os

class Recording:
    name = "recording"

    async def execute(self, metric_name, value, threshold, duration):
        with open(os.environ["RECORDED_CALLS"], "a") as calls:
            calls.write(f"{duration.total_seconds()}\\n")

Plugin = Recording()
"""


def test_a_duration_and_a_backoff_that_are_multiples_of_the_interval_act_on_their_ticks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """10 s at a 2 s interval fires on the poll at 10 s, and a 6 s backoff repeats on the
    polls at 16 s and 22 s, however long each answer took to arrive (here 0.9 s for every
    third poll, 50 ms for the others): rules are evaluated at the poll's tick."""
    calls = tmp_path / "calls"
    monkeypatch.setenv("RECORDED_CALLS", str(calls))
    (tmp_path / "recording.py").write_text(RECORDING_PLUGIN)
    tmp_path.chmod(0o755)
    settings = load_settings(
        {
            "SCRAPE_URL": "http://127.0.0.1:9/metrics",
            "METRIC_NAME": "slow_queue",
            "THRESHOLD": ">50",
            "THRESHOLD_DURATION": "10s",
            "BACKOFF_DELAY": "6s",
            "POLLING_INTERVAL": "2s",
            "PLUGIN_DIR": str(tmp_path),
            "ACTION_PLUGIN": "recording",
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))
    [rule] = service.rules
    answered: list[float] = []

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        await anyio.sleep(0.9 if len(answered) % 3 == 0 else 0.05)
        answered.append(anyio.current_time())
        return Fetched({rule.name: [Sample((("queue", "mail"),), 95.0)]})

    group = Group("virtual", 2.0, [Fetch("virtual", 2.0, read, [rule.config])])
    group.offset = 0.0  # ticks at 0, 2, 4, ...: the grid of a group whose hash lands on 0
    service.groups = [group]

    async def main() -> None:
        with anyio.move_on_after(23.5):
            await service.run()

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    assert answered[:3] == pytest.approx([0.9, 2.05, 4.05])  # the virtual clock is exact
    assert calls.read_text().split() == ["10.0", "16.0", "22.0"]


def test_groups_read_within_a_tenth_of_a_second_then_on_grids_offset_by_their_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three groups with the same 10 s interval: each reads first at its offset, under 0.1 s
    after the start (so the service is ready at once), then on its own grid,
    ``offset + k * 10 s``; the offsets come from the groups' names, so the groups do not
    wake together, and are the same at every start."""
    settings = load_settings(
        {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">1"}
    )
    service = Service(settings, discover_plugins(None))
    [rule] = service.rules
    reads: dict[str, list[float]] = {}

    def reader(name: str) -> Any:
        async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
            reads.setdefault(name, []).append(anyio.current_time())
            return Fetched({rule.name: []})

        return read

    names = [
        "scrape http://a:9100/metrics every 10s",
        "scrape http://b:9100/metrics every 10s",
        "prometheus http://prom:9090 every 10s",
    ]
    service.groups = [Group(n, 10.0, [Fetch(n, 10.0, reader(n), [rule.config])]) for n in names]

    async def main() -> None:
        with anyio.move_on_after(35.0):
            await service.run()

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    offsets = [group_offset(name, 10.0) for name in names]
    assert len({round(o, 4) for o in offsets}) == 3 and all(0 <= o < 0.1 for o in offsets)
    assert offsets == [g.offset for g in service.groups]
    for name, offset in zip(names, offsets, strict=True):
        expected = [offset + 10 * k for k in range(4) if offset + 10 * k < 35]
        assert reads[name] == pytest.approx(expected[: len(reads[name])], abs=1e-6)
        assert len(reads[name]) == len([t for t in expected if t < 35])


def test_a_tick_that_overruns_skips_the_next_ones_and_counts_them_as_missed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At a 1 s interval with an offset of 0.1 s: the first read (at 0.1 s) takes 0.3 s, no
    miss; a read at 3.1 s that takes 2.5 s overruns
    the ticks at 4.1 s and 5.1 s: those two evaluations of the rule are missed, counted, and
    said in one warning; the next tick is at 6.1 s, on the grid."""
    settings = load_settings(
        {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "m", "THRESHOLD": ">1"}
    )
    service = Service(settings, discover_plugins(None))
    [rule] = service.rules
    reads: list[float] = []

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        reads.append(anyio.current_time())
        await anyio.sleep({1: 0.3, 4: 2.5}.get(len(reads), 0.01))
        return Fetched({rule.name: []})

    group = Group("virtual", 1.0, [Fetch("virtual", 1.0, read, [rule.config])])
    group.offset = 0.1
    service.groups = [group]
    warnings: list[str] = []
    handler = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING")

    async def main() -> None:
        with anyio.move_on_after(7.5):
            await service.run()

    try:
        anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    finally:
        logger.remove(handler)
    assert reads == pytest.approx([0.1, 1.1, 2.1, 3.1, 6.1, 7.1], abs=1e-6)
    missed = service.metrics.registry.get_sample_value(
        "metric_reader_evaluations_missed_total", {"group": "virtual"}
    )
    assert missed == 2
    assert [w for w in warnings if "missed" in w] == [
        "2 evaluations missed in the last minute: an evaluation took longer than the 1s "
        "interval, so 2 ticks were skipped"
    ]


ROUTED_PLUGINS = """
import os

class Steady:
    name = "steady"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        with open(os.environ["ROUTED_CALLS"], "a") as calls:
            calls.write("steady\\n")


class Flaky:
    name = "flaky"
    tries = 0

    async def execute(self, metric_name, value, threshold, duration, event=None):
        Flaky.tries += 1
        with open(os.environ["ROUTED_CALLS"], "a") as calls:
            calls.write(f"flaky {Flaky.tries}\\n")
        if Flaky.tries < 3:
            raise RuntimeError("the pager is down")
"""


def test_an_alert_two_routes_take_reaches_each_plugin_once_whatever_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two routes take an alert (``continue``): ``steady`` succeeds at once, ``flaky`` fails
    twice. The retries call ``flaky`` again, never ``steady``: each plugin gets the fire once
    it succeeded, and only once."""
    calls = tmp_path / "calls"
    monkeypatch.setenv("ROUTED_CALLS", str(calls))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "steady.py").write_text(ROUTED_PLUGINS + "\nPlugin = Steady()\n")
    (plugins / "flaky.py").write_text(ROUTED_PLUGINS + "\nPlugin = Flaky()\n")
    plugins.chmod(0o755)
    (tmp_path / "alerts.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n"
        "        labels: {severity: page}\n"
    )
    config = tmp_path / "rules.toml"
    config.write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\npolling_interval = "1s"\n'
        f'plugin_dir = "{plugins}"\nrule_files = ["alerts.yml"]\n'
        '[[routes]]\nmatchers = [\'severity="page"\']\naction_plugin = "steady"\n'
        "continue = true\n"
        '[[routes]]\nmatchers = [\'alertname="Down"\']\naction_plugin = "flaky"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(config)})
    service = Service(settings, discover_plugins(settings.plugin_dir))
    [rule] = service.rules

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        return Fetched({rule.name: [Sample((("job", "api"),), 0.0)]})

    group = Group("virtual", 1.0, [Fetch("virtual", 1.0, read, [rule.config])])
    group.offset = 0.0
    service.groups = [group]

    async def main() -> None:
        with anyio.move_on_after(10.5):
            await service.run()

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    assert calls.read_text().split("\n")[:-1] == ["steady", "flaky 1", "flaky 2", "flaky 3"]
