"""An ``action_test`` sees the governor's decisions (issue 25, point 9): a test group's
rules share one governor configured from the ``config_file``, and an expected call can
be ``outcome: suppressed`` with its ``reason``. Run in process, as ``metric-reader test``
runs a file."""

from __future__ import annotations

from pathlib import Path

from metric_reader._replay._ruletest import run_test_file

CONFIG = """
polling_interval = "1m"

[plugins.restart_pod]
max_actions = 1
per = "1h"

[[rules]]
name = "disk"
metric_name = "disk_used"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">90"
action_plugin = "restart_pod"
"""
TESTS = """
config_file: rules.toml
tests:
  - name: budget
    interval: 1m
    input_series:
      - {{series: 'disk_used{{host="a"}}', values: '95 95 95 10'}}
      - {{series: 'disk_used{{host="b"}}', values: '95 95 95 10'}}
    action_test:
      - eval_time: 3m
        exp_actions:
          - {{at: 0s, plugin: restart_pod, kind: fire, labels: {{host: a}}}}
          - {{at: 0s, plugin: restart_pod, kind: fire, labels: {{host: b}},
             outcome: suppressed, reason: {reason}}}
          - {{at: 3m, plugin: restart_pod, kind: resolve, labels: {{host: a}}}}
"""


def _run(tmp_path: Path, reason: str) -> list[str]:
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "disk_test.yml"
    path.write_text(TESTS.format(reason=reason))
    warnings, groups = run_test_file(path)
    assert warnings == []
    return [failure for group in groups for failure in group.failures]


def test_a_call_over_the_plugins_budget_is_expected_as_suppressed(tmp_path: Path) -> None:
    assert _run(tmp_path, "budget") == []


def test_a_wrong_reason_fails_showing_what_held_the_call_back(tmp_path: Path) -> None:
    assert _run(tmp_path, "storm") == [
        "    action_test at 3m (line 10), \n"
        "        exp:[\n"
        '            0: at 0s: fire by restart_pod, labels {host="a"}\n'
        '          > 1: at 0s: fire by restart_pod, labels {host="b"}, suppressed (storm)\n'
        '            2: at 3m: resolve by restart_pod, labels {host="a"}\n'
        "            ], \n"
        "        got:[\n"
        '            0: at 0s: fire by restart_pod, rule disk, labels {host="a"}, value 95\n'
        '          > 1: at 0s: fire by restart_pod, rule disk, labels {host="b"}, value 95, '
        "suppressed (budget: budget of plugin restart_pod: 1 per 1h0m0s; frees at "
        "1970-01-01 01:00:00 UTC)\n"
        '            2: at 3m: resolve by restart_pod, rule disk, labels {host="a"}, value 95\n'
        "            ]"
    ]
