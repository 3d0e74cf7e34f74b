"""Approval requests in rule tests (issue 26, point 6): an ``action_test`` expects the
``approval_request`` call and the fix held back (``reason: approval``); ``approve_at`` in
``plugin_failures`` approves what is pending then, and the fix runs at that evaluation,
once. Without it nothing is approved: the fix stays held. Run in process, as
``metric-reader test`` runs a file."""

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
action_plugin = "restart_pod"
mode = "approve"
approval_plugin = "chat"
"""
TESTS = """
config_file: rules.toml
tests:
  - name: approve
    interval: 1m
    input_series:
      - {{series: 'disk_used{{host="a"}}', values: '95 95 95 95 95 10'}}
      - {{series: 'disk_used{{host="b"}}', values: '95 95 95 95 95 10'}}
    plugin_failures:
{script}
    action_test:
      - eval_time: 5m
        exp_actions:
          - {{at: 0s, plugin: chat, kind: approval_request, labels: {{host: a}}}}
          - {{at: 0s, plugin: chat, kind: approval_request, labels: {{host: b}}}}
          - {{at: 0s, plugin: restart_pod, kind: fire, labels: {{host: a}},
             outcome: suppressed, reason: approval}}
          - {{at: 0s, plugin: restart_pod, kind: fire, labels: {{host: b}},
             outcome: suppressed, reason: approval}}
{approved}
"""
APPROVED = """\
          - {at: 3m, plugin: restart_pod, kind: fire, labels: {host: a}}
          - {at: 5m, plugin: restart_pod, kind: resolve, labels: {host: a}}"""


def _run(tmp_path: Path, script: str, approved: str) -> list[str]:
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "disk_test.yml"
    path.write_text(TESTS.format(script=script, approved=approved))
    warnings, groups = run_test_file(path)
    assert warnings == []
    return [failure for group in groups for failure in group.failures]


def test_approve_at_runs_the_held_fix_of_that_series_once(tmp_path: Path) -> None:
    script = "      - {approve_at: 3m, rule: disk, labels: {host: a}}"
    assert _run(tmp_path, script, APPROVED) == []


def test_without_an_approval_the_fix_stays_held(tmp_path: Path) -> None:
    assert _run(tmp_path, "      []", "") == []
    failures = _run(tmp_path, "      []", APPROVED)
    assert len(failures) == 1 and "> 4: at 3m: fire by restart_pod" in failures[0]
