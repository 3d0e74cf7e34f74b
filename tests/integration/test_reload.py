"""Reloading a running service: SIGHUP and ``POST /-/reload``.

A real service runs three rules on a real page, each firing once. The rule file is then
changed: one rule stays as it was, one gets another threshold it still breaches, one is
removed, one is added. After SIGHUP the unchanged rule goes on as it was (it does not fire
again), the changed one keeps its state (its identity, its name, is the same: it neither
resolves nor fires again), the removed one resolves, the new one fires. A
broken file is then refused (500 with the problem, each line logged, the metric at 0) and
nothing changes; a good file again is taken (200, the metric back at 1).

``POST /-/reload`` is off unless ``ENABLE_LIFECYCLE`` (403 naming it; SIGHUP reloads
either way), and a cross-site one is refused even then.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from .conftest import (
    EVENT_TIMEOUT,
    RecordingPlugins,
    ScrapeServer,
    Service,
    ServiceFactory,
    free_port,
)

RULES = {
    "kept": "queue_a",
    "changed": "queue_b",
    "removed": "queue_c",
}


def _rule_file(url: str, rules: dict[str, tuple[str, str]]) -> str:
    text = f'scrape_url = "{url}"\npolling_interval = "200ms"\naction_plugin = "recorder"\n'
    for name, (metric, threshold) in rules.items():
        text += f'[[rules]]\nname = "{name}"\nmetric_name = "{metric}"\nthreshold = "{threshold}"\n'
    return text


def _post(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"{name} not on /metrics")


def test_a_reload_keeps_unchanged_rules_and_refuses_a_broken_file(
    tmp_path: Path,
    service: ServiceFactory,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
) -> None:
    for metric in ("queue_a", "queue_b", "queue_c", "queue_d"):
        scrape_server.set_value(metric, 100)
    config = tmp_path / "rules.toml"
    config.write_text(
        _rule_file(scrape_server.url, {name: (m, ">50") for name, m in RULES.items()})
    )
    port = free_port()
    svc = service(
        {
            "CONFIG_FILE": str(config),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "info",
            "ENABLE_LIFECYCLE": "true",
            **recording_plugin_dir.env,
        }
    )
    base = f"http://127.0.0.1:{port}"

    def calls() -> Counter[tuple[str, str]]:
        return Counter((r["rule"], r["method"]) for r in recording_plugin_dir.records())

    svc.wait_until(lambda: len(calls()) == 3, EVENT_TIMEOUT, "each rule to fire once")
    config.write_text(
        _rule_file(
            scrape_server.url,
            {"kept": ("queue_a", ">50"), "changed": ("queue_b", ">60"), "new": ("queue_d", ">50")},
        )
    )
    svc.proc.send_signal(signal.SIGHUP)
    expected = {
        ("kept", "execute"): 1,
        ("changed", "execute"): 1,
        ("removed", "execute"): 1,
        ("removed", "resolve"): 1,
        ("new", "execute"): 1,
    }
    svc.wait_until(lambda: calls() == expected, EVENT_TIMEOUT, lambda: f"{expected}, got {calls()}")
    [reloaded] = [line for line in svc.stderr().splitlines() if "configuration reloaded" in line]
    assert (
        "1 rules kept as they were, 1 kept with new settings, 1 new, 1 removed or replaced"
        in reloaded
    )
    assert _metric(base, "metric_reader_config_last_reload_successful") == 1

    good = config.read_text()
    config.write_text(
        good + '[[rules]]\nname = "broken"\nthreshold = ">50"\npolling_interval = "fast"\n'
    )
    status, body = _post(f"{base}/-/reload")
    assert status == 500, body
    assert "failed to reload the configuration" in body and "polling_interval='fast'" in body
    refused = [line for line in svc.stderr().splitlines() if "reload refused" in line]
    assert len(refused) == 2, refused  # two problems: no metric_name, a bad polling_interval
    assert _metric(base, "metric_reader_config_last_reload_successful") == 0
    before = calls()
    scrape_server.wait_requests(scrape_server.requests + 5)  # a second of polls: nothing new
    assert calls() == before and svc.alive()

    config.write_text(good)
    assert _post(f"{base}/-/reload") == (200, "configuration reloaded\n")
    assert _metric(base, "metric_reader_config_last_reload_successful") == 1
    assert calls() == before  # the same configuration again: every rule kept


def _running_one_alert(tmp_path: Path, service: ServiceFactory) -> tuple[Path, Service, str]:
    """A service running one alert of ``alerts.yml`` against a Prometheus nobody listens
    for, reloadable over HTTP: the file, the service and its base URL."""
    alerts = tmp_path / "alerts.yml"
    alerts.write_text("groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up\n")
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "http://127.0.0.1:{free_port()}"\nrule_files = ["alerts.yml"]\n'
    )
    port = free_port()
    svc = service(
        {
            "CONFIG_FILE": str(config),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "info",
            "ENABLE_LIFECYCLE": "true",
        }
    )
    base = f"http://127.0.0.1:{port}"
    svc.wait_until(lambda: "polling every" in svc.stderr(), EVENT_TIMEOUT, "the start")
    return alerts, svc, base


def test_a_broken_prometheus_rule_file_is_refused_on_reload(
    tmp_path: Path, service: ServiceFactory
) -> None:
    alerts, svc, base = _running_one_alert(tmp_path, service)
    alerts.write_text("groups:\n  - name: g\n    rules:\n      - alert: Up\n        exp: up\n")
    status, body = _post(f"{base}/-/reload")
    assert status == 500, body
    assert f"{alerts}:5:9: " in body and "exp" in body, body
    assert _metric(base, "metric_reader_config_last_reload_successful") == 0
    assert svc.alive() and "configuration reloaded" not in svc.stderr()


def test_a_promql_syntax_error_is_refused_on_reload_without_asking_prometheus(
    tmp_path: Path, service: ServiceFactory
) -> None:
    """The expressions are parsed at the reload: a Prometheus that cannot be asked let a
    rule file with an unclosed parenthesis through (a warning). The reload is refused, the
    line logged with the file, line and column, and the running rules go on."""
    alerts, svc, base = _running_one_alert(tmp_path, service)
    alerts.write_text(
        "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: sum(rate(up[5m])\n"
    )
    problem = (
        f'{alerts}:5:15: group "g", rule 1, "Up": could not parse expression: 1:17: parse '
        "error: unclosed left parenthesis"  # promtool's words and place
    )
    status, body = _post(f"{base}/-/reload")
    assert status == 500 and problem in body, body
    refused = [line for line in svc.stderr().splitlines() if "reload refused" in line]
    assert len(refused) == 1 and refused[0].endswith(problem), refused
    assert _metric(base, "metric_reader_config_last_reload_successful") == 0
    assert svc.alive() and "configuration reloaded" not in svc.stderr()


HANGING_IMPORT = """\
import os
import time

while not os.path.exists(os.environ["RELEASE_HANGING_PLUGIN"]):  # an import that hangs
    time.sleep(0.05)
"""


@pytest.mark.serial
def test_a_reload_held_up_by_a_hanging_plugin_file_stalls_neither_probes_nor_polls(
    tmp_path: Path,
    service: ServiceFactory,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
) -> None:
    """A PLUGIN_DIR file whose import hangs holds a reload up for PLUGIN_TIMEOUT: the reload
    reads the plugins again. Meanwhile /healthz answers at once and the polls go on."""
    scrape_server.set_value("queue_a", 1)
    release = tmp_path / "release"
    port = free_port()
    svc = service(
        {
            "SCRAPE_URL": scrape_server.url,
            "METRIC_NAME": "queue_a",
            "THRESHOLD": ">50",
            "ACTION_PLUGIN": "recorder",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_TIMEOUT": "5s",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "LOG_LEVEL": "info",
            "RELEASE_HANGING_PLUGIN": str(release),
            **recording_plugin_dir.env,
        }
    )
    try:
        svc.wait_until(lambda: "polling every" in svc.stderr(), EVENT_TIMEOUT, "the start")
        hanging = recording_plugin_dir.plugin_dir / "hanging.py"
        hanging.write_text(HANGING_IMPORT)
        hanging.chmod(0o644)
        svc.proc.send_signal(signal.SIGHUP)
        svc.wait_until(
            lambda: "reloading the configuration" in svc.stderr(), EVENT_TIMEOUT, "the SIGHUP"
        )
        polls_before = scrape_server.requests
        slowest = 0.0
        watched_until = time.monotonic() + 3.0
        while time.monotonic() < watched_until:
            asked = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
                assert answer.status == 200
            slowest = max(slowest, time.monotonic() - asked)
            time.sleep(0.05)
        polls = scrape_server.requests - polls_before
        assert slowest < 1.0, f"/healthz took {slowest:.2f}s during the reload"
        assert polls >= 10, f"{polls} polls in 3s at a 100ms interval during the reload"
        assert "configuration reloaded" not in svc.stderr(), "the reload did not wait: no test"
        svc.wait_until(
            lambda: "configuration reloaded: unchanged" in svc.stderr(),
            EVENT_TIMEOUT,
            "the reload to end once the hanging file's load timed out",
        )
    finally:
        release.touch()


def _quiet_rule_file(url: str) -> str:
    """One rule that never fires (no plugin needed)."""
    return (
        f'scrape_url = "{url}"\npolling_interval = "200ms"\n'
        '[[rules]]\nname = "calm"\nmetric_name = "queue_a"\nthreshold = ">50"\n'
    )


def _reloads(text: str) -> int:
    return sum("configuration reloaded" in line for line in text.splitlines())


def test_reload_over_http_is_off_by_default_and_sighup_still_reloads(
    tmp_path: Path, service: ServiceFactory, scrape_server: ScrapeServer
) -> None:
    scrape_server.set_value("queue_a", 1)
    config = tmp_path / "rules.toml"
    config.write_text(_quiet_rule_file(scrape_server.url))
    port = free_port()
    svc = service(
        {"CONFIG_FILE": str(config), "LISTEN_ADDRESS": f"127.0.0.1:{port}", "LOG_LEVEL": "info"}
    )
    svc.wait_until(lambda: "polling every" in svc.stderr(), EVENT_TIMEOUT, "the start")
    status, body = _post(f"http://127.0.0.1:{port}/-/reload")
    assert status == 403 and "ENABLE_LIFECYCLE=true" in body and body.count("\n") == 1, body
    svc.proc.send_signal(signal.SIGHUP)
    svc.wait_until(lambda: _reloads(svc.stderr()) == 1, EVENT_TIMEOUT, "SIGHUP to reload")


def test_with_the_lifecycle_on_a_cross_site_post_is_refused_and_a_same_origin_one_reloads(
    tmp_path: Path, service: ServiceFactory, scrape_server: ScrapeServer
) -> None:
    scrape_server.set_value("queue_a", 1)
    config = tmp_path / "rules.toml"
    config.write_text("enable_lifecycle = true\n" + _quiet_rule_file(scrape_server.url))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    svc = service({"CONFIG_FILE": str(config), "LISTEN_ADDRESS": f"127.0.0.1:{port}"})
    svc.wait_until(lambda: "polling every" in svc.stderr(), EVENT_TIMEOUT, "the start")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for refused in (
        {"Origin": "http://evil.example", **form},
        {"Sec-Fetch-Site": "cross-site", **form},
    ):
        status, body = _post(f"{base}/-/reload", refused)
        assert status == 403 and "cross-site request refused" in body, (refused, body)
    assert _post(f"{base}/-/reload", {"Origin": base, **form}) == (
        200,
        "configuration reloaded\n",
    )
    assert _post(f"{base}/-/reload") == (200, "configuration reloaded\n")  # curl
    assert _reloads(svc.stderr()) == 2, svc.stderr()
