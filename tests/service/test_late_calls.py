"""A plugin call that timed out while its code runs on keeps its series in flight, for its
plugin, until the code has ended: neither a retry of the same rule nor the fire of the rule
a reload made of it runs beside it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import httpx

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._core import Sample
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched

PLUGIN = """
import threading, time


class Blocks:
    name = "blocks"
    release = threading.Event()
    calls = []

    def execute(self, metric_name, value, threshold, duration, event=None):
        call = {"started": time.monotonic(), "key": event.idempotency_key}
        self.calls.append(call)
        if len(self.calls) == 1:
            self.release.wait(30)
        call["ended"] = time.monotonic()


Plugin = Blocks()
"""


def _settings(tmp_path: Path, severity: str) -> Any:
    """An alert of a rule file whose labels hold ``severity``: another severity is another
    alert (a rule of another identity), which a reload makes in place of the old one."""
    (tmp_path / "alerts.yml").write_text(
        "groups:\n  - name: queues\n    rules:\n      - alert: QueueDepth\n"
        f"        expr: queue_depth > 50\n        labels: {{severity: {severity}}}\n"
    )
    (tmp_path / "rules.toml").write_text(
        'prometheus_endpoint = "http://127.0.0.1:9"\nrule_files = ["alerts.yml"]\n'
        f'polling_interval = "50ms"\nplugin_timeout = "300ms"\nplugin_dir = "{tmp_path}"\n'
        'action_plugin = "blocks"\n'
    )
    return load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})


def test_the_rule_a_reload_made_waits_for_the_late_call_of_the_rule_it_replaced(
    tmp_path: Path,
) -> None:
    (tmp_path / "blocks.py").write_text(PLUGIN)
    tmp_path.chmod(0o755)
    settings = _settings(tmp_path, "page")
    service = Service(settings, discover_plugins(settings.plugin_dir))
    plugin: Any = service.catalog.plugins["blocks"].obj
    sample = [Sample((("queue", "mail"),), 95.0)]

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        return Fetched({rule.name: sample for rule in service.rules})

    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            service.runner.calls = calls

            async def poll() -> None:
                fetch = Fetch("page", 0.05, read, [rule.config for rule in service.rules])
                await service.poll_once(client, fetch, 5.0, calls)

            await poll()  # fires: the call blocks, times out at 300 ms and runs on
            with anyio.fail_after(5):
                while (
                    service.metrics.registry.get_sample_value(
                        "metric_reader_plugin_calls_total",
                        {"plugin": "blocks", "method": "execute", "result": "timeout"},
                    )
                    != 1.0
                ):
                    await anyio.sleep(0.01)
            # A reload changes the alert's labels: a new rule of the same name, whose
            # series fires at its first poll (a reload that keeps the identity would keep
            # the rule and its breach, and call nothing).
            service._apply(_settings(tmp_path, "critical"), service.catalog)
            await poll()
            await poll()
            await anyio.sleep(0.1)
            assert len(plugin.calls) == 1  # the new rule's fire waits for the late call
            released = time.monotonic()
            plugin.release.set()
            with anyio.fail_after(5):
                while len(plugin.calls) < 2 or "ended" not in plugin.calls[1]:
                    await anyio.sleep(0.01)
            assert plugin.calls[1]["started"] >= released
            calls.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        plugin.release.set()
    first, second = plugin.calls
    assert second["started"] >= first["ended"]
    assert first["key"] != second["key"]  # another rule's breach: another call
