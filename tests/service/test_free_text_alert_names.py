"""An alert whose name is free text (spaces, parentheses, quotes, as Prometheus 2.42 allows)
and an alert given twice in its group with the same labels run in the service as any
other: they fire, show on ``/metrics`` and the status page, and their state survives a
restart through the state file.

The real service, run (``Service.run``) on a virtual clock; its queries are answered here
and the bundled ``log_action`` plugin takes the calls.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import httpx
from _virtual_clock import VirtualClockLoop

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._core import Sample
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched
from metric_reader._surface._collectors import register_service_collectors
from metric_reader._surface._status_page import render_status_page

FREE_TEXT = 'Database backup (nightly) failed: >80% of "prod"'
ALERTS = """\
groups:
  - name: backups
    rules:
      - alert: 'Database backup (nightly) failed: >80% of "prod"'
        expr: backup_failed > 0
      - alert: Twice
        expr: twice_a > 0
        labels: {severity: page}
      - alert: Twice
        expr: twice_b > 0
        labels: {severity: page}
"""
CONFIG = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "10s"
rule_files = ["alerts.yml"]
state_file = "state.json"
action_plugin = "log_action"
backoff_delay = "1h"
"""
DB = (("db", "orders"),)


def _run(tmp_path: Path) -> tuple[Service, str]:
    """Start a service on the files, run it 15 s (virtual), stop it: it and its status page."""
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    service = Service(settings, discover_plugins(None))

    def answer(fetch: Fetch) -> Any:
        async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
            return Fetched({config.name: [Sample(DB, 1.0)] for config in fetch.rules})

        return read

    for fetch in service.fetches:
        fetch.perform = answer(fetch)
    page: list[str] = []

    async def main() -> None:
        with anyio.move_on_after(15.0):
            await service.run()
        page.append(render_status_page(service.status()))
        register_service_collectors(service.metrics.registry, service)  # as /metrics does

    anyio.run(main, backend_options={"loop_factory": VirtualClockLoop})
    return service, page[0]


def _executed(service: Service) -> float:
    value = service.metrics.registry.get_sample_value(
        "metric_reader_plugin_calls_total",
        {"plugin": "log_action", "method": "execute", "result": "success"},
    )
    return value or 0.0


def test_free_text_and_twice_given_alerts_fire_show_and_keep_their_state(
    tmp_path: Path,
) -> None:
    (tmp_path / "alerts.yml").write_text(ALERTS)
    (tmp_path / "rules.toml").write_text(CONFIG)

    first, page = _run(tmp_path)
    names = [rule.name for rule in first.rules]
    assert names == [FREE_TEXT, "backups:Twice-1", "backups:Twice-2"]
    assert _executed(first) == 3  # each fired once
    alerts = sorted(
        sorted(sample.labels.items())
        for metric in first.metrics.registry.collect()
        if metric.name == "ALERTS"
        for sample in metric.samples
    )
    firing = [("alertstate", "firing"), ("db", "orders")]
    twice = [("alertname", "Twice"), *firing, ("severity", "page")]
    # As in Prometheus, both alerts given twice are named after their alert.
    assert alerts == [[("alertname", FREE_TEXT), *firing], twice, twice]
    assert "Database backup (nightly) failed: &gt;80% of &quot;prod&quot;" in page
    state = (tmp_path / "state.json").read_text()
    assert FREE_TEXT in json.dumps(json.loads(state), ensure_ascii=False).replace("\\", "")

    second, _ = _run(tmp_path)
    assert _executed(second) == 0  # the state file kept all three firing
