"""Inhibition in backtests and rule tests (issue 26, point 6): they share the evaluation
step and one governor configured from the settings, so an inhibited call shows as
suppressed with the reason ``inhibited``, and an ``action_test`` can expect it."""

from __future__ import annotations

from pathlib import Path

from metric_reader._config import load_settings
from metric_reader._replay._backtest import RuleBacktest, Window, replay_histories
from metric_reader._replay._report import summary, text_report
from metric_reader._replay._ruletest import run_test_file
from metric_reader._sources import RangeSeries, evaluation_times

CONFIG = """
polling_interval = "1m"

[[rules]]
name = "NodeNotReady"
metric_name = "node_not_ready"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">0"

[[rules]]
name = "PodCrashLooping"
metric_name = "pod_restarts"
scrape_url = "http://127.0.0.1:9/metrics"
threshold = ">3"
backoff_delay = "1h"
action_plugin = "restart_pod"

[[inhibit_rules]]
name = "node-down"
source_matchers = ['alertname="NodeNotReady"']
target_matchers = ['alertname="PodCrashLooping"']
equal = ["node"]
"""
TESTS = """
config_file: rules.toml
tests:
  - name: node down
    interval: 1m
    input_series:
      - {series: 'node_not_ready{node="n1"}', values: '1 1 0 0'}
      - {series: 'pod_restarts{node="n1", pod="p1"}', values: '5 5 5 5'}
      - {series: 'pod_restarts{node="n2", pod="p2"}', values: '5 5 5 5'}
    action_test:
      - eval_time: 3m
        exp_actions:
          - {at: 0s, plugin: restart_pod, kind: fire, labels: {node: n1, pod: p1},
             outcome: suppressed, reason: inhibited}
          - {at: 0s, plugin: restart_pod, kind: fire, labels: {node: n2, pod: p2}}
          - {at: 2m, plugin: restart_pod, kind: fire, labels: {node: n1, pod: p1}}
"""
START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


def test_an_action_test_expects_an_inhibited_call(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(CONFIG)
    path = tmp_path / "node_test.yml"
    path.write_text(TESTS)
    warnings, groups = run_test_file(path)
    assert (warnings, [failure for group in groups for failure in group.failures]) == ([], [])


def test_a_backtest_shows_the_inhibited_call_and_what_inhibited_it(tmp_path: Path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(CONFIG)
    settings = load_settings({"CONFIG_FILE": str(config)})
    node, pod = settings.rules
    times = evaluation_times(START, START + 240.0, 60.0)
    ms = [round(at * 1000) for at in times]
    down = [
        RangeSeries(
            {"__name__": "node_not_ready", "node": "n1"},
            dict(zip(ms, [1.0, 1.0, 0.0, 0.0, 0.0], strict=True)),
        )
    ]
    crashing = [
        RangeSeries({"__name__": "pod_restarts", "node": "n1", "pod": "p1"}, {t: 5.0 for t in ms})
    ]
    node_run, pod_run = replay_histories(settings, [(node, down, times), (pod, crashing, times)])
    assert [(call.at - START, call.event.kind) for call in pod_run.calls] == [(120.0, "fire")]
    results = [
        RuleBacktest(node, 60.0, "node_not_ready", node_run),
        RuleBacktest(pod, 60.0, "pod_restarts", pod_run),
    ]
    assert summary(results) == (
        "would have acted 1 time on 1 series; 1 stopped by the inhibit rule node-down "
        "(2 rules backtested)"
    )
    assert (
        "  2026-01-01T00:00:00Z  fire: restart_pod not called: suppressed (inhibited): "
        'inhibited by firing alert {alertname="NodeNotReady", node="n1"} (node-down)'
    ) in text_report(results, Window(START, START + 240.0))
