"""Silences and the pause switch end to end: ``python -m metric_reader`` reading a page the
test serves, the real ``amtool`` (Debian's) adding, querying and expiring a silence over
Alertmanager's API v2, and ``metric-reader pause`` / ``resume`` across a restart.

What a user sees: the plugin calls (the recording plugin notes each), the commands' output,
``/metrics`` and the state file.
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
    RecordingPlugins,
    ScrapeServer,
    Service,
    ServiceFactory,
    _http_get,
    base_env,
    free_port,
)

AMTOOL = shutil.which("amtool")


def _env(server: ScrapeServer, plugins: RecordingPlugins, tmp_path: Path) -> dict[str, str]:
    return {
        "SCRAPE_URL": server.url,
        "METRIC_NAME": "queue_depth",
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


def _polls(svc: Service, server: ScrapeServer, count: int) -> None:
    target = server.requests + count
    svc.wait_until(lambda: server.requests >= target, EVENT_TIMEOUT, f"{count} more polls")


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
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    assert AMTOOL is not None
    scrape_server.set_value("queue_depth", 10)
    env = _env(scrape_server, recording_plugin_dir, tmp_path)
    svc = _started(service, env, recording_plugin_dir)
    amtool = [AMTOOL, f"--alertmanager.url=http://{env['LISTEN_ADDRESS']}", "silence"]

    silence_id = _run([*amtool, "add", "alertname=queue_depth", "-c", "c", "-d", "1h"]).strip()
    [listed] = json.loads(_run([*amtool, "query", "-o", "json"]))
    assert listed["id"] == silence_id and listed["status"] == {"state": "active"}
    assert listed["matchers"] == [
        {"isEqual": True, "isRegex": False, "name": "alertname", "value": "queue_depth"}
    ]
    assert [s["id"] for s in _saved_governor(env)["silences"]] == [silence_id]  # saved at once

    scrape_server.set_value("queue_depth", 90)
    _polls(svc, scrape_server, 6)
    assert recording_plugin_dir.records() == [], "a silenced alert's plugin was called"

    _run([*amtool, "expire", silence_id])
    svc.wait_until(
        lambda: recording_plugin_dir.records(), EVENT_TIMEOUT, "the fire once the silence ended"
    )
    [fire] = recording_plugin_dir.records()
    assert (fire["kind"], fire["labels"]) == ("fire", {})
    [expired] = json.loads(_run([*amtool, "query", "--expired", "-o", "json"]))
    assert (expired["id"], expired["status"]) == (silence_id, {"state": "expired"})


def test_pause_holds_every_call_across_a_restart_and_resume_lets_them_run(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    scrape_server.set_value("queue_depth", 10)
    env = _env(scrape_server, recording_plugin_dir, tmp_path)
    svc = _started(service, env, recording_plugin_dir)
    cli = [sys.executable, "-m", "metric_reader"]
    # The URL comes from LISTEN_ADDRESS, as for an operator on the service's machine.
    paused = _run([*cli, "pause", "--for", "1h", "--reason", "db failover"], env)
    assert paused.startswith("paused until ") and "no plugin is called" in paused
    assert _saved_governor(env)["pause"]["reason"] == "db failover"

    scrape_server.set_value("queue_depth", 90)
    _polls(svc, scrape_server, 4)
    assert svc.stop() == 0
    svc = _started(service, env, recording_plugin_dir)
    _polls(svc, scrape_server, 4)
    assert recording_plugin_dir.records() == [], "a plugin was called while paused"
    metrics = _http_get(f"http://{env['LISTEN_ADDRESS']}/metrics")[1].decode()
    assert "\nmetric_reader_paused 1.0\n" in metrics
    page = _http_get(f"http://{env['LISTEN_ADDRESS']}/")[1].decode()
    assert "Paused: no plugin is called" in page and "db failover" in page

    assert _run([*cli, "resume"], env).startswith("resumed")
    svc.wait_until(
        lambda: recording_plugin_dir.records(), EVENT_TIMEOUT, "the owed fire after resume"
    )
    assert recording_plugin_dir.records()[0]["kind"] == "fire"
    metrics = _http_get(f"http://{env['LISTEN_ADDRESS']}/metrics")[1].decode()
    assert "\nmetric_reader_paused 0.0\n" in metrics
