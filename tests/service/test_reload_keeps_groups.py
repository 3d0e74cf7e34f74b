"""A reload restarts only the groups whose rules or settings changed: under a storm of
reloads that change one rule, the groups of the other rules keep their grid, and their
repeats come on time.

On a virtual clock; the pages are read by a fake ``read_page`` that takes 0.5 s (virtual)
to answer, longer than the 0.3 s between two reloads of the storm."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import anyio
import httpx
import pytest
from _virtual_clock import VirtualClockLoop

from metric_reader._actions import discover_plugins
from metric_reader._config import Settings, load_settings
from metric_reader._service import Service
from metric_reader._sources._exposition import Series, read_series
from metric_reader._sources._groups import group_offset

READ_SECONDS = 0.5
STORM_EVERY = 0.3

RECORDING_PLUGIN = """
import os

class Recording:
    name = "recording"

    async def execute(self, metric_name, value, threshold, duration):
        with open(os.environ["RECORDED_CALLS"], "a") as calls:
            calls.write(f"{duration.total_seconds()}\\n")

Plugin = Recording()
"""


def _settings(tmp_path: Path, churning_threshold: str) -> Settings:
    config = tmp_path / f"rules-{churning_threshold[1:]}.toml"
    config.write_text(
        f'polling_interval = "1s"\nplugin_dir = "{tmp_path}"\n'
        '[[rules]]\nname = "steady"\nscrape_url = "http://steady.invalid/metrics"\n'
        'metric_name = "queue_a"\nthreshold = ">50"\nbackoff_delay = "4s"\n'
        'action_plugin = "recording"\n'
        '[[rules]]\nname = "churning"\nscrape_url = "http://churning.invalid/metrics"\n'
        f'metric_name = "queue_b"\nthreshold = "{churning_threshold}"\n'
    )
    return load_settings({"CONFIG_FILE": str(config)})


def test_a_storm_of_reloads_changing_one_rule_leaves_the_other_groups_on_their_grid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    monkeypatch.setenv("RECORDED_CALLS", str(calls))
    (tmp_path / "recording.py").write_text(RECORDING_PLUGIN)
    tmp_path.chmod(0o755)
    reads: dict[str, list[float]] = {}

    async def read_page(
        client: httpx.AsyncClient, url: str, timeout: float, names: Collection[str], limit: int
    ) -> dict[str, Series]:
        reads.setdefault(url, []).append(anyio.current_time())
        await anyio.sleep(READ_SECONDS)
        return read_series(b"queue_a 100\nqueue_b 100\n", names)

    monkeypatch.setattr("metric_reader._sources._scrape_kind.read_page", read_page)
    versions = [_settings(tmp_path, ">500"), _settings(tmp_path, ">600")]
    service = Service(versions[0], discover_plugins(versions[0].plugin_dir))
    storm_ends = 14.0

    async def storm() -> None:
        await anyio.sleep(1.0)
        reload = 0
        while anyio.current_time() < storm_ends:
            reload += 1
            service._apply(versions[reload % 2], service.catalog)
            await anyio.sleep(STORM_EVERY)

    async def main() -> None:
        with anyio.move_on_after(storm_ends):
            async with anyio.create_task_group() as group:
                group.start_soon(service.run)
                group.start_soon(storm)

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    # The steady group read at its offset after the start, then on its grid at every tick,
    # storm or not.
    offset = group_offset("scrape http://steady.invalid/metrics every 1s", 1.0)
    grid = [offset + k for k in range(14) if offset + k < storm_ends]
    assert reads["http://steady.invalid/metrics"] == pytest.approx(grid, abs=1e-6)
    # Its rule repeated every 4 s, on the tick: the grid starts at its first read.
    durations = [float(line) for line in calls.read_text().split()]
    expected = [0.0, 4.0, 8.0, 12.0]
    assert 3 <= len(durations) <= 4  # the last may be cut off by the end of the run
    assert durations == pytest.approx(expected[: len(durations)], abs=1e-6)
    # The churning group did restart at each reload: a read at each, cut short by the next.
    assert len(reads["http://churning.invalid/metrics"]) > 30
