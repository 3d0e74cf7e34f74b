"""A rule a reload retires (removed, or replaced by a rule of another identity) is
evaluated no more, but still sends what it owes: the resolve of a breach whose fire was
running at the reload, once that fire is over, and a failed resolve, retried with the
usual delays until it succeeds. The step hands them out at the evaluations of the rules
that remain.

Through the evaluation step on a fake clock, which the service and the replay share.
"""

from __future__ import annotations

from metric_reader._config import RuleConfig, load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, OwedCall, Rule, make_rule

MAIL = (("queue", "mail"),)
SMS = (("queue", "sms"),)


def _config(name: str, **env: str) -> RuleConfig:
    [config] = load_settings(
        {
            "SCRAPE_URL": "http://127.0.0.1:9/metrics",
            "METRIC_NAME": name,
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "1s",
            "ACTION_PLUGIN": "pager",
            **env,
        }
    ).rules
    return config


def _evaluate(
    step: EvaluationStep, rule: Rule, at: float, value: float | None, *, acting: bool = True
) -> list[OwedCall]:
    owed: list[OwedCall] = []
    samples = [] if value is None else [Sample(MAIL, value)]
    step.evaluate(rule, Observation(at, samples), owed.append, acting=acting)
    return owed


def _settle(call: OwedCall, at: float, ok: bool) -> str:
    [plugin] = call.plugins()
    call.report(plugin, ok=ok)
    call.settle(at)
    return f"{call.action.kind} {plugin}"


def _retire_while_firing() -> tuple[EvaluationStep, Rule, Rule, OwedCall]:
    """``doomed`` fired at 0; its fire runs on while a reload retires it at 0.5. ``steady``
    is the rule that remains (it reads 10: never breached)."""
    step = EvaluationStep()
    doomed, steady = make_rule(_config("doomed")), make_rule(_config("steady"))
    [fire] = _evaluate(step, doomed, 0.0, 95.0)
    assert fire.plugins() == ["pager"]  # the call runs
    retired: list[OwedCall] = []
    step.retire(doomed, 0.5, retired.append)
    assert retired == []  # the fire is still running: nothing to resolve yet
    return step, doomed, steady, fire


def test_the_resolve_of_a_fire_running_at_the_reload_is_sent_once_the_fire_succeeded() -> None:
    step, doomed, steady, fire = _retire_while_firing()
    assert _evaluate(step, steady, 1.0, 10.0) == []  # still running
    assert _settle(fire, 1.5, ok=True) == "fire pager"
    [resolve] = _evaluate(step, steady, 2.0, 10.0)
    assert resolve.rule is doomed
    assert (resolve.action.kind, resolve.action.value, resolve.action.takers) == (
        "resolve",
        95.0,
        ("pager",),
    )
    assert resolve.action.duration == 0.5  # the breach ended at the reload
    assert _settle(resolve, 2.0, ok=True) == "resolve pager"
    for at in (3.0, 10.0, 400.0):
        assert _evaluate(step, steady, at, 10.0) == []  # exactly once
    assert step.retired == 0 and step.partial_deliveries == 0


def test_of_two_fires_running_at_the_reload_only_the_one_that_succeeded_is_resolved() -> None:
    step = EvaluationStep()
    doomed, steady = make_rule(_config("doomed")), make_rule(_config("steady"))
    owed: list[OwedCall] = []
    step.evaluate(doomed, Observation(0.0, [Sample(MAIL, 95.0), Sample(SMS, 97.0)]), owed.append)
    mail, sms = owed
    step.retire(doomed, 0.5, owed.append)
    assert owed == [mail, sms]  # nothing more while they run
    _settle(mail, 1.0, ok=True)
    _settle(sms, 1.0, ok=False)  # no plugin took it: nothing to resolve
    [resolve] = _evaluate(step, steady, 2.0, 10.0)
    assert (resolve.action.labels, resolve.action.kind) == (MAIL, "resolve")
    _settle(resolve, 2.0, ok=True)
    for at in (3.0, 10.0, 400.0):
        assert _evaluate(step, steady, at, 10.0) == []
    assert step.retired == 0


def test_a_failed_resolve_of_a_retired_rule_is_retried_with_the_usual_delays() -> None:
    step, doomed, steady, fire = _retire_while_firing()
    _settle(fire, 0.8, ok=True)
    tries = []
    for tick in range(1, 40):
        at = float(tick)
        for call in _evaluate(step, steady, at, 10.0):
            assert call.rule is doomed and call.action.kind == "resolve"
            tries.append(at)
            _settle(call, at, ok=len(tries) == 5)  # four failures, then a success
    # One polling interval after each failed try started, doubling: 1 s, 2 s, 4 s, 8 s.
    assert tries == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert step.retired == 0


def test_a_retired_rule_owes_nothing_to_a_follower_until_it_leads() -> None:
    step, doomed, steady, fire = _retire_while_firing()
    _settle(fire, 0.8, ok=True)
    assert _evaluate(step, steady, 1.0, 10.0, acting=False) == []
    [resolve] = _evaluate(step, steady, 2.0, 10.0)
    assert resolve.rule is doomed
