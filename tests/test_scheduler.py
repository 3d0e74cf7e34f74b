"""The scheduler keeps its cadence: absolute deadlines, late ticks skipped, plugins aside."""

from __future__ import annotations

import itertools
from pathlib import Path

import anyio
import pytest

from metric_reader._config import load_settings
from metric_reader._plugins import discover_plugins
from metric_reader._service import Service, next_tick


def test_ticks_stay_on_the_grid_for_hours() -> None:
    tick, start, interval = 0.0, 0.0, 0.1
    for k in range(1, 360_000):  # ten hours of 100 ms ticks, each poll taking 30 ms
        tick, skipped = next_tick(tick, interval, now=start + (k - 1) * interval + 0.03)
        assert skipped == 0
    assert tick == pytest.approx(start + 359_999 * interval, abs=1e-6)


def test_a_late_tick_is_skipped_not_queued() -> None:
    assert next_tick(10.0, 1.0, now=10.5) == (11.0, 0)
    assert next_tick(10.0, 1.0, now=13.2) == (14.0, 3)  # 11, 12 and 13 were missed
    assert next_tick(10.0, 1.0, now=11.0) == (12.0, 1)


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
    polls = metric("metric_reader_polls_total", {"target": f"scrape {url}"})
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
