"""DRY_RUN=true: everything is evaluated and each action that would run is logged; no call."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from loguru import logger

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._service import Service

RECORDING = """
import os

class Recording:
    name = "recording"

    async def execute(self, metric_name, value, threshold, duration):
        with open(os.environ["DRY_RUN_CALLS"], "a") as out:
            out.write("called\\\\n")

Plugin = Recording()
"""


def test_dry_run_logs_every_action_and_calls_no_plugin(
    tmp_path: Path, page_server: tuple[str, list[float]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = page_server
    calls = tmp_path / "calls"
    monkeypatch.setenv("DRY_RUN_CALLS", str(calls))
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "recording.py").write_text(RECORDING)
    settings = load_settings(
        {
            "SCRAPE_URL": url,
            "METRIC_NAME": "slow_queue",
            "THRESHOLD": ">50",
            "BACKOFF_DELAY": "500ms",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_DIR": str(plugins),
            "ACTION_PLUGIN": "recording",
            "DRY_RUN": "true",
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))
    would: list[float] = []  # when each would-be call was logged

    def note(message: Any) -> None:
        if message.record["message"] == "DRY_RUN: would call recording.execute":
            would.append(time.monotonic())

    sink = logger.add(note, level="INFO")

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(service.run)
            with anyio.fail_after(20):  # the fire and three repeats, however busy the machine
                while len(would) < 4:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        logger.remove(sink)
    assert not calls.exists()
    # As often as a real run would call, not more: the backoff apart (polls are 100 ms
    # apart, so repeating at every poll would fail this). The margin is the delay between a
    # decision and its log line on a busy machine.
    gaps = [b - a for a, b in itertools.pairwise(would)]
    assert min(gaps) >= 0.5 - 0.1, f"would-be calls {gaps} apart; the backoff is 500 ms"
