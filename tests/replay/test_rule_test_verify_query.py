"""A rule test judges fixes by the rule's ``verify_query``, evaluated in process on the
test's input series at each evaluation while a fix is pending: a deployment back to
available verifies its fix though the worker's age still breaches; one still unavailable
does not. Run in process, as ``metric-reader test`` runs a file."""

from __future__ import annotations

from pathlib import Path

from metric_reader._replay._ruletest import run_test_file

CONFIG = """
polling_interval = "1m"

[[rules]]
name = "stuck"
metric_name = "worker_age_seconds"
threshold = ">600"
backoff_delay = "3m"
action_plugin = "restart_pod"
verify_within = "2m"
verify_query = "replicas_unavailable > 0"
max_attempts = 2
escalate_plugin = "pager"
"""
TESTS = """
config_file: rules.toml
tests:
  - interval: 1m
    input_series:
      - series: 'worker_age_seconds{deployment="x"}'
        values: '900x6'
      - series: 'worker_age_seconds{deployment="y"}'
        values: '900x6'
      - series: 'replicas_unavailable{deployment="x"}'
        values: '1 0x5'
      - series: 'replicas_unavailable{deployment="y"}'
        values: '1x6'
    action_test:
      - eval_time: 5m
        exp_actions:
          - {at: 0s, plugin: restart_pod, kind: fire, labels: {deployment: x}}
          - {at: 0s, plugin: restart_pod, kind: fire, labels: {deployment: y}}
          - {at: 2m, plugin: pager, kind: unverified, labels: {deployment: y}}
          - {at: 3m, plugin: restart_pod, kind: repeat, labels: {deployment: x}}
          - {at: 3m, plugin: restart_pod, kind: repeat, labels: {deployment: y}}
          - {at: 5m, plugin: pager, kind: gave_up, labels: {deployment: y}}
"""


def test_an_action_test_sees_fixes_judged_by_the_verify_query(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "stuck_test.yml"
    path.write_text(TESTS)
    warnings, groups = run_test_file(path)
    assert warnings == []
    assert [failure for group in groups for failure in group.failures] == []
