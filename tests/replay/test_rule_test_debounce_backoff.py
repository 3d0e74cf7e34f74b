"""Debounce and escalating repeats in a rule test (issue 26, points 4-6): ``metric-reader
test`` runs the same evaluation step as the service, so an ``action_test`` shows a flapping
series held back by ``breach_count``/``breach_window`` and the repeats growing by
``backoff_multiplier`` up to ``backoff_max``. Run in process, as the command runs a file."""

from __future__ import annotations

from pathlib import Path

from metric_reader._replay._ruletest import run_test_file

CONFIG = """
polling_interval = "1m"

[[rules]]
name = "flap"
metric_name = "errors"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">90"
breach_count = 3
breach_window = 5
action_plugin = "log_action"

[[rules]]
name = "stuck"
metric_name = "queue"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">90"
backoff_delay = "1m"
backoff_multiplier = 2
backoff_max = "4m"
action_plugin = "log_action"
"""
TESTS = """
config_file: rules.toml
tests:
  - name: debounce and escalating repeats
    interval: 1m
    input_series:
      - {series: 'errors{host="two_of_five"}', values: '95 10 95 10 10 95 10 95 10 10'}
      - {series: 'errors{host="three_of_five"}', values: '95 10 95 10 95 95 10 95 10 95'}
      - {series: 'queue', values: '95x15 10 95x3'}
    action_test:
      - eval_time: 19m
        exp_actions:
          - {at: 0s, plugin: log_action, kind: fire, labels: {}}
          - {at: 1m, plugin: log_action, kind: repeat, labels: {}}
          - {at: 3m, plugin: log_action, kind: repeat, labels: {}}
          - {at: 4m, plugin: log_action, kind: fire, labels: {host: three_of_five}}
          - {at: 7m, plugin: log_action, kind: repeat, labels: {}}
          - {at: 11m, plugin: log_action, kind: repeat, labels: {}}
          - {at: 15m, plugin: log_action, kind: repeat, labels: {}}
          - {at: 16m, plugin: log_action, kind: resolve, labels: {}}
          - {at: 17m, plugin: log_action, kind: fire, labels: {}}
          - {at: 18m, plugin: log_action, kind: repeat, labels: {}}
"""


def test_a_flapping_series_and_growing_repeats_show_in_an_action_test(tmp_path: Path) -> None:
    """2 of 5 never fires, 3 of 5 fires once (at its third breach, 4m); the stuck queue is
    acted on 1, 2, 4, 4, 4 minutes apart, and its second breach starts again at 1m."""
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "flap_test.yml"
    path.write_text(TESTS)
    warnings, groups = run_test_file(path)
    assert warnings == []
    assert [failure for group in groups for failure in group.failures] == []
