"""A test group's ``external_labels`` and ``external_url`` reach the alert templates of its
rules (``$externalLabels``, ``$externalURL``), as promtool 2.42 loads each group's rules with
them; they are not added to the alerts' labels (only Prometheus' notifier adds them).

In process, with a throwaway Prometheus for the alert's expression (Debian's prometheus);
the same file under promtool, when it is installed, passes too."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from metric_reader._replay._ruletest import run_test_file

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="needs Debian's prometheus"
)

ALERTS = """\
groups:
  - name: hosts
    rules:
      - alert: HostDown
        expr: up == 0
        labels: {site: '{{ $externalLabels.region }}'}
        annotations:
          summary: '{{ $labels.instance }}@{{ $externalLabels.region }} is down'
          link: '{{ $externalURL }}/alerts'
"""
TESTS = """\
rule_files: [alerts.yml]
tests:
  - name: with external labels
    external_labels: {region: eqiad}
    external_url: https://prom.example
    input_series:
      - {series: 'up{instance="foo"}', values: '0'}
    alert_rule_test:
      - eval_time: 0m
        alertname: HostDown
        exp_alerts:
          - exp_labels: {instance: foo, site: eqiad}
            exp_annotations:
              summary: foo@eqiad is down
              link: https://prom.example/alerts
  - name: without
    input_series:
      - {series: 'up{instance="foo"}', values: '0'}
    alert_rule_test:
      - eval_time: 0m
        alertname: HostDown
        exp_alerts:
          - exp_labels: {instance: foo}
            exp_annotations: {summary: foo@ is down, link: /alerts}
"""


def test_a_groups_external_labels_and_url_render_in_its_alerts(tmp_path: Path) -> None:
    (tmp_path / "alerts.yml").write_text(ALERTS)
    test_file = tmp_path / "test.yml"
    test_file.write_text(TESTS)

    warnings, outcomes = run_test_file(test_file)

    assert warnings == []
    assert [(o.name, o.failures) for o in outcomes] == [
        ("with external labels", []),
        ("without", []),
    ]
    if shutil.which("promtool") is not None:
        promtool = subprocess.run(
            ["promtool", "test", "rules", "test.yml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert promtool.returncode == 0, promtool.stdout + promtool.stderr
