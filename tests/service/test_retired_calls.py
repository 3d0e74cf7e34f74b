"""A rule a reload removes while its fire is still running in the plugin's thread: once
the fire returns, its resolve goes to that plugin, exactly once; a resolve of a removed
rule that fails is retried, with the usual delays, until it succeeds.

The real service, in process, on a virtual clock; its reads are answered here and it is
reloaded by ``_apply`` (what ``reload()`` runs once the new configuration has been read).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
from _virtual_clock import VirtualClockLoop

from metric_reader._actions import discover_plugins
from metric_reader._config import Settings, load_settings
from metric_reader._core import Sample
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched

PLUGIN = """
import threading


class Blocks:
    name = "blocks"
    release = threading.Event()
    calls = []
    failing_resolves = 0

    def execute(self, metric_name, value, threshold, duration, event=None):
        self.calls.append(("execute", event.rule))
        self.release.wait(30)

    def resolve(self, metric_name, value, threshold, duration, event=None):
        self.calls.append(("resolve", event.rule))
        if self.failing_resolves:
            self.failing_resolves -= 1
            raise RuntimeError("the pager is down")


Plugin = Blocks()
"""
RULE = """
[[rules]]
name = "{name}"
scrape_url = "http://{name}.invalid/metrics"
metric_name = "queue_depth"
threshold = ">{threshold}"
action_plugin = "blocks"
"""


class Harness:
    """A service whose rules all read 95; ``doomed`` breaches (>50), ``steady`` does not
    (>1000) and stays after ``doomed`` is removed."""

    def __init__(self, tmp_path: Path) -> None:
        plugins = tmp_path / "plugins"
        plugins.mkdir()
        (plugins / "blocks.py").write_text(PLUGIN)
        plugins.chmod(0o755)
        self.file = tmp_path / "rules.toml"
        self.header = f'polling_interval = "1s"\nplugin_timeout = "1h"\nplugin_dir = "{plugins}"\n'
        settings = self._write(RULE.format(name="doomed", threshold=50))
        self.service = Service(settings, discover_plugins(settings.plugin_dir))
        self.plugin: Any = self.service.catalog.plugins["blocks"].obj

    def _write(self, rules: str) -> Settings:
        self.file.write_text(self.header + rules + RULE.format(name="steady", threshold=1000))
        return load_settings({"CONFIG_FILE": str(self.file)})

    def remove_doomed(self) -> None:
        self.service._apply(self._write(""), self.service.catalog)

    async def poll(self, client: httpx.AsyncClient, calls: Any) -> None:
        """One read of every fetch, at the current (virtual) time."""

        def answer(fetch: Fetch) -> Any:
            async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
                return Fetched({config.name: [Sample((), 95.0)] for config in fetch.rules})

            return read

        for fetch in self.service.fetches:
            fetch.perform = answer(fetch)
            assert await self.service.poll_once(client, fetch, 5.0, calls) is None

    async def settled(self) -> None:
        """Wait until no plugin call is running."""
        with anyio.fail_after(60):
            while self.service._in_flight:
                await anyio.sleep(0.01)

    def resolves(self) -> list[float]:
        return [at for kind, rule, at in self.timed if kind == "resolve" and rule == "doomed"]

    timed: list[tuple[str, str, float]]


def _scenario(tmp_path: Path, failing_resolves: int, polls: int) -> Harness:
    """``doomed`` fires at 0 and its call blocks; a reload removes it at 2; the call
    returns (successfully) at 4.5; then the service polls once a second."""
    harness = Harness(tmp_path)
    plugin = harness.plugin
    plugin.failing_resolves = failing_resolves
    harness.timed = []

    async def main() -> None:
        start = anyio.current_time()

        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            harness.service.runner.calls = calls
            await harness.poll(client, calls)  # fires; the call blocks in its thread
            with anyio.fail_after(60):
                while not plugin.calls:
                    await anyio.sleep(0.01)
            await anyio.sleep_until(start + 2.0)
            harness.remove_doomed()
            await harness.poll(client, calls)
            await anyio.sleep_until(start + 3.0)
            await harness.poll(client, calls)
            assert plugin.calls == [("execute", "doomed")]  # no resolve while it runs
            await anyio.sleep_until(start + 4.5)
            plugin.release.set()
            await harness.settled()
            seen = 1
            for tick in range(5, 5 + polls):
                await anyio.sleep_until(start + tick)
                await harness.poll(client, calls)
                await harness.settled()
                for kind, rule in plugin.calls[seen:]:
                    harness.timed.append((kind, rule, float(tick)))
                seen = len(plugin.calls)
            calls.cancel_scope.cancel()

    try:
        anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    finally:
        plugin.release.set()
    return harness


def test_the_resolve_of_a_removed_rule_goes_out_once_its_running_fire_returned(
    tmp_path: Path,
) -> None:
    harness = _scenario(tmp_path, failing_resolves=0, polls=10)
    assert harness.resolves() == [5.0]  # at the first evaluation after the fire returned
    assert [call for call in harness.timed if call[1] == "steady"] == []
    assert harness.service.step.retired == 0


def test_a_failing_resolve_of_a_removed_rule_is_retried_until_it_succeeds(
    tmp_path: Path,
) -> None:
    harness = _scenario(tmp_path, failing_resolves=3, polls=20)
    # Retried one polling interval after each failed try, doubling: 1 s, 2 s, 4 s.
    assert harness.resolves() == [5.0, 6.0, 8.0, 12.0]
    assert harness.service.step.retired == 0
