"""Metrics computed when ``/metrics`` is scraped, from what the service holds right now.

Counters and histograms that events update live in ``_metrics.ServiceMetrics``; what is a
current state (series by state, readiness, targets, plugins, leadership) is read here at
scrape time through ``ServiceView``, so it can never drift from the state itself. README.md
(``### Metrics``) lists them all; ``tests/test_docs.py`` checks that list against the
registry. ``ProcessCollector`` adds the standard ``process_*`` metrics.

What is read of the service is read in one go (``ServiceState.read``), on the event loop:
the service changes only there, so that is a consistent moment, and it costs little (the
alerts are listed, not written). Turning it into metric families, the costly part at
tens of thousands of alerts, can then run on any thread (``ServiceCollector.showing``);
``_scrape`` does it on a worker thread. Outside a loop reading still works, on
``time.monotonic``, leaving out what needs the loop's clock.
"""

from __future__ import annotations

import platform
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .. import __version__
from .._core import to_wall, wall_at
from .._engine import ActiveAlert
from ._view import FetchStatus, PluginCounts, RuleSeries, ServiceView

_registered: weakref.WeakKeyDictionary[CollectorRegistry, ServiceCollector] = (
    weakref.WeakKeyDictionary()
)


def register_service_collectors(
    registry: CollectorRegistry, service: ServiceView
) -> ServiceCollector:
    """Add the scrape-time metrics of ``service`` (and ``process_*``) to ``registry``; the
    collector of ``service``'s metrics.

    Calling it again for the same registry adds nothing and returns the same collector.
    """
    if registry in _registered:
        return _registered[registry]
    collector = ServiceCollector(service)
    registry.register(collector)
    ProcessCollector(registry=registry)
    _registered[registry] = collector
    return collector


def _now() -> float:
    try:
        return anyio.current_time()
    except RuntimeError:  # no event loop: the service's clock is time.monotonic
        return time.monotonic()


@dataclass(frozen=True, slots=True)
class ServiceState:
    """What the scrape-time metrics show of the service, read at one moment."""

    ready: bool | None
    """None outside the event loop (it needs the loop's clock): left out."""
    series: tuple[RuleSeries, ...]
    no_data: Mapping[str, bool]
    alerts: tuple[ActiveAlert, ...]
    fetches: tuple[FetchStatus, ...]
    plugins: PluginCounts
    acting: bool | None
    """None outside the event loop: left out."""
    now_mono: float
    now_wall: float

    @classmethod
    def read(cls, service: ServiceView) -> ServiceState:
        """Everything the metrics need of ``service``, copied: no later change shows."""
        try:
            ready: bool | None = service.ready()
        except RuntimeError:  # outside the event loop
            ready = None
        try:
            acting: bool | None = service.acting()
        except RuntimeError:
            acting = None
        return cls(
            ready=ready,
            series=tuple(service.rule_series()),
            no_data=dict(service.rules_without_data()),
            alerts=tuple(service.alerts()),
            fetches=tuple(service.fetch_statuses()),
            plugins=service.plugin_counts(),
            acting=acting,
            now_mono=(now := _now()),
            now_wall=wall_at(now),
        )


def _alerts(state: ServiceState) -> Iterator[Metric]:
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
    for alert in state.alerts:
        since = to_wall(alert.active_at, state.now_mono, state.now_wall)
        for_state.add_sample("ALERTS_FOR_STATE", dict(alert.labels), since)
        alerts.add_sample("ALERTS", {**alert.labels, "alertstate": alert.state.value}, 1.0)
    yield alerts
    yield for_state


def _by_group(fetches: tuple[FetchStatus, ...]) -> dict[str, list[FetchStatus]]:
    """The reads of each group. Their gauges are the group's, not each read's: a rule of a
    rule file is a read of its own, and 64 of them made 64 series labelled with PromQL."""
    groups: dict[str, list[FetchStatus]] = {}
    for fetch in fetches:
        groups.setdefault(fetch.group, []).append(fetch)
    return groups


class ServiceCollector(Collector):
    def __init__(self, service: ServiceView) -> None:
        self.service = service
        self._shown = threading.local()

    @contextmanager
    def showing(self, state: ServiceState) -> Iterator[None]:
        """Within it, on this thread only, ``collect`` shows ``state`` instead of reading
        the service: how ``/metrics`` is written off the event loop from a state read on it
        (the registry around this collector calls ``collect`` itself)."""
        self._shown.state = state
        try:
            yield
        finally:
            del self._shown.state

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        shown: ServiceState | None = getattr(self._shown, "state", None)
        state = shown if shown is not None else ServiceState.read(self.service)
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

        build.add_metric([__version__, platform.python_version()], 1)
        yield build

        if state.ready is not None:
            ready.add_metric([], 1 if state.ready else 0)
            yield ready

        for summary in state.series:
            for (level_name, level_state), count in summary.counts.items():
                series.add_metric([summary.rule, level_name, level_state], count)
            in_flight.add_metric([summary.rule], summary.in_flight)
        yield series
        yield in_flight
        for name, active in state.no_data.items():
            no_data.add_metric([name], 1 if active else 0)
        yield no_data

        yield from _alerts(state)
        for group, reads in _by_group(state.fetches).items():
            up = all(read.last_success is not None and read.last_error is None for read in reads)
            target_up.add_metric([group], 1 if up else 0)
            known = [read.last_success for read in reads if read.last_success is not None]
            stamp = (
                to_wall(min(known), state.now_mono, state.now_wall)
                if len(known) == len(reads)
                else 0.0
            )
            last_success.add_metric([group], stamp)
        yield target_up
        yield last_success

        plugins_loaded.add_metric([], state.plugins.loaded)
        yield plugins_loaded
        load_failures.add_metric(["error"], state.plugins.broken)
        load_failures.add_metric(["unconfigured"], state.plugins.unconfigured)
        yield load_failures

        if state.acting is not None:
            leader.add_metric([], 1 if state.acting else 0)
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
                "1 when the last read of each of the group's targets succeeded, else 0.",
                labels=["group"],
            ),
            GaugeMetricFamily(
                "metric_reader_target_last_success_timestamp_seconds",
                "Unix time since which every read of the group has succeeded at least once "
                "(the oldest of their last successes); 0 while one never has.",
                labels=["group"],
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
