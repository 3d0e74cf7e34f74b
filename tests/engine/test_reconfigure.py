"""``Rule.reconfigure``: a reload keeps a rule of the same identity under new settings.
Its series keep their state and are judged by the new settings from their next
evaluation; a hard level added starts idle, one removed resolves what it had fired."""

from __future__ import annotations

from metric_reader._config import RuleConfig, load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, OwedCall, Rule, State, make_rule

MAIL = (("queue", "mail"),)
RULE = {
    "SCRAPE_URL": "http://127.0.0.1:9/metrics",
    "METRIC_NAME": "queue_depth",
    "THRESHOLD": ">50",
    "POLLING_INTERVAL": "1s",
    "ACTION_PLUGIN": "pager",
}


def _config(**changes: str) -> RuleConfig:
    [config] = load_settings({**RULE, **changes}).rules
    return config


def _run(owed: list[OwedCall], at: float) -> list[tuple[str, str]]:
    done = []
    for call in owed:
        call.plugins()
        call.report("pager", ok=True)
        call.settle(at)
        done.append((call.action.level, call.action.kind))
    return done


def _poll(step: EvaluationStep, rule: Rule, at: float, value: float) -> list[tuple[str, str]]:
    owed: list[OwedCall] = []
    step.evaluate(rule, Observation(at, [Sample(MAIL, value)]), owed.append)
    return _run(owed, at)


def test_a_removed_hard_level_that_fired_resolves_and_the_base_goes_on() -> None:
    step = EvaluationStep()
    rule = make_rule(_config(HARD_THRESHOLD=">90"))
    assert _poll(step, rule, 0.0, 95.0) == [("base", "fire"), ("hard", "fire")]
    owed: list[OwedCall] = []
    step.reconfigure(rule, _config(), 1.5, owed.append)
    assert [call.event("pager", 1.5).threshold for call in owed] == [">90"]
    assert _run(owed, 1.5) == [("hard", "resolve")]
    assert _poll(step, rule, 2.0, 95.0) == []  # the base level fired once, and goes on
    assert rule.series[MAIL].worst is State.FIRING and rule.series[MAIL].hard is None


def test_an_added_hard_level_starts_idle_and_is_judged_from_the_next_tick() -> None:
    step = EvaluationStep()
    rule = make_rule(_config())
    assert _poll(step, rule, 0.0, 95.0) == [("base", "fire")]
    owed: list[OwedCall] = []
    step.reconfigure(rule, _config(HARD_THRESHOLD=">90"), 0.5, owed.append)
    assert owed == []
    hard = rule.series[MAIL].hard
    assert hard is not None and hard.state is State.OK
    assert _poll(step, rule, 1.0, 95.0) == [("hard", "fire")]


def test_a_longer_duration_keeps_a_pending_series_pending_until_it_is_reached() -> None:
    step = EvaluationStep()
    rule = make_rule(_config(THRESHOLD_DURATION="2s"))
    assert _poll(step, rule, 0.0, 95.0) == []
    step.reconfigure(rule, _config(THRESHOLD_DURATION="4s"), 0.5, lambda call: None)
    assert _poll(step, rule, 2.0, 95.0) == []
    assert rule.series[MAIL].worst is State.PENDING
    assert _poll(step, rule, 4.0, 95.0) == [("base", "fire")]


def test_a_hard_level_removed_while_its_fire_runs_resolves_once_the_fire_is_over() -> None:
    step = EvaluationStep()
    rule = make_rule(_config(HARD_THRESHOLD=">90", HARD_ACTION_PLUGIN="pager"))
    owed: list[OwedCall] = []
    step.evaluate(rule, Observation(0.0, [Sample(MAIL, 95.0)]), owed.append)
    base, hard = owed
    _run([base], 0.0)
    assert hard.action.level == "hard" and hard.plugins() == ["pager"]  # still running
    removed: list[OwedCall] = []
    step.reconfigure(rule, _config(), 0.5, removed.append)
    assert removed == []  # nothing to resolve before the fire is over
    _run([hard], 1.0)  # it succeeded
    owed = []
    step.evaluate(rule, Observation(2.0, [Sample(MAIL, 95.0)]), owed.append)
    assert [call.event("pager", 2.0).threshold for call in owed] == [">90"]
    assert _run(owed, 2.0) == [("hard", "resolve")]
    assert _poll(step, rule, 3.0, 95.0) == []  # once; the base level goes on firing
    assert rule.series[MAIL].hard is None


def test_a_failed_resolve_of_a_removed_hard_level_is_retried() -> None:
    step = EvaluationStep()
    rule = make_rule(_config(HARD_THRESHOLD=">90", HARD_ACTION_PLUGIN="pager"))
    assert _poll(step, rule, 0.0, 95.0) == [("base", "fire"), ("hard", "fire")]
    removed: list[OwedCall] = []
    step.reconfigure(rule, _config(), 0.5, removed.append)
    [resolve] = removed
    assert resolve.plugins() == ["pager"]
    resolve.report("pager", ok=False)
    resolve.settle(0.5)
    assert _poll(step, rule, 1.0, 95.0) == []  # one polling interval after the try
    assert _poll(step, rule, 1.5, 95.0) == [("hard", "resolve")]
    assert _poll(step, rule, 5.0, 95.0) == []
    assert rule.series[MAIL].hard is None
