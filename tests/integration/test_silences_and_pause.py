"""Silences and the pause switch end to end: ``python -m metric_reader`` reading a real
Prometheus (values pushed to a Pushgateway), the real ``amtool`` (Debian's) adding,
querying and expiring a silence over Alertmanager's API v2, and ``metric-reader pause`` /
``resume`` across a restart.

What a user sees: the plugin calls (the recording plugin notes each), the commands' output,
``/metrics``, the state file and ``metric-reader history``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    STARTUP_TIMEOUT,
    PrometheusProxy,
    PrometheusStack,
    RecordingPlugins,
    Service,
    ServiceFactory,
    _http_get,
    base_env,
    free_port,
)

AMTOOL = shutil.which("amtool")


def _env(
    proxy: PrometheusProxy, metric: str, plugins: RecordingPlugins, tmp_path: Path
) -> dict[str, str]:
    return {
        "PROMETHEUS_ENDPOINT": proxy.url,
        "METRIC_NAME": metric,
        "THRESHOLD": ">80",
        "POLLING_INTERVAL": "250ms",
        "ACTION_PLUGIN": "recorder",
        "STATE_FILE": str(tmp_path / "state.json"),
        "ENABLE_LIFECYCLE": "true",
        "LISTEN_ADDRESS": f"127.0.0.1:{free_port()}",
        **plugins.env,
    }


def _started(service: ServiceFactory, env: dict[str, str], plugins: RecordingPlugins) -> Service:
    svc = service(env)
    svc.extra_diagnostics = [plugins.describe]
    url = f"http://{env['LISTEN_ADDRESS']}/readyz"

    def ready() -> bool:
        try:
            return _http_get(url)[0] == 200
        except OSError:  # not listening yet
            return False

    svc.wait_until(ready, STARTUP_TIMEOUT, "the service to be ready")
    return svc


def _polls(svc: Service, proxy: PrometheusProxy, count: int) -> None:
    target = proxy.requests + count
    svc.wait_until(lambda: proxy.requests >= target, EVENT_TIMEOUT, f"{count} more polls")


def _set(prometheus: PrometheusStack, metric: str, value: float) -> None:
    """Push ``value`` and wait until Prometheus answers it."""
    prometheus.push(metric, value)
    prometheus.wait_visible(metric, value)


def _history(env: dict[str, str]) -> list[tuple[str, str, str]]:
    """(kind, outcome, reason) of each row of ``metric-reader history``, oldest first."""
    rows = json.loads(
        _run([sys.executable, "-m", "metric_reader", "history", "--format", "json"], env)
    )
    return [(row["kind"], row["outcome"], row["reason"]) for row in reversed(rows)]


def _run(argv: list[str], env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=30, env=base_env(env), cwd=REPO_ROOT
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


def _saved_governor(env: dict[str, str]) -> dict[str, Any]:
    saved: dict[str, Any] = json.loads(Path(env["STATE_FILE"]).read_text())["governor"]
    return saved


@pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed")
def test_amtool_silences_an_alert_and_expiring_the_silence_lets_it_fire(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    assert AMTOOL is not None
    metric = "silenced_queue_depth"
    _set(prometheus_stack, metric, 10)
    env = _env(prometheus_proxy, metric, recording_plugin_dir, tmp_path)
    svc = _started(service, env, recording_plugin_dir)
    amtool = [AMTOOL, f"--alertmanager.url=http://{env['LISTEN_ADDRESS']}", "silence"]

    silence_id = _run([*amtool, "add", f"alertname={metric}", "-c", "c", "-d", "1h"]).strip()
    [listed] = json.loads(_run([*amtool, "query", "-o", "json"]))
    assert listed["id"] == silence_id and listed["status"] == {"state": "active"}
    assert listed["matchers"] == [
        {"isEqual": True, "isRegex": False, "name": "alertname", "value": metric}
    ]
    assert [s["id"] for s in _saved_governor(env)["silences"]] == [silence_id]  # saved at once

    _set(prometheus_stack, metric, 90)
    _polls(svc, prometheus_proxy, 6)
    assert recording_plugin_dir.records() == [], "a silenced alert's plugin was called"
    assert _history(env) == [("fire", "suppressed", "silenced")]

    _run([*amtool, "expire", silence_id])
    svc.wait_until(
        lambda: recording_plugin_dir.records(), EVENT_TIMEOUT, "the fire once the silence ended"
    )
    [fire] = recording_plugin_dir.records()
    assert (fire["kind"], fire["rule"]) == ("fire", metric)
    [expired] = json.loads(_run([*amtool, "query", "--expired", "-o", "json"]))
    assert (expired["id"], expired["status"]) == (silence_id, {"state": "expired"})
    svc.wait_until(lambda: len(_history(env)) == 2, EVENT_TIMEOUT, "the fire in the history")
    assert _history(env)[1] == ("fire", "executed", "")


def test_pause_holds_every_call_across_a_restart_and_resume_lets_them_run(
    prometheus_stack: PrometheusStack,
    prometheus_proxy: PrometheusProxy,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    metric = "paused_queue_depth"
    _set(prometheus_stack, metric, 10)
    env = _env(prometheus_proxy, metric, recording_plugin_dir, tmp_path)
    svc = _started(service, env, recording_plugin_dir)
    cli = [sys.executable, "-m", "metric_reader"]
    # The URL comes from LISTEN_ADDRESS, as for an operator on the service's machine.
    paused = _run([*cli, "pause", "--for", "1h", "--reason", "db failover"], env)
    assert paused.startswith("paused until ") and "no plugin is called" in paused
    assert _saved_governor(env)["pause"]["reason"] == "db failover"

    _set(prometheus_stack, metric, 90)
    _polls(svc, prometheus_proxy, 4)
    assert svc.stop() == 0
    svc = _started(service, env, recording_plugin_dir)
    _polls(svc, prometheus_proxy, 4)
    assert recording_plugin_dir.records() == [], "a plugin was called while paused"
    assert _history(env) == [("fire", "suppressed", "paused")] * 2  # once per process
    metrics = _http_get(f"http://{env['LISTEN_ADDRESS']}/metrics")[1].decode()
    assert "\nmetric_reader_paused 1.0\n" in metrics
    page = _http_get(f"http://{env['LISTEN_ADDRESS']}/")[1].decode()
    assert "Paused: no plugin is called" in page and "db failover" in page

    assert _run([*cli, "resume"], env).startswith("resumed")
    svc.wait_until(
        lambda: recording_plugin_dir.records(), EVENT_TIMEOUT, "the owed fire after resume"
    )
    assert recording_plugin_dir.records()[0]["kind"] == "fire"
    svc.wait_until(lambda: len(_history(env)) == 3, EVENT_TIMEOUT, "the fire in the history")
    assert _history(env)[2] == ("fire", "executed", "")
    metrics = _http_get(f"http://{env['LISTEN_ADDRESS']}/metrics")[1].decode()
    assert "\nmetric_reader_paused 0.0\n" in metrics
