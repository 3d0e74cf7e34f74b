"""A rule a reload keeps goes on with its "no data" tracker: it stays in "no data" (on
``/api/status`` and ``metric_reader_rule_no_data``) with its count of empty reads, and the
warning is not logged again; a rule the reload changed starts afresh.

A real service, in process, reading a real page on loopback, reloaded by ``reload()`` (what
SIGHUP and ``POST /-/reload`` call) after its configuration file changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
from loguru import logger

from metric_reader._actions import discover_plugins
from metric_reader._config import Settings, load_settings
from metric_reader._service import Service

RULES = """\
scrape_url = "{url}"
polling_interval = "1s"

[[rules]]
name = "quiet"
metric_name = "missing_queue"
threshold = ">50"

[[rules]]
name = "loud"
metric_name = "slow_queue"
threshold = "{threshold}"
"""


def _no_data(service: Service, rule: str) -> Any:
    [document] = [one for one in service.status()["rules"] if one["name"] == rule]
    return document["no_data"]


def test_a_kept_rule_keeps_its_no_data_tracker_over_a_reload(
    page_server: tuple[str, list[float]], tmp_path: Path
) -> None:
    url, _ = page_server
    config = tmp_path / "rules.toml"
    config.write_text(RULES.format(url=url, threshold=">50"))

    def read() -> Settings:
        return load_settings({"CONFIG_FILE": str(config)})

    catalog = discover_plugins(None)
    service = Service(read(), catalog, reloader=lambda: (read(), catalog))
    warnings: list[str] = []
    sink = logger.add(
        lambda message: warnings.append(message.record["message"]),
        level="WARNING",
        filter=lambda record: record["extra"].get("rule") == "quiet",
    )

    async def poll(client: httpx.AsyncClient, calls: Any) -> None:
        for fetch in service.fetches:
            assert await service.poll_once(client, fetch, 5.0, calls) is None

    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            await poll(client, calls)
            await poll(client, calls)
            before = _no_data(service, "quiet")
            assert (before["active"], before["empty_polls"]) == (True, 2)
            loud = service.runtimes.get("loud")
            assert loud is not None and loud.no_data.empty_polls == 0

            config.write_text(RULES.format(url=url, threshold=">60"))  # "loud" changes
            assert await service.reload() is None
            assert _no_data(service, "quiet") == before  # at once, before any read
            assert service.rules_without_data()["quiet"]  # metric_reader_rule_no_data 1
            changed = service.runtimes.get("loud")
            assert changed is not None and changed.no_data is not loud.no_data  # afresh

            await poll(client, calls)
            after = _no_data(service, "quiet")
            assert (after["active"], after["empty_polls"]) == (True, 3)
            assert after["since"] == before["since"]
            calls.cancel_scope.cancel()

    try:
        anyio.run(main)
    finally:
        logger.remove(sink)
    assert [w for w in warnings if w.startswith("no data")] == [
        "no data: the first read returns no series; check the metric name, label filters or query"
    ]  # once: a kept rule's "no data" goes on, it does not begin again
