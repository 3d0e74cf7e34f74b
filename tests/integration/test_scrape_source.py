"""End to end with SCRAPE_URL: the service reads the test's own metrics endpoint directly."""

from __future__ import annotations

import itertools
import platform
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import EVENT_TIMEOUT, RecordingPlugins, ScrapeServer, Service, ServiceFactory

POLL = "250ms"
EPS = 1e-3


def rule_env(server: ScrapeServer, plugins: RecordingPlugins, **settings: str) -> dict[str, str]:
    env = {
        "SCRAPE_URL": server.url,
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
    svc.extra_diagnostics = [plugins.describe]
    svc.wait_until(
        lambda: len(plugins.records()) >= count,
        timeout,
        lambda: f"{count} plugin call(s), got {len(plugins.records())}",
    )
    return plugins.records()


def wait_polls(svc: Service, server: ScrapeServer, count: int) -> None:
    target = server.requests + count
    svc.wait_until(
        lambda: server.requests >= target,
        EVENT_TIMEOUT,
        lambda: f"{count} more scrapes by the service (have {server.requests}, want {target})",
    )


def assert_no_more_calls(
    svc: Service, server: ScrapeServer, plugins: RecordingPlugins, expected: int, polls: int = 6
) -> None:
    wait_polls(svc, server, polls)
    assert len(plugins.records()) == expected, (
        f"expected {expected} plugin call(s) after {polls} more polls\n{plugins.describe()}"
    )


# ---------------------------------------------------------------------------------------------


def test_fires_once_after_the_duration(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("queue_depth", 30)
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="queue_depth",
            THRESHOLD=">80",
            THRESHOLD_DURATION="2s",
        )
    )
    wait_polls(svc, scrape_server, 2)
    assert recording_plugin_dir.records() == []

    t_set = time.monotonic()
    scrape_server.set_value("queue_depth", 90)
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["t"] >= t_set + 2.0, f"fired {fire['t'] - t_set:.3f}s after the breach\n{detail}"
    assert fire["t"] <= t_set + 2.0 + 3.0, f"fired far later than the duration\n{detail}"
    assert fire["method"] == "execute", detail
    assert fire["kind"] == "fire", detail
    assert fire["level"] == "base", detail
    assert fire["metric_name"] == "queue_depth", detail
    assert fire["value"] == 90.0, detail
    assert fire["threshold"] == ">80", detail
    assert fire["duration_s"] >= 2.0 - EPS, detail
    assert fire["labels"] == {}, detail
    assert fire["fire_count"] == 0, detail
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=1, polls=8)


def test_repeats_every_backoff_delay(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("jobs_waiting", 7, {"queue": "mail"})
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="jobs_waiting",
            THRESHOLD="> 5",
            THRESHOLD_DURATION="1s",
            BACKOFF_DELAY="1s",
        )
    )
    records = wait_records(svc, recording_plugin_dir, 4)[:4]
    detail = recording_plugin_dir.describe()
    assert [r["kind"] for r in records] == ["fire", "repeat", "repeat", "repeat"], detail
    assert [r["fire_count"] for r in records] == [0, 1, 2, 3], detail
    for earlier, later in itertools.pairwise(records):
        gap = later["t"] - earlier["t"]
        assert 0.9 <= gap <= 3.0, f"repeat {gap:.3f}s after the previous call\n{detail}"
    for record in records:
        assert record["method"] == "execute", detail
        assert record["value"] == 7.0, detail
        assert record["threshold"] == "> 5", detail
        assert record["labels"] == {"queue": "mail"}, detail
        assert record["duration_s"] >= 1.0 - EPS, detail


def test_resolves_when_the_value_drops(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("free_bytes", 5, {"mount": "/data"})
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="free_bytes",
            THRESHOLD="<10",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    assert fire["kind"] == "fire"
    assert fire["value"] == 5.0

    t_drop = time.monotonic()
    scrape_server.set_value("free_bytes", 500, {"mount": "/data"})
    records = wait_records(svc, recording_plugin_dir, 2)
    resolve, detail = records[1], recording_plugin_dir.describe()
    assert resolve["method"] == "resolve", detail
    assert resolve["kind"] == "resolve", detail
    assert resolve["level"] == "base", detail
    assert resolve["value"] == 5.0, detail  # the last value that breached, not 500
    assert resolve["threshold"] == "<10", detail
    assert resolve["labels"] == {"mount": "/data"}, detail
    assert resolve["duration_s"] >= 1.0 - EPS, detail
    assert resolve["t"] >= t_drop, detail
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=2)


def test_a_dip_shorter_than_the_duration_does_nothing(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("latency_ms", 100)
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="latency_ms",
            THRESHOLD=">=500",
            THRESHOLD_DURATION="3s",
        )
    )
    wait_polls(svc, scrape_server, 2)
    t_breach = time.monotonic()
    scrape_server.set_value("latency_ms", 500)
    wait_polls(svc, scrape_server, 4)  # read at least 3 times while breached
    scrape_server.set_value("latency_ms", 100)
    assert time.monotonic() < t_breach + 2.5, "test set-up too slow: the dip was not short"

    target = scrape_server.requests + 8
    svc.wait_until(
        lambda: time.monotonic() > t_breach + 3.0 + 1.5 and scrape_server.requests >= target,
        EVENT_TIMEOUT,
        "the duration to pass with the service polling",
    )
    assert recording_plugin_dir.records() == [], recording_plugin_dir.describe()


def test_label_filters_pick_series_each_with_its_own_state(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("pool_load", 10, {"pool": "web-1"})
    scrape_server.set_value("pool_load", 95, {"pool": "web-2"})
    scrape_server.set_value("pool_load", 99, {"pool": "db-1"})  # breached, not selected
    scrape_server.set_value("pool_load", 99, {"pool": "xweb-3"})  # regexes are anchored
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="pool_load",
            LABEL_FILTERS='pool=~"web-.*"',
            THRESHOLD=">80",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["labels"] == {"pool": "web-2"}, detail
    assert fire["value"] == 95.0, detail
    assert fire["kind"] == "fire", detail
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=1)

    t_set = time.monotonic()
    scrape_server.set_value("pool_load", 81, {"pool": "web-1"})
    records = wait_records(svc, recording_plugin_dir, 2)
    second, detail = records[1], recording_plugin_dir.describe()
    assert second["labels"] == {"pool": "web-1"}, detail
    assert second["value"] == 81.0, detail
    assert second["kind"] == "fire", detail
    assert second["fire_count"] == 0, detail
    assert second["t"] >= t_set + 1.0, detail
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=2)


def test_a_name_that_prefixes_another_metric(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    def page(depth: float) -> str:
        return (
            "# HELP queue_depth_max Largest queue depth.\n"
            "# TYPE queue_depth_max gauge\n"
            'queue_depth_max{queue="a"} 1000\n'
            "queue_depth_maximum 1000\n"
            "# HELP queue_depth Queue depth.\n"
            "# TYPE queue_depth gauge\n"
            f'queue_depth{{queue="a"}} {depth}\n'
            "# TYPE queue_depth_seconds histogram\n"
            'queue_depth_seconds_bucket{le="+Inf"} 5000\n'
            "queue_depth_seconds_sum 9000\n"
            "queue_depth_seconds_count 5000\n"
        )

    scrape_server.set_page(page(10))
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="queue_depth",
            THRESHOLD=">50",
            THRESHOLD_DURATION="0s",
        )
    )
    wait_polls(svc, scrape_server, 6)
    assert recording_plugin_dir.records() == [], (
        "fired on another metric whose name starts with the watched one\n"
        + recording_plugin_dir.describe()
    )

    scrape_server.set_page(page(60))
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["value"] == 60.0, detail
    assert fire["labels"] == {"queue": "a"}, detail
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=1)


def test_an_outage_does_not_reset_a_pending_breach(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    duration = 3.0
    scrape_server.set_value("errors_per_s", 1)
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="errors_per_s",
            THRESHOLD=">10",
            THRESHOLD_DURATION="3s",
        )
    )
    wait_polls(svc, scrape_server, 2)
    t_breach = time.monotonic()
    scrape_server.set_value("errors_per_s", 50)
    wait_polls(svc, scrape_server, 2)  # the breach has been seen: PENDING

    scrape_server.set_status(500)
    wait_polls(svc, scrape_server, 3)  # a few failed fetches...
    scrape_server.go_down()  # ...then connection refused, past the end of the duration
    svc.wait_until(
        lambda: time.monotonic() > t_breach + duration + 1.0,
        EVENT_TIMEOUT,
        "the outage to last past the duration",
    )
    assert recording_plugin_dir.records() == [], (
        "acted during the outage, without a value\n" + recording_plugin_dir.describe()
    )

    scrape_server.set_status(200)
    t_back = time.monotonic()
    scrape_server.come_back()  # still breached
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe()
    assert fire["kind"] == "fire", detail
    assert fire["value"] == 50.0, detail
    # On time: at the first good read, not after a new full duration.
    assert fire["t"] - t_back < duration - 1.0, (
        f"fired {fire['t'] - t_back:.2f}s after the endpoint came back: the outage reset the "
        f"pending timer\n{detail}"
    )
    assert fire["duration_s"] >= duration - EPS, detail
    assert fire["duration_s"] >= (t_back - t_breach) - 1.0, (
        f"duration {fire['duration_s']}s does not count the outage\n{detail}"
    )
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=1)


def test_an_outage_resolves_nothing(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    scrape_server.set_value("temperature", 95, {"room": "b12"})
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="temperature",
            THRESHOLD=">80",
            THRESHOLD_DURATION="1s",
        )
    )
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    assert fire["kind"] == "fire"

    scrape_server.set_status(500)
    wait_polls(svc, scrape_server, 4)
    scrape_server.go_down()
    t_down = time.monotonic()
    svc.wait_until(
        lambda: time.monotonic() > t_down + 1.5, EVENT_TIMEOUT, "1.5s of connection refused"
    )
    scrape_server.set_status(200)
    scrape_server.come_back()
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=1, polls=4)
    assert svc.alive(), svc.diagnostics()

    # Still firing, not forgotten: a real drop resolves it, once.
    scrape_server.set_value("temperature", 20, {"room": "b12"})
    records = wait_records(svc, recording_plugin_dir, 2)
    detail = recording_plugin_dir.describe()
    assert records[1]["method"] == "resolve", detail
    assert records[1]["kind"] == "resolve", detail
    assert records[1]["value"] == 95.0, detail  # the last value that breached
    assert records[1]["labels"] == {"room": "b12"}, detail
    assert_no_more_calls(svc, scrape_server, recording_plugin_dir, expected=2)


def _minor_faults(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[7])  # minflt, the 10th field of stat(5)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="keeps memory with glibc's mallopt")
def test_a_big_page_does_not_fault_its_memory_in_again_on_every_poll(
    scrape_server: ScrapeServer, recording_plugin_dir: RecordingPlugins, service: ServiceFactory
) -> None:
    lines = [f'filler_{i % 1000}{{instance="host-{i}",job="padding"}} {i}' for i in range(200_000)]
    page = "\n".join(["queue_depth 1", *lines, ""])
    pages = len(page) // 4096
    scrape_server.set_page(page)
    svc = service(
        rule_env(
            scrape_server,
            recording_plugin_dir,
            METRIC_NAME="queue_depth",
            THRESHOLD=">80",
            POLLING_INTERVAL="100ms",
        )
    )
    wait_polls(svc, scrape_server, 3)
    before, polls_before = _minor_faults(svc.proc.pid), scrape_server.requests
    wait_polls(svc, scrape_server, 10)
    faults = _minor_faults(svc.proc.pid) - before
    polls = scrape_server.requests - polls_before
    # With glibc's defaults an 11 MB page is given back to the kernel after each poll and
    # the next poll faults it in again: two faults per 4 KB of page (5,900 here), a third
    # of the service's CPU time spent in the kernel. Kept, it is a handful.
    assert faults / polls < pages / 4, f"{faults / polls:.0f} faults a poll, page {pages} pages"
