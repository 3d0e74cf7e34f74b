"""Recording rules in ``metric-reader test``, evaluated as promtool evaluates them (issue 24,
point 3): group by group at each step in ``group_eval_order``, their output written back so
that a later recording rule, an alert and ``promql_expr_test`` read it, and the alerts
written as ``ALERTS`` and ``ALERTS_FOR_STATE``, gone (stale) once resolved. The same file
passes under Debian's promtool 2.42 when it is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from metric_reader._replay._ruletest import run_test_file

RULES = """\
groups:
  - name: alerts
    rules:
      - alert: ErrorsHigh
        expr: job:errors:rate1m > 0.5
        for: 2m
        labels: {severity: page}
        annotations: {summary: '{{ $labels.job }} errors at {{ $value }}'}
  - name: recording
    rules:
      - record: job:errors:rate1m
        expr: sum by (job) (rate(errors_total[1m]))
      - record: job:errors:doubled
        expr: job:errors:rate1m * 2
        labels: {source: recorded}
"""

TESTS = """\
rule_files: [rules.yml]
evaluation_interval: 1m
group_eval_order: [recording, alerts]
tests:
  - interval: 1m
    input_series:
      - series: 'errors_total{job="api", instance="a"}'
        values: '0+60x10 600x5'
    promql_expr_test:
      - expr: job:errors:rate1m
        eval_time: 5m
        exp_samples:
          - labels: 'job:errors:rate1m{job="api"}'
            value: 1
      - expr: job:errors:doubled
        eval_time: 5m
        exp_samples:
          - labels: 'job:errors:doubled{job="api", source="recorded"}'
            value: 2
      - expr: count by (alertname, alertstate) (ALERTS)
        eval_time: 2m
        exp_samples:
          - labels: '{alertname="ErrorsHigh", alertstate="pending"}'
            value: 1
      - expr: ALERTS_FOR_STATE
        eval_time: 4m
        exp_samples:
          - labels: 'ALERTS_FOR_STATE{alertname="ErrorsHigh", job="api", severity="page"}'
            value: 60
      - expr: ALERTS
        eval_time: 14m
        exp_samples: []
    alert_rule_test:
      - eval_time: 3m
        alertname: ErrorsHigh
        exp_alerts:
          - exp_labels: {job: api, severity: page}
            exp_annotations: {summary: 'api errors at 1'}
      - eval_time: 13m
        alertname: ErrorsHigh
        exp_alerts: []
"""


def test_recorded_series_and_alerts_are_read_back_as_promtool_reads_them(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    test = tmp_path / "rules_test.yml"
    test.write_text(TESTS)
    warnings, outcomes = run_test_file(test)
    assert warnings == []
    assert [failure for outcome in outcomes for failure in outcome.failures] == []
    if shutil.which("promtool") is not None:
        promtool = subprocess.run(
            ["promtool", "test", "rules", test.name], cwd=tmp_path, capture_output=True, text=True
        )
        assert promtool.returncode == 0, promtool.stderr


def test_a_recording_rule_that_fails_to_evaluate_ends_its_group_in_promtools_words(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - record: both\n        expr: a + on() b\n"
    )
    test = tmp_path / "rules_test.yml"
    test.write_text(
        "rule_files: [rules.yml]\ntests:\n  - interval: 1m\n    input_series:\n"
        "      - {series: 'a{x=\"1\"}', values: '1x3'}\n"
        "      - {series: 'a{x=\"2\"}', values: '1x3'}\n"
        "      - {series: 'b', values: '1x3'}\n"
        "    promql_expr_test:\n      - {expr: both, eval_time: 2m, exp_samples: []}\n"
    )
    _, outcomes = run_test_file(test)
    assert [failure for outcome in outcomes for failure in outcome.failures] == [
        "    rule: both, time: 0s, err: multiple matches for labels: many-to-one matching must "
        "be explicit (group_left/group_right)"  # promtool 2.42's words, the same line
    ]
