"""One process, 1,000 rules: 900 over five scrape targets, 100 on a real Prometheus.

Every rule watches its own metric; every seventh is breached. After full polling cycles
exactly the breached rules have fired, each once (BACKOFF_DELAY 0s), and no other.
"""

from __future__ import annotations

import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from .conftest import (
    PrometheusStack,
    RecordingPlugins,
    ScrapeServer,
    ServiceFactory,
    free_port,
)

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


SELECTOR_RULES = 1_000


def _metric_values(url: str) -> dict[str, float]:
    """Each ``metric_reader_evaluations*_total`` sample of the service's /metrics, summed
    over its groups."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for line in text.splitlines():
        name = line.split("{", 1)[0]
        if name in ("metric_reader_evaluations_total", "metric_reader_evaluations_missed_total"):
            totals[name] = totals.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return totals


def test_a_thousand_selector_rules_on_one_prometheus_are_evaluated_on_every_tick(
    tmp_path: Path,
    service: ServiceFactory,
    recording_plugin_dir: RecordingPlugins,
    prometheus_stack: PrometheusStack,
) -> None:
    """1,000 selector rules at 1 s on one Prometheus (two series each, every 100th metric
    breached): a few batched queries serve them all, every rule is evaluated at every tick
    (evaluations done grow by 1,000 a tick, none missed), and every breached rule fires."""
    job = "scale_selectors"
    lines = [
        'threshold = ">50"',
        'threshold_duration = "2s"',
        'action_plugin = "recorder"',
        'polling_interval = "1s"',
        f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"',
    ]
    expected = set()
    series = []
    for i in range(SELECTOR_RULES):
        value = 100 if i % 100 == 7 else 10
        series += [(f"sel_metric_{i}", {"shard": shard}, value) for shard in ("a", "b")]
        lines += [
            "[[rules]]",
            f'name = "sel-{i}"',
            f'metric_name = "sel_metric_{i}"',
            f"label_filters = 'job=\"{job}\"'",
        ]
        if value > 50:
            expected.add(f"sel-{i}")
    prometheus_stack.push_many(job, series)
    prometheus_stack.wait_visible(
        f'count({{job="{job}",__name__=~"sel_metric_.*"}})', 2 * SELECTOR_RULES
    )
    config = tmp_path / "rules.toml"
    config.write_text("\n".join(lines) + "\n")
    port = free_port()
    svc = service(
        {
            "CONFIG_FILE": str(config),
            "LOG_LEVEL": "info",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            **recording_plugin_dir.env,
        }
    )
    metrics = f"http://127.0.0.1:{port}/metrics"
    svc.wait_until(lambda: "4 queries serve 1,000 rules" in svc.stderr(), 30, "the batching line")
    svc.wait_until(
        lambda: _metric_values(metrics).get("metric_reader_evaluations_total", 0) >= 2_000,
        30,
        "two full ticks",
    )
    before = _metric_values(metrics)
    svc.wait_until(
        lambda: {r["rule"] for r in recording_plugin_dir.records()} >= expected,
        30,
        "every breached rule to fire",
    )
    svc.wait_until(
        lambda: (
            _metric_values(metrics)["metric_reader_evaluations_total"]
            >= before["metric_reader_evaluations_total"] + 5_000
        ),
        30,
        "five more ticks",
    )
    after = _metric_values(metrics)
    assert after["metric_reader_evaluations_total"] % SELECTOR_RULES == 0  # whole ticks only
    assert after["metric_reader_evaluations_missed_total"] == 0, svc.stderr()[-3000:]
    fired = Counter(r["rule"] for r in recording_plugin_dir.records())
    assert set(fired) == expected
    assert "poll failed" not in svc.stderr() and "missed" not in svc.stderr()
