"""The never-twice record of a call that reaches several plugins: it lives only as long as
the retry of the plugin that failed can come.

Nothing else shows it, so a record kept after its call settled would grow with every
series that ever came and went (label churn), unseen; ``EvaluationStep.partial_deliveries``
counts what is kept.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from metric_reader._config import Settings, load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, OwedCall, Rule, make_rule

ROUTED = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"
rule_files = ["alerts.yml"]

[[routes]]
matchers = ['severity="page"']
action_plugin = "pager"
continue = true

[[routes]]
matchers = ['alertname="Down"']
action_plugin = "tickets"
"""
ALERTS = """\
groups:
  - name: g
    rules:
      - alert: Down
        expr: {expr}
        labels: {{severity: page}}
"""


def _routed(tmp_path: Path, expr: str = "up == 0") -> Settings:
    (tmp_path / "alerts.yml").write_text(ALERTS.format(expr=expr))
    (tmp_path / "rules.toml").write_text(ROUTED)
    return load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})


def _run(calls: list[OwedCall], at: float, failing: Collection[str] = ()) -> None:
    """Run each call as the service would: every plugin in turn, then settle."""
    for call in calls:
        for plugin in call.plugins():
            call.report(plugin, ok=plugin not in failing)
        call.settle(at)


def _evaluate(step: EvaluationStep, rule: Rule, at: float, *series: str) -> list[OwedCall]:
    owed: list[OwedCall] = []
    samples = [Sample((("instance", name),), 0.0) for name in series]
    step.evaluate(rule, Observation(at, samples), owed.append)
    return owed


def test_series_that_come_and_go_leave_no_record_behind(tmp_path: Path) -> None:
    settings = _routed(tmp_path)
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    for n in range(40):
        at = 2.0 * n
        name = f"host-{n}"
        [fire] = _evaluate(step, rule, at, name)
        assert fire.plugins() == ["pager", "tickets"]
        if n % 2:  # both took it: nothing to remember
            _run([fire], at)
            assert step.partial_deliveries == 0
            [resolve] = _evaluate(step, rule, at + 1.0)  # the alert ends
            _run([resolve], at + 1.0)
        else:  # the pager took it, the tickets failed: remembered for their retry...
            _run([fire], at, failing={"tickets"})
            assert step.partial_deliveries == 1
            # ... which never comes: the alert ended first (resolved at the pager, the one
            # that took it) and its series is forgotten.
            [resolve] = _evaluate(step, rule, at + 1.0)
            assert resolve.plugins() == ["pager"]
            _run([resolve], at + 1.0)
        assert step.partial_deliveries == 0
        assert len(rule.series) <= 1  # a resolved alert is forgotten at the next evaluation
    assert _evaluate(step, rule, 80.0) == []
    assert step.partial_deliveries == 0 and dict(rule.series) == {}


def test_a_failed_retry_keeps_the_record_until_the_retry_succeeds(tmp_path: Path) -> None:
    settings = _routed(tmp_path)
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    [fire] = _evaluate(step, rule, 0.0, "a")
    _run([fire], 0.0, failing={"tickets"})
    [retry] = _evaluate(step, rule, 1.0, "a")
    assert retry.plugins() == ["tickets"]
    _run([retry], 1.0, failing={"tickets"})
    assert step.partial_deliveries == 1
    assert _evaluate(step, rule, 2.0, "a") == []  # the retry delay doubled
    [again] = _evaluate(step, rule, 3.0, "a")
    assert again.plugins() == ["tickets"]  # still never the pager twice
    _run([again], 3.0)
    assert step.partial_deliveries == 0


def test_a_rule_a_reload_replaces_leaves_nothing_and_its_successor_starts_afresh(
    tmp_path: Path,
) -> None:
    settings = _routed(tmp_path)
    step = EvaluationStep(settings.routes)
    old = make_rule(settings.rules[0])
    [fire] = _evaluate(step, old, 0.0, "a", "b")[:1]
    _run([fire], 0.0, failing={"tickets"})
    assert step.partial_deliveries == 1

    # A reload changes the rule: the old one retires, resolving "a" at the pager that took
    # it ("b" has its fire still running).
    retired: list[OwedCall] = []
    step.retire(old, 0.5, retired.append)
    assert [(call.action.kind, call.plugins()) for call in retired] == [("resolve", ["pager"])]
    assert step.partial_deliveries == 0
    new = make_rule(_routed(tmp_path, "up < 1").rules[0])
    assert new.name == old.name
    [first, _] = _evaluate(step, new, 1.0, "a", "b")
    # Another rule's first fire of the same series: what the old one's pager took is not
    # this one's.
    assert first.plugins() == ["pager", "tickets"]


def test_a_retired_rule_retries_its_resolve_only_at_the_plugin_that_failed_then_forgets(
    tmp_path: Path,
) -> None:
    settings = _routed(tmp_path)
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    other = make_rule(_routed(tmp_path, "up < 1").rules[0])
    _run(_evaluate(step, rule, 0.0, "a"), 0.0)
    retired: list[OwedCall] = []
    step.retire(rule, 1.0, retired.append)
    [resolve] = retired
    assert resolve.action.kind == "resolve"
    _run([resolve], 1.0, failing={"tickets"})
    assert step.partial_deliveries == 1  # remembered for the retry
    [retry] = _evaluate(step, other, 2.0)  # the retired rule's, at another rule's evaluation
    assert retry.rule is rule and retry.plugins() == ["tickets"]
    _run([retry], 2.0)
    assert step.partial_deliveries == 0
    assert _evaluate(step, other, 3.0) == []
    assert step.retired == 0  # let go of at the next evaluation: nothing left to send
