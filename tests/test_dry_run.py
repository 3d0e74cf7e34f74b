"""DRY_RUN=true: everything is evaluated and each action that would run is logged; no call."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from loguru import logger

from metric_reader._config import load_settings
from metric_reader._plugins import discover_plugins
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
            "BACKOFF_DELAY": "300ms",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_DIR": str(plugins),
            "ACTION_PLUGIN": "recording",
            "DRY_RUN": "true",
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="INFO")

    async def main() -> None:
        with anyio.move_on_after(1.2):
            await service.run()

    try:
        anyio.run(main)
    finally:
        logger.remove(sink)
    would = [line for line in lines if line == "DRY_RUN: would call recording.execute"]
    assert len(would) >= 3  # the fire and repeats every 300 ms, as if they had run
    assert not calls.exists()
