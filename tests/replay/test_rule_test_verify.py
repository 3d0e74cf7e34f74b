"""An ``action_test`` sees fixes that did not hold (issue 26, point 6): the replay verifies
them on the test's input series, so a test can expect the ``unverified`` and ``gave_up``
calls to the ``escalate_plugin``. Run in process, as ``metric-reader test`` runs a file."""

from __future__ import annotations

from pathlib import Path

from metric_reader._replay._ruletest import run_test_file

CONFIG = """
polling_interval = "1m"

[[rules]]
name = "disk"
metric_name = "disk_used"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">90"
backoff_delay = "1m"
action_plugin = "restart_pod"
verify_within = "2m"
max_attempts = 2
escalate_plugin = "pager"
"""
TESTS = """
config_file: rules.toml
tests:
  - name: a fix that never holds
    interval: 1m
    input_series:
      - series: 'disk_used{host="a"}'
        values: '95x8 10'
    action_test:
      - eval_time: 9m
        exp_actions:
          - {at: 0s, plugin: restart_pod, kind: fire, labels: {host: a}}
          - {at: 2m, plugin: pager, kind: unverified, labels: {host: a}}
          - {at: 2m, plugin: restart_pod, kind: repeat, labels: {host: a}}
          - {at: 4m, plugin: pager, kind: gave_up, labels: {host: a}}
          - {at: 9m, plugin: restart_pod, kind: resolve, labels: {host: a}}
"""


def test_an_action_test_expects_the_unverified_and_gave_up_calls(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "disk_test.yml"
    path.write_text(TESTS)
    warnings, groups = run_test_file(path)
    assert warnings == []
    assert [failure for group in groups for failure in group.failures] == []
