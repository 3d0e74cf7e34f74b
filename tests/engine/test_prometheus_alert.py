"""An alerting rule of a Prometheus rule file, on a fake clock: each series of the result
is an alert, NaN included; leaving the result ends it (after ``keep_firing_for``, counted
from the first evaluation without it); its labels and annotations are rendered per series."""

from __future__ import annotations

import math
from pathlib import Path

from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import AlertingRule, State, make_rule

RULES = """\
groups:
  - name: g
    interval: 10s
    rules:
      - alert: QueueStuck
        expr: queue_age_seconds > 600
        for: 20s
        keep_firing_for: 15s
        labels:
          severity: '{{ if gt $value 3600.0 }}page{{ else }}ticket{{ end }}'
          empty: '{{ $labels.nothing }}'
        annotations:
          summary: 'Queue {{ $labels.queue }} is {{ $value | humanizeDuration }} old'
"""


def test_an_alert_fires_renders_its_labels_and_ends_as_prometheus_does(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(RULES)
    config = tmp_path / "rules.toml"
    config.write_text('action_plugin = "log_action"\nrule_files = ["a.yml"]\n')
    [settings_rule] = load_settings({"CONFIG_FILE": str(config)}).rules
    rule = make_rule(settings_rule)
    labels = (("queue", "mail"),)
    assert rule.evaluate(0, [Sample(labels, 7200.0)]) == []  # pending
    assert rule.evaluate(10, [Sample(labels, math.nan)]) == []  # NaN: still in the result
    [fire] = rule.evaluate(20, [Sample(labels, 7300.0)])
    event = rule.event(fire, 20, "log_action")
    assert event.metric_name == "QueueStuck" and event.threshold == "queue_age_seconds > 600"
    assert dict(event.labels) == {"queue": "mail", "severity": "page", "alertname": "QueueStuck"}
    assert dict(event.annotations) == {"summary": "Queue mail is 2h 1m 40s old"}
    rule.finish(20, fire, True)
    assert rule.evaluate(30, []) == []  # gone: keeps firing 15 s from here
    assert rule.series[labels].base.state is State.FIRING
    assert rule.evaluate(44.9, []) == []
    [resolve] = rule.evaluate(45, [])
    assert resolve.kind == "resolve"
    rule.finish(45, resolve, True)
    assert rule.evaluate(55, []) == []
    assert not rule.series  # an alert that ended is forgotten once its resolve is done


def test_a_quiet_alert_holds_no_series_not_even_one_restored_from_an_old_state_file(
    tmp_path: Path,
) -> None:
    """An expression returning nothing is the alert's healthy state: no placeholder series
    (the "no labels" row of a rule that never saw one); one a state file kept from before
    is dropped at the next evaluation."""
    (tmp_path / "a.yml").write_text(RULES)
    config = tmp_path / "rules.toml"
    config.write_text('action_plugin = "log_action"\nrule_files = ["a.yml"]\n')
    [settings_rule] = load_settings({"CONFIG_FILE": str(config)}).rules
    rule = make_rule(settings_rule)
    for at in (0.0, 10.0, 20.0):
        assert rule.evaluate(at, []) == []
    assert not rule.series

    plain = tmp_path / "plain.toml"  # a rule that reads a metric keeps its placeholder
    plain.write_text(
        'scrape_url = "http://app.test/metrics"\n'
        '[[rules]]\nname = "q"\nmetric_name = "q"\nthreshold = ">1"\n'
    )
    [plain_rule] = load_settings({"CONFIG_FILE": str(plain)}).rules
    before = make_rule(plain_rule)
    assert isinstance(before, AlertingRule) and isinstance(rule, AlertingRule)
    before.evaluate(0.0, [])
    [saved] = before.snapshot().series
    assert saved.placeholder and saved.labels == ()
    rule.restore(before.snapshot(), 25.0)  # as a state file written before would
    assert list(rule.series) == [()]
    assert rule.evaluate(30.0, []) == []
    assert not rule.series
