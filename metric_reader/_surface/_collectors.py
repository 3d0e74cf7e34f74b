"""Metrics computed when ``/metrics`` is scraped, from what the service holds right now.

Counters and histograms that events update live in ``_metrics.ServiceMetrics``; what is a
current state (series by state, readiness, targets, plugins, leadership) is read here at
scrape time through ``ServiceView``, so it can never drift from the state itself. README.md
(``### Metrics``) lists them all; ``tests/test_docs.py`` checks that list against the
registry. ``ProcessCollector`` adds the standard ``process_*`` metrics.

Collection runs on the event loop (the HTTP server calls it there); outside a loop it
still works, on ``time.monotonic``, leaving out what needs the loop's clock.
"""

from __future__ import annotations

import platform
import time
import weakref
from collections.abc import Iterator

import anyio
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from .._core import to_wall
from ._view import ServiceView

_registered: weakref.WeakKeyDictionary[CollectorRegistry, ServiceCollector] = (
    weakref.WeakKeyDictionary()
)


def register_service_collectors(registry: CollectorRegistry, service: ServiceView) -> None:
    """Add the scrape-time metrics of ``service`` (and ``process_*``) to ``registry``.

    Calling it again for the same registry does nothing.
    """
    if registry in _registered:
        return
    collector = ServiceCollector(service)
    registry.register(collector)
    ProcessCollector(registry=registry)
    _registered[registry] = collector


def _now() -> float:
    try:
        return anyio.current_time()
    except RuntimeError:  # no event loop: the service's clock is time.monotonic
        return time.monotonic()


def _alerts(service: ServiceView, now_mono: float, now_wall: float) -> Iterator[Metric]:
    """``ALERTS`` and ``ALERTS_FOR_STATE`` in Prometheus' own shape, so dashboards and
    meta-alerts written for Prometheus' alerts work on metric-reader's."""
    alerts = Metric(
        "ALERTS", "Pending and firing alerts: every breached series level of every rule.", "gauge"
    )
    for_state = Metric(
        "ALERTS_FOR_STATE",
        "Unix time each pending or firing alert became active (its breach started).",
        "gauge",
    )
    for alert in service.alerts():
        since = to_wall(alert.active_at, now_mono, now_wall)
        for_state.add_sample("ALERTS_FOR_STATE", dict(alert.labels), since)
        alerts.add_sample("ALERTS", {**alert.labels, "alertstate": alert.state.value}, 1.0)
    yield alerts
    yield for_state


class ServiceCollector(Collector):
    def __init__(self, service: ServiceView) -> None:
        self.service = service

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        (
            build,
            ready,
            series,
            in_flight,
            target_up,
            last_success,
            plugins_loaded,
            load_failures,
            leader,
            no_data,
        ) = self._families()
        service = self.service

        build.add_metric([__version__, platform.python_version()], 1)
        yield build

        try:
            is_ready = service.ready()
        except RuntimeError:  # outside the event loop: leave it out
            pass
        else:
            ready.add_metric([], 1 if is_ready else 0)
            yield ready

        for summary in service.rule_series():
            for (level_name, state), count in summary.counts.items():
                series.add_metric([summary.rule, level_name, state], count)
            in_flight.add_metric([summary.rule], summary.in_flight)
        yield series
        yield in_flight
        for name, active in service.rules_without_data().items():
            no_data.add_metric([name], 1 if active else 0)
        yield no_data

        now_mono, now_wall = _now(), time.time()
        yield from _alerts(service, now_mono, now_wall)
        for target in service.fetch_statuses():
            ok = target.last_success is not None and target.last_error is None
            target_up.add_metric([target.description], 1 if ok else 0)
            stamp = (
                0.0
                if target.last_success is None
                else to_wall(target.last_success, now_mono, now_wall)
            )
            last_success.add_metric([target.description], stamp)
        yield target_up
        yield last_success

        plugins = service.plugin_counts()
        plugins_loaded.add_metric([], plugins.loaded)
        yield plugins_loaded
        load_failures.add_metric(["error"], plugins.broken)
        load_failures.add_metric(["unconfigured"], plugins.unconfigured)
        yield load_failures

        try:
            acting = service.acting()
        except RuntimeError:  # outside the event loop: leave it out
            return
        leader.add_metric([], 1 if acting else 0)
        yield leader

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "metric_reader_build_info",
                "metric-reader's version and the Python running it; always 1.",
                labels=["version", "python"],
            ),
            GaugeMetricFamily(
                "metric_reader_ready",
                "1 when every target has been read successfully recently, else 0.",
            ),
            GaugeMetricFamily(
                "metric_reader_series",
                "Series of a rule's level (base, hard) in each state (ok, pending, firing).",
                labels=["rule", "level", "state"],
            ),
            GaugeMetricFamily(
                "metric_reader_plugin_calls_in_flight",
                "Plugin calls of a rule running now.",
                labels=["rule"],
            ),
            GaugeMetricFamily(
                "metric_reader_target_up",
                "1 when the last read of the target succeeded, else 0.",
                labels=["target"],
            ),
            GaugeMetricFamily(
                "metric_reader_target_last_success_timestamp_seconds",
                "Unix time of the last successful read of the target; 0 before the first.",
                labels=["target"],
            ),
            GaugeMetricFamily(
                "metric_reader_plugins_loaded",
                "Plugins loaded and usable now, bundled and from PLUGIN_DIR.",
            ),
            GaugeMetricFamily(
                "metric_reader_plugin_load_failures",
                "Plugin files that do not load now, by reason: error (the file is broken or "
                "untrusted) or unconfigured (its validate_config refused).",
                labels=["reason"],
            ),
            GaugeMetricFamily(
                "metric_reader_leader",
                "1 when this replica runs actions (the elected leader, or leader election "
                "is off), 0 while it follows another replica.",
            ),
            GaugeMetricFamily(
                "metric_reader_rule_no_data",
                "1 while the rule's successful reads return no series (no data), else 0.",
                labels=["rule"],
            ),
        )
