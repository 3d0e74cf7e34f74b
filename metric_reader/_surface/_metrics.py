"""The service's own metrics, in a registry of its own (``prometheus_client``).

Names follow Prometheus' conventions: the ``metric_reader_`` prefix, ``_total`` for
counters, ``_seconds`` for durations.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_CALL_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_POLL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # Reads are counted by group, never by read: a rule of a rule file is a read of its
        # own, and a label holding its PromQL, with a histogram, made /metrics heavy.
        self.polls = Counter(
            "metric_reader_polls_total",
            "Reads made by a group (a query, a page), successful or not.",
            ["group"],
            registry=self.registry,
        )
        self.poll_errors = Counter(
            "metric_reader_poll_errors_total",
            "Reads made by a group that failed.",
            ["group"],
            registry=self.registry,
        )
        self.evaluations = Counter(
            "metric_reader_evaluations_total",
            "Rule evaluations done: one per rule at each tick of its group whose read answered.",
            ["group"],
            registry=self.registry,
        )
        self.evaluations_missed = Counter(
            "metric_reader_evaluations_missed_total",
            "Rule evaluations a group could not do on time: its read did not answer within the"
            " poll's time, or a tick was skipped because the one before overran its interval.",
            ["group"],
            registry=self.registry,
        )
        self.config_reload_successful = Gauge(
            "metric_reader_config_last_reload_successful",
            "1 when the last configuration load (at start, SIGHUP, POST /-/reload) worked, "
            "else 0: the previous configuration goes on running.",
            registry=self.registry,
        )
        self.config_reload_time = Gauge(
            "metric_reader_config_last_reload_success_timestamp_seconds",
            "Unix time of the last configuration load that worked.",
            registry=self.registry,
        )
        self.config_reload_successful.set(1)
        self.config_reload_time.set_to_current_time()
        self.series_limit_exceeded = Counter(
            "metric_reader_series_limit_exceeded_total",
            "Reads that failed for a rule because they had more series than its SERIES_LIMIT.",
            ["rule"],
            registry=self.registry,
        )
        self.poll_seconds = Histogram(
            "metric_reader_poll_duration_seconds",
            "Time one read of a group took.",
            ["group"],
            buckets=_POLL_BUCKETS,
            registry=self.registry,
        )
        self.plugin_calls = Counter(
            "metric_reader_plugin_calls_total",
            "Plugin calls by plugin, method (execute, resolve) and result "
            "(success, failure, timeout).",
            ["plugin", "method", "result"],
            registry=self.registry,
        )
        self.actions = Counter(
            "metric_reader_actions_total",
            "Owed calls by rule, plugin and what became of them (executed, failed, "
            "timed_out, suppressed, shadow): the action history's rows, counted.",
            ["rule", "plugin", "outcome"],
            registry=self.registry,
        )
        self.fixes = Counter(
            "metric_reader_fixes_total",
            "Fire and repeat calls verified (verify_within) by rule, plugin and whether the "
            "fix held (verified) or not (unverified).",
            ["rule", "plugin", "result"],
            registry=self.registry,
        )
        self.breaker_open = Gauge(
            "metric_reader_breaker_open",
            "1 while the plugin's circuit breaker is open or half-open (its calls are "
            "suppressed but for one trial), else 0.",
            ["plugin"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "metric_reader_paused",
            "1 while the service is paused (metric-reader pause): no plugin is called.",
            registry=self.registry,
        )
        self.plugin_call_seconds = Histogram(
            "metric_reader_plugin_call_duration_seconds",
            "Time a plugin call took.",
            ["plugin", "method"],
            buckets=_CALL_BUCKETS,
            registry=self.registry,
        )
        self.plugin_calls_queued = Gauge(
            "metric_reader_plugin_calls_queued",
            "Plain-def plugin calls waiting for a free plugin thread; their PLUGIN_TIMEOUT "
            "starts once they have one.",
            registry=self.registry,
        )
