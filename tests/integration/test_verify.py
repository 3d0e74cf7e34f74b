"""Verifying fixes end to end against a real Prometheus (issue 26, point 1): values pushed to
a Pushgateway, scraped by Prometheus, read by ``python -m metric_reader``, fixed by the
``recorder`` plugin (which fixes nothing) and escalated to ``recorder_hard``; every call
read back with ``metric-reader history --format json``."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    PrometheusStack,
    RecordingPlugins,
    ServiceFactory,
    _http_get,
    base_env,
    free_port,
)

METRIC = "verify_used"


def _history(env: dict[str, str]) -> list[dict[str, Any]]:
    if not Path(env["HISTORY_FILE"]).exists():
        return []
    done = subprocess.run(
        [sys.executable, "-m", "metric_reader", "history", "--format", "json", "--limit", "1000"],
        env=base_env(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows[::-1]  # oldest first


def _calls(plugins: RecordingPlugins, rule: str) -> list[tuple[str, str]]:
    return [(r["plugin"], r["kind"]) for r in plugins.records() if r["rule"] == rule]


def test_a_fix_that_never_holds_is_given_up_after_three_and_one_that_holds_is_verified(
    prometheus_stack: PrometheusStack,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    def push(stuck: float, healed: float) -> None:
        prometheus_stack.push_many(
            METRIC, [(METRIC, {"disk": "stuck"}, stuck), (METRIC, {"disk": "healed"}, healed)]
        )

    push(95.0, 95.0)
    prometheus_stack.wait_visible(f"count({METRIC} > 90) or vector(0)", 2.0)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'prometheus_endpoint = "{prometheus_stack.prometheus_url}"\n'
        'polling_interval = "250ms"\n'
        'threshold = ">90"\n'
        'backoff_delay = "1s"\n'
        'action_plugin = "recorder"\n'
        'escalate_plugin = "recorder_hard"\n'
        "max_attempts = 3\n"
        "[[rules]]\n"
        'name = "stuck"\n'
        f'metric_name = "{METRIC}"\n'
        "label_filters = 'disk=\"stuck\"'\n"
        'verify_within = "1s"\n'
        "[[rules]]\n"
        'name = "healed"\n'
        f'metric_name = "{METRIC}"\n'
        "label_filters = 'disk=\"healed\"'\n"
        'verify_within = "5s"\n'  # time for the recovery pushed below to be scraped
    )
    listen = f"127.0.0.1:{free_port()}"
    env = {
        "LISTEN_ADDRESS": listen,
        "CONFIG_FILE": str(config),
        "HISTORY_FILE": str(tmp_path / "history.sqlite"),
        **recording_plugin_dir.env,
    }
    svc = service(env)
    svc.extra_diagnostics = [recording_plugin_dir.describe]
    plugins = recording_plugin_dir

    # The healed series: its fix holds once the test pushes the recovery.
    svc.wait_until(lambda: _calls(plugins, "healed"), EVENT_TIMEOUT, "the fire of healed")
    push(95.0, 10.0)

    # The stuck series: fire, repeat, repeat, each failing to hold within 1s.
    given_up = [("recorder_hard", "unverified"), ("recorder_hard", "unverified")]
    tried = [("recorder", "fire"), ("recorder", "repeat"), ("recorder", "repeat")]
    svc.wait_until(
        lambda: ("recorder_hard", "gave_up") in _calls(plugins, "stuck"),
        EVENT_TIMEOUT,
        lambda: f"gave_up for stuck; calls {_calls(plugins, 'stuck')}",
    )
    gave_up_at = time.monotonic()
    calls = _calls(plugins, "stuck")
    assert sorted(calls) == sorted([*tried, *given_up, ("recorder_hard", "gave_up")])
    assert [c for c in calls if c[0] == "recorder"] == tried
    svc.wait_until(
        lambda: any(r["rule"] == "healed" and r["verified"] for r in _history(env)),
        EVENT_TIMEOUT,
        "the fix of healed verified",
    )
    # Two more backoff periods of the stuck breach call no plugin: the loop breaker.
    svc.wait_until(lambda: time.monotonic() >= gave_up_at + 2.0, 5.0, "two backoff periods")
    assert _calls(plugins, "stuck") == calls

    push(10.0, 10.0)  # the stuck breach ends: its resolve, and a new breach is tried again
    svc.wait_until(
        lambda: ("recorder", "resolve") in _calls(plugins, "stuck"), EVENT_TIMEOUT, "resolve"
    )
    push(95.0, 10.0)
    svc.wait_until(
        lambda: _calls(plugins, "stuck")[-1:] == [("recorder", "fire")], EVENT_TIMEOUT, "fire"
    )

    rows = _history(env)
    stuck = [
        (r["plugin"], r["kind"], r["outcome"], r["verified"]) for r in rows if r["rule"] == "stuck"
    ]
    # A repeat and the escalation of the fix before it run side by side: either row first.
    assert sorted(stuck[:6], key=str) == sorted(
        [
            ("recorder", "fire", "executed", False),
            ("recorder_hard", "unverified", "executed", None),
            ("recorder", "repeat", "executed", False),
            ("recorder_hard", "unverified", "executed", None),
            ("recorder", "repeat", "executed", False),
            ("recorder_hard", "gave_up", "executed", None),
        ],
        key=str,
    )
    assert [row[1] for row in stuck[:6] if row[0] == "recorder_hard"] == [
        "unverified",
        "unverified",
        "gave_up",
    ]
    assert stuck[6:8] == [
        ("recorder", "resolve", "executed", None),
        ("recorder", "fire", "executed", None),
    ]
    healed = [(r["kind"], r["outcome"], r["verified"]) for r in rows if r["rule"] == "healed"]
    assert healed == [("fire", "executed", True), ("resolve", "executed", None)]
    _, page = _http_get(f"http://{listen}/metrics")
    text = page.decode()
    assert (
        'metric_reader_fixes_total{plugin="recorder",result="unverified",rule="stuck"} 3.0' in text
    )
    assert (
        'metric_reader_fixes_total{plugin="recorder",result="verified",rule="healed"} 1.0' in text
    )
