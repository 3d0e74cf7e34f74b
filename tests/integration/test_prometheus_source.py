"""End to end against a real Prometheus: values pushed to a Pushgateway, scraped by Prometheus,
read by the service through a counting proxy, acted on by the recording plugins.

Each test uses its own metric and job names so tests never see each other's series.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from .conftest import (
    EVENT_TIMEOUT,
    PrometheusProxy,
    PrometheusStack,
    RecordingPlugins,
    Service,
    ServiceFactory,
)

POLL = "250ms"
EPS = 1e-3  # timedelta rounds to microseconds


def rule_env(proxy: PrometheusProxy, plugins: RecordingPlugins, **settings: str) -> dict[str, str]:
    env = {
        "PROMETHEUS_ENDPOINT": proxy.url,
        "POLLING_INTERVAL": POLL,
        "BACKOFF_DELAY": "0s",
        "ACTION_PLUGIN": "recorder",
        **plugins.env,
    }
    env.update(settings)
    return env


def wait_records(
    svc: Service, plugins: RecordingPlugins, count: int, timeout: float = EVENT_TIMEOUT
) -> list[dict[str, Any]]:
    """Wait until the plugins have recorded at least ``count`` calls; return them all."""
    svc.extra_diagnostics = [plugins.describe]
    svc.wait_until(
        lambda: len(plugins.records()) >= count,
        timeout,
        lambda: f"{count} plugin call(s), got {len(plugins.records())}",
    )
    return plugins.records()


def wait_polls(svc: Service, proxy: PrometheusProxy, count: int) -> None:
    """Wait until the service has queried Prometheus ``count`` more times."""
    target = proxy.requests + count
    svc.wait_until(
        lambda: proxy.requests >= target,
        EVENT_TIMEOUT,
        lambda: f"{count} more queries by the service (have {proxy.requests}, want {target})",
    )


def assert_no_more_calls(
    svc: Service, proxy: PrometheusProxy, plugins: RecordingPlugins, expected: int, polls: int = 6
) -> None:
    """Let the service poll ``polls`` more times, then check nothing else was called."""
    wait_polls(svc, proxy, polls)
    records = plugins.records()
    assert len(records) == expected, (
        f"expected {expected} plugin call(s) after {polls} more polls\n{plugins.describe()}"
    )


# ---------------------------------------------------------------------------------------------


def test_fires_once_after_the_duration(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_a_fire_once", "mr_prom_a"
    stack.push(metric, 30, job=job)
    stack.wait_visible(metric, 30)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            LABEL_FILTERS=f'job="{job}"',
            THRESHOLD=">80",
            THRESHOLD_DURATION="2s",
            BACKOFF_DELAY="0s",
        )
    )
    wait_polls(svc, prometheus_proxy, 2)  # running, and has seen the value below the threshold
    assert recording_plugin_dir.records() == []

    t_push = time.monotonic()
    stack.push(metric, 90, job=job)
    t_visible = stack.wait_visible(metric, 90)

    [fire] = wait_records(svc, recording_plugin_dir, 1)
    assert fire["t"] >= t_push + 2.0, f"fired {fire['t'] - t_push:.3f}s after the push (< 2s)"
    assert fire["t"] <= t_visible + 2.0 + 3.0, "fired far later than the duration"
    assert fire["method"] == "execute"
    assert fire["plugin"] == "recorder"
    assert fire["kind"] == "fire"
    assert fire["level"] == "base"
    assert fire["metric_name"] == metric
    assert fire["value"] == 90.0
    assert fire["threshold"] == ">80"
    assert fire["duration_s"] >= 2.0 - EPS
    assert fire["labels"] == {"job": job}
    assert fire["fire_count"] == 0

    # BACKOFF_DELAY=0s: once per breach, however long it lasts.
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=1, polls=8)


def test_repeats_every_backoff_delay(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_b_repeat", "mr_prom_b"
    stack.push(metric, 90, job=job)
    stack.wait_visible(metric, 90)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            THRESHOLD=">80",
            THRESHOLD_DURATION="1s",
            BACKOFF_DELAY="1s",
        )
    )
    records = wait_records(svc, recording_plugin_dir, 4)[:4]
    detail = recording_plugin_dir.describe()
    assert [r["method"] for r in records] == ["execute"] * 4, detail
    assert [r["kind"] for r in records] == ["fire", "repeat", "repeat", "repeat"], detail
    assert [r["fire_count"] for r in records] == [0, 1, 2, 3], detail
    for earlier, later in itertools.pairwise(records):
        gap = later["t"] - earlier["t"]
        assert 0.9 <= gap <= 3.0, f"repeat {gap:.3f}s after the previous call\n{detail}"
        assert later["duration_s"] > earlier["duration_s"], detail
    for record in records:
        assert record["value"] == 90.0
        assert record["threshold"] == ">80"
        assert record["duration_s"] >= 1.0 - EPS
        assert record["labels"] == {"job": job}
        assert record["level"] == "base"


def test_resolves_when_the_value_drops(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_c_resolve", "mr_prom_c"
    stack.push(metric, 90, job=job)
    stack.wait_visible(metric, 90)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            THRESHOLD=">80",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    assert fire["kind"] == "fire"

    t_drop = time.monotonic()
    stack.push(metric, 10, job=job)
    records = wait_records(svc, recording_plugin_dir, 2)
    resolve = records[1]
    detail = recording_plugin_dir.describe()
    assert resolve["method"] == "resolve", detail
    assert resolve["plugin"] == "recorder", detail
    assert resolve["kind"] == "resolve", detail
    assert resolve["level"] == "base", detail
    assert resolve["value"] == 90.0, detail  # the last value that breached, not 10
    assert resolve["threshold"] == ">80", detail
    assert resolve["metric_name"] == metric, detail
    assert resolve["labels"] == {"job": job}, detail
    assert resolve["duration_s"] >= 1.0 - EPS, detail
    assert resolve["t"] >= t_drop, detail

    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=2)


def test_escalates_to_the_hard_level_and_back(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_d_escalate", "mr_prom_d"
    stack.push(metric, 70, job=job)
    stack.wait_visible(metric, 70)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            THRESHOLD=">50",
            THRESHOLD_DURATION="1s",
            HARD_THRESHOLD=">90",
            HARD_THRESHOLD_DURATION="2s",
            HARD_ACTION_PLUGIN="recorder_hard",
        )
    )
    [base_fire] = wait_records(svc, recording_plugin_dir, 1)
    assert (base_fire["plugin"], base_fire["kind"], base_fire["level"]) == (
        "recorder",
        "fire",
        "base",
    ), recording_plugin_dir.describe()
    assert base_fire["value"] == 70.0
    assert base_fire["threshold"] == ">50"

    t_hard = time.monotonic()
    stack.push(metric, 95, job=job)
    records = wait_records(svc, recording_plugin_dir, 2)
    hard_fire, detail = records[1], recording_plugin_dir.describe()
    assert hard_fire["plugin"] == "recorder_hard", detail
    assert hard_fire["method"] == "execute", detail
    assert hard_fire["kind"] == "fire", detail
    assert hard_fire["level"] == "hard", detail
    assert hard_fire["value"] == 95.0, detail
    assert hard_fire["threshold"] == ">90", detail
    assert hard_fire["labels"] == {"job": job}, detail
    assert hard_fire["duration_s"] >= 2.0 - EPS, detail
    assert hard_fire["t"] >= t_hard + 2.0, f"hard level fired before its duration\n{detail}"

    # Between the two thresholds: the hard level resolves, the base level keeps firing.
    stack.push(metric, 70, job=job)
    records = wait_records(svc, recording_plugin_dir, 3)
    hard_resolve, detail = records[2], recording_plugin_dir.describe()
    assert hard_resolve["plugin"] == "recorder_hard", detail
    assert hard_resolve["method"] == "resolve", detail
    assert hard_resolve["kind"] == "resolve", detail
    assert hard_resolve["level"] == "hard", detail
    assert hard_resolve["value"] == 95.0, detail  # the hard level's last breaching value
    assert hard_resolve["threshold"] == ">90", detail
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=3)

    # Below both: the base level resolves (the hard one already has).
    stack.push(metric, 10, job=job)
    records = wait_records(svc, recording_plugin_dir, 4)
    base_resolve, detail = records[3], recording_plugin_dir.describe()
    assert base_resolve["plugin"] == "recorder", detail
    assert base_resolve["method"] == "resolve", detail
    assert base_resolve["kind"] == "resolve", detail
    assert base_resolve["level"] == "base", detail
    assert base_resolve["value"] == 70.0, detail  # the base level's last breaching value
    assert base_resolve["threshold"] == ">50", detail
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=4)


def test_drop_from_hard_to_below_both_resolves_both_levels(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_d2_escalate", "mr_prom_d2"
    stack.push(metric, 95, job=job)
    stack.wait_visible(metric, 95)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            THRESHOLD=">50",
            THRESHOLD_DURATION="0s",
            HARD_THRESHOLD=">90",
            HARD_THRESHOLD_DURATION="1s",
            HARD_ACTION_PLUGIN="recorder_hard",
        )
    )
    records = wait_records(svc, recording_plugin_dir, 2)
    detail = recording_plugin_dir.describe()
    assert [(r["plugin"], r["kind"], r["level"]) for r in records[:2]] == [
        ("recorder", "fire", "base"),
        ("recorder_hard", "fire", "hard"),
    ], detail

    stack.push(metric, 10, job=job)
    records = wait_records(svc, recording_plugin_dir, 4)
    detail = recording_plugin_dir.describe()
    resolves = sorted((r["plugin"], r["method"], r["kind"], r["level"]) for r in records[2:])
    assert resolves == [
        ("recorder", "resolve", "resolve", "base"),
        ("recorder_hard", "resolve", "resolve", "hard"),
    ], detail
    assert all(r["value"] == 95.0 for r in records[2:]), detail  # the last that breached
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=4)


def test_a_dip_shorter_than_the_duration_does_nothing(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_e_dip", "mr_prom_e"
    duration = 4.0
    stack.push(metric, 30, job=job)
    stack.wait_visible(metric, 30)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            THRESHOLD=">80",
            THRESHOLD_DURATION="4s",
        )
    )
    wait_polls(svc, prometheus_proxy, 2)

    t_breach = time.monotonic()
    stack.push(metric, 90, job=job)
    stack.wait_visible(metric, 90)
    wait_polls(svc, prometheus_proxy, 2)  # the service has read the breached value
    stack.push(metric, 30, job=job)
    t_back = stack.wait_visible(metric, 30)
    assert t_back < t_breach + duration - 0.5, (
        f"test set-up too slow: the dip lasted {t_back - t_breach:.2f}s, not < {duration}s"
    )

    # Past the moment the duration would have run out, with the service polling throughout.
    target = prometheus_proxy.requests + 8
    svc.wait_until(
        lambda: (
            time.monotonic() > t_breach + duration + 1.5 and prometheus_proxy.requests >= target
        ),
        EVENT_TIMEOUT,
        "the duration to pass with the service polling",
    )
    assert recording_plugin_dir.records() == [], recording_plugin_dir.describe()


def test_each_series_has_its_own_state(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_f_series", "mr_prom_f"
    stack.push(metric, 10, {"disk": "a"}, job=job)
    stack.push(metric, 95, {"disk": "b"}, job=job)
    stack.push(metric, 99, {"disk": "c"}, job=job)  # breached, but filtered out
    for disk, value in (("a", 10), ("b", 95), ("c", 99)):
        stack.wait_visible(metric, value, {"disk": disk})
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            METRIC_NAME=metric,
            LABEL_FILTERS=f'job="{job}",disk!="c"',
            THRESHOLD=">80",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["labels"] == {"job": job, "disk": "b"}, detail
    assert fire["value"] == 95.0, detail
    assert fire["kind"] == "fire", detail
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=1)

    # The other series breaches later: its own timer, its own first fire.
    t_push = time.monotonic()
    stack.push(metric, 96, {"disk": "a"}, job=job)
    records = wait_records(svc, recording_plugin_dir, 2)
    second, detail = records[1], recording_plugin_dir.describe()
    assert second["labels"] == {"job": job, "disk": "a"}, detail
    assert second["value"] == 96.0, detail
    assert second["kind"] == "fire", detail
    assert second["fire_count"] == 0, detail
    assert second["t"] >= t_push + 1.0, detail
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=2)


def test_query_instead_of_metric_name(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_g_query", "mr_prom_g"
    stack.push(metric, 30, {"pod": "x"}, job=job)
    stack.push(metric, 95, {"pod": "y"}, job=job)
    query = f"max({metric})"
    stack.wait_visible(query, 95)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            QUERY=query,
            THRESHOLD=">80",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["kind"] == "fire", detail
    assert fire["metric_name"] == query, detail
    assert fire["value"] == 95.0, detail
    assert fire["threshold"] == ">80", detail
    assert fire["labels"] == {}, detail
    assert fire["duration_s"] >= 1.0 - EPS, detail
    assert_no_more_calls(svc, prometheus_proxy, recording_plugin_dir, expected=1)


def test_query_with_a_scalar_result(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    stack, metric, job = prometheus_stack, "mr_prom_g2_scalar", "mr_prom_g2"
    stack.push(metric, 40, {"pod": "x"}, job=job)
    stack.push(metric, 50, {"pod": "y"}, job=job)
    query = f"scalar(sum({metric}))"
    assert stack.query(query)["resultType"] == "scalar"
    stack.wait_visible(query, 90)
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            QUERY=query,
            THRESHOLD=">=85",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["kind"] == "fire", detail
    assert fire["metric_name"] == query, detail
    assert fire["value"] == 90.0, detail
    assert fire["threshold"] == ">=85", detail
    assert fire["labels"] == {}, detail

    stack.push(metric, 10, {"pod": "y"}, job=job)
    records = wait_records(svc, recording_plugin_dir, 2)
    assert records[1]["kind"] == "resolve", recording_plugin_dir.describe()
    assert records[1]["value"] == 90.0, recording_plugin_dir.describe()  # not 50


def test_survives_prometheus_errors(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    # Parses (Prometheus 3 has limitk) but not in this Prometheus: 400, status "error".
    query = "limitk(1, mr_prom_h_broken)"
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            QUERY=query,
            THRESHOLD=">0",
            THRESHOLD_DURATION="0s",
        )
    )
    # It keeps polling at its pace, error after error, and says what failed.
    wait_polls(svc, prometheus_proxy, 8)
    assert svc.alive(), svc.diagnostics()
    # One line carries both the query and Prometheus's reason.
    svc.wait_until(
        lambda: any(query in line and "parse error" in line for line in svc.output().splitlines()),
        EVENT_TIMEOUT,
        f"a logged error with the query text {query!r} and Prometheus's 'parse error'",
    )
    assert recording_plugin_dir.records() == [], recording_plugin_dir.describe()


def test_a_failed_query_is_not_a_missing_value(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
) -> None:
    """A failed fetch changes no state, even where a missing value would breach."""
    query = "limitk(1, mr_prom_h2_broken)"
    svc = service(
        rule_env(
            prometheus_proxy,
            recording_plugin_dir,
            QUERY=query,
            THRESHOLD=">0",
            THRESHOLD_DURATION="0s",
            MISSING_VALUE_BEHAVIOR="assume_breached",
        )
    )
    wait_polls(svc, prometheus_proxy, 8)
    assert svc.alive(), svc.diagnostics()
    assert recording_plugin_dir.records() == [], recording_plugin_dir.describe()
