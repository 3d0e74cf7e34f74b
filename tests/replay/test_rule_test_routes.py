"""Never twice, on the replay side: ``metric-reader test`` with an alert that two routes
take and a plugin that fails once. The retry calls the failed plugin alone, as the service
does (``tests/service/test_scheduler.py`` holds the service to it); a rule test showing the
other plugin called again would tell a user the wrong story about their routes.

A real file, a real subprocess and a throwaway Prometheus (Debian's prometheus package).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

ALERTS = """\
groups:
  - name: hosts
    rules:
      - alert: HostDown
        expr: up == 0
        labels: {severity: page}
"""
CONFIG = """\
rule_files = ["alerts.yml"]
polling_interval = "1m"

[[routes]]
matchers = ['severity="page"']
action_plugin = "pager"
continue = true

[[routes]]
matchers = ['alertname=HostDown']
action_plugin = "tickets"
"""
LABELS = "{alertname: HostDown, instance: a, severity: page}"
TESTS = f"""\
config_file: rules.toml
tests:
  - name: one route's plugin fails once
    interval: 1m
    input_series:
      - series: 'up{{instance="a"}}'
        values: '1 0x3 1'
    plugin_failures:
      - plugin: tickets
        times: 1
    action_test:
      - eval_time: 6m
        exp_actions:
          - {{at: 1m, plugin: pager, kind: fire, labels: {LABELS}}}
          - {{at: 1m, plugin: tickets, kind: fire, labels: {LABELS}, failed: true}}
          - {{at: 2m, plugin: tickets, kind: fire, labels: {LABELS}}}
          - {{at: 5m, plugin: pager, kind: resolve, labels: {LABELS}}}
          - {{at: 5m, plugin: tickets, kind: resolve, labels: {LABELS}}}
"""


@pytest.mark.skipif(
    shutil.which("prometheus") is None or shutil.which("promtool") is None,
    reason="needs Debian's prometheus package",
)
def test_the_retry_of_an_alert_two_routes_take_calls_only_the_plugin_that_failed(
    tmp_path: Path,
) -> None:
    (tmp_path / "alerts.yml").write_text(ALERTS)
    (tmp_path / "rules.toml").write_text(CONFIG)
    test = tmp_path / "routes_test.yml"
    test.write_text(TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "metric_reader", "test", str(test)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"Unit Testing:  {test}\n  SUCCESS\n\n"
