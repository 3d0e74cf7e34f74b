"""One process, 1,000 rules: 900 over five scrape targets, 100 on a real Prometheus.

Every rule watches its own metric; every seventh is breached. After full polling cycles
exactly the breached rules have fired, each once (BACKOFF_DELAY 0s), and no other.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from .conftest import PrometheusStack, RecordingPlugins, ScrapeServer, ServiceFactory

# Timing-sensitive: run on its own after the parallel part of make test (see Makefile).
pytestmark = pytest.mark.serial

TARGETS = 5
SCRAPE_RULES_PER_TARGET = 180
PROMETHEUS_RULES = 100


def breached(index: int) -> bool:
    return index % 7 == 0


def test_a_thousand_rules_fire_exactly_the_breached_ones(
    tmp_path: Path,
    service: ServiceFactory,
    recording_plugin_dir: RecordingPlugins,
    prometheus_stack: PrometheusStack,
) -> None:
    servers = [ScrapeServer() for _ in range(TARGETS)]
    try:
        expected: set[str] = set()
        lines = [
            'threshold = ">50"',
            'action_plugin = "recorder"',
            'polling_interval = "1s"',
            f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"',
        ]
        for t, server in enumerate(servers):
            page = []
            for i in range(SCRAPE_RULES_PER_TARGET):
                metric = f"scale_t{t}_m{i}"
                page.append(f"# TYPE {metric} gauge\n{metric} {100 if breached(i) else 10}")
                lines += [
                    "[[rules]]",
                    f'name = "{metric}"',
                    f'metric_name = "{metric}"',
                    f'scrape_url = "{server.url}"',
                ]
                if breached(i):
                    expected.add(metric)
            server.set_page("\n".join(page) + "\n")
        for i in range(PROMETHEUS_RULES):
            prometheus_stack.push(
                "scale_prom", 100 if breached(i) else 10, {"i": str(i)}, job="scale"
            )
            lines += [
                "[[rules]]",
                f'name = "prom-{i}"',
                'metric_name = "scale_prom"',
                f'label_filters = \'job="scale",i="{i}"\'',
            ]
            if breached(i):
                expected.add(f"prom-{i}")
        prometheus_stack.wait_visible('count(scale_prom{job="scale"})', PROMETHEUS_RULES)
        config = tmp_path / "rules.toml"
        config.write_text("\n".join(lines) + "\n")

        svc = service({"CONFIG_FILE": str(config), "LOG_LEVEL": "info", **recording_plugin_dir.env})

        def fired() -> set[str]:
            return {r["rule"] for r in recording_plugin_dir.records()}

        svc.wait_until(lambda: fired() >= expected, 60, "every breached rule to fire")
        # Three more full cycles of every scrape target: nothing else may fire.
        for server in servers:
            server.wait_requests(3)
        calls = Counter(r["rule"] for r in recording_plugin_dir.records())
        assert set(calls) == expected
        assert set(calls.values()) == {1}, calls.most_common(3)
        assert len(expected) == TARGETS * 26 + 15
        # One fetch per target and interval serves its 180 rules.
        for server in servers:
            assert server.requests < 30, f"{server.url} fetched {server.requests} times"
    finally:
        for server in servers:
            server.close()
