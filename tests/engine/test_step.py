"""The evaluation step, on a fake clock: which calls a rule owes, to which plugins, and
what settling a call does. The service and the replay both evaluate through it, so this is
what either of them does with a rule's observations."""

from __future__ import annotations

from pathlib import Path

from metric_reader._config import RuleConfig, Settings, load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import (
    EvaluationStep,
    NoData,
    Observation,
    OwedCall,
    Rule,
    State,
    make_rule,
)

MAIL = (("queue", "mail"),)
SMS = (("queue", "sms"),)
RULE = {
    "SCRAPE_URL": "http://127.0.0.1:9/metrics",
    "METRIC_NAME": "queue_depth",
    "THRESHOLD": ">50",
    "BACKOFF_DELAY": "10s",
    "POLLING_INTERVAL": "1s",
    "ACTION_PLUGIN": "pager",
}
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
        expr: up == 0
        labels: {severity: page}
"""


def _rule(**env: str) -> RuleConfig:
    [config] = load_settings({**RULE, **env}).rules
    return config


def _routed(tmp_path: Path) -> Settings:
    (tmp_path / "alerts.yml").write_text(ALERTS)
    (tmp_path / "rules.toml").write_text(ROUTED)
    return load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})


class Owed:
    """Collects the calls the step hands out, as the service's runner would take them."""

    def __init__(self) -> None:
        self.calls: list[OwedCall] = []

    def __call__(self, call: OwedCall) -> None:
        self.calls.append(call)

    def take(self) -> list[OwedCall]:
        calls, self.calls = self.calls, []
        return calls


def _evaluate(step: EvaluationStep, rule: Rule, at: float, *values: float) -> list[OwedCall]:
    owed = Owed()
    step.evaluate(rule, Observation(at, [Sample(MAIL, v) for v in values]), owed)
    return owed.take()


def test_a_call_two_routes_take_retries_only_the_plugin_that_failed(tmp_path: Path) -> None:
    settings = _routed(tmp_path)
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])

    [fire] = _evaluate(step, rule, 0.0, 0.0)
    assert fire.action.kind == "fire"
    assert fire.plugins() == ["pager", "tickets"]
    event = fire.event("tickets", 0.0)
    assert (event.plugin, event.rule, event.labels["severity"]) == ("tickets", "Down", "page")
    fire.report("pager", ok=True)
    fire.report("tickets", ok=False)
    assert fire.settle(0.5) is False

    assert _evaluate(step, rule, 0.5, 0.0) == []
    [retry] = _evaluate(step, rule, 1.0, 0.0)  # one polling interval after the first try
    assert retry.action.kind == "fire"
    assert retry.plugins() == ["tickets"]  # "pager" took it already: never twice
    retry.report("tickets", ok=True)
    assert retry.settle(2.0) is True

    assert _evaluate(step, rule, 3.0, 0.0) == []  # done
    [resolve] = _evaluate(step, rule, 4.0)  # the series left the result: the alert ends
    assert resolve.action.kind == "resolve"
    assert resolve.plugins() == ["pager", "tickets"]  # a new action: every route again


def test_settling_a_call_finishes_its_action_and_the_backoff_counts_from_it() -> None:
    step = EvaluationStep()
    rule = make_rule(_rule())

    [fire] = _evaluate(step, rule, 0.0, 95.0)
    assert _evaluate(step, rule, 1.0, 95.0) == []  # running: never handed out twice
    assert fire.plugins() == ["pager"]
    fire.report("pager", ok=True)
    assert fire.settle(2.0) is True
    level = rule.series[MAIL].base
    assert (level.state, level.fire_count) == (State.FIRING, 1)

    assert _evaluate(step, rule, 9.0, 95.0) == []  # BACKOFF_DELAY=10s from when it started
    [repeat] = _evaluate(step, rule, 10.0, 95.0)
    assert (repeat.action.kind, repeat.action.fire_count) == ("repeat", 1)


def test_a_call_cut_off_before_its_plugins_answered_failed_and_is_owed_again() -> None:
    step = EvaluationStep()
    rule = make_rule(_rule())

    [fire] = _evaluate(step, rule, 0.0, 95.0)
    fire.plugins()  # the call started, then was cut off: no outcome was reported
    assert fire.settle(0.2) is False
    assert rule.series[MAIL].base.fire_count == 0
    [again] = _evaluate(step, rule, 1.0, 95.0)
    assert (again.action.kind, again.plugins()) == ("fire", ["pager"])


def test_a_call_given_back_stays_owed_and_a_follower_owes_nothing_yet() -> None:
    step = EvaluationStep()
    rule = make_rule(_rule())
    owed = Owed()

    step.evaluate(rule, Observation(0.0, [Sample(MAIL, 95.0)]), owed, acting=False)
    assert owed.take() == []  # a follower keeps the fire owed, for when it leads
    [fire] = _evaluate(step, rule, 1.0, 95.0)
    fire.give_back()  # the Lease was lost before the call ran
    [again] = _evaluate(step, rule, 2.0, 95.0)
    assert again.action.kind == "fire" and again.action.fire_count == 0


def test_a_failed_fetch_or_a_read_over_the_series_limit_changes_nothing() -> None:
    step = EvaluationStep()
    rule = make_rule(_rule(SERIES_LIMIT="1"))
    no_data = NoData(rule.name, rule.expression)
    owed = Owed()

    failed = step.evaluate(rule, Observation(0.0, None), owed, no_data=no_data)
    assert (failed.evaluated, failed.refused) == (False, None)
    too_many = [Sample(MAIL, 95.0), Sample(SMS, 95.0)]
    refused = step.evaluate(rule, Observation(1.0, too_many), owed, no_data=no_data)
    assert not refused.evaluated
    assert refused.refused is not None and "SERIES_LIMIT=1" in refused.refused
    assert owed.take() == [] and dict(rule.series) == {}
    assert no_data.empty_polls == 0 and not no_data.active  # neither counted as read

    empty = step.evaluate(rule, Observation(2.0, []), owed, no_data=no_data)
    assert empty.evaluated and no_data.active  # the first read returned no series


def test_a_retired_rule_owes_the_resolve_of_what_had_fired() -> None:
    step = EvaluationStep()
    rule = make_rule(_rule())
    [fire] = _evaluate(step, rule, 0.0, 95.0)
    fire.plugins()
    fire.report("pager", ok=True)
    fire.settle(0.0)

    owed = Owed()
    step.retire(rule, 5.0, owed)
    [resolve] = owed.take()
    assert (resolve.action.kind, resolve.at, resolve.plugins()) == ("resolve", 5.0, ["pager"])
