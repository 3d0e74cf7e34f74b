"""A read that started before a reload and answers after it is not evaluated for rules the
reload changed or removed: what it read was planned for their old definition (a rule kept
under new settings included)."""

from __future__ import annotations

import anyio
import httpx

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched

BASE = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "queue_depth"}


def test_a_read_answering_after_a_reload_leaves_changed_rules_alone() -> None:
    settings = load_settings({**BASE, "THRESHOLD": ">50"})
    service = Service(settings, discover_plugins(None))
    [old_rule] = service.rules
    reloaded = anyio.Event()

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        await reloaded.wait()
        return Fetched({old_rule.name: [Sample((("queue", "mail"),), 95.0)]})

    target = Fetch("slow", 1.0, read, [old_rule.config])

    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            async with anyio.create_task_group() as reading:
                outcome: list[object] = []

                async def poll() -> None:
                    outcome.append(await service.poll_once(client, target, 5.0, calls))

                reading.start_soon(poll)
                await anyio.sleep(0)
                service._apply(load_settings({**BASE, "THRESHOLD": ">90"}), service.catalog)
                reloaded.set()
            assert outcome == [None]

    anyio.run(main)
    [new_rule] = service.rules
    # The threshold changed, the name did not: the rule is kept under its new settings,
    # and a read planned for its old ones is not evaluated for it.
    assert new_rule is old_rule and new_rule.config.base is not None
    assert new_rule.config.base.threshold.text == ">90"
    assert dict(new_rule.series) == {}
