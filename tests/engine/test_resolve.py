"""What a resolve is: sent to the plugins that took its breach's fire and repeats (whatever
the routes or the rule's plugin say by then), carrying the last value at which the breach
held and, for an alert of a rule file, the annotations rendered with it, as Prometheus
sends the alert of its last active evaluation.

Through the evaluation step on a fake clock, which the service and the replay share.
"""

from __future__ import annotations

import math
from pathlib import Path

from metric_reader._config import Route, RuleConfig, Settings, load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, OwedCall, Rule, make_rule

MAIL = (("queue", "mail"),)
ALERTS = """\
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        keep_firing_for: {keep}
        labels: {{severity: page}}
        annotations: {{summary: '{{{{ $labels.queue }}}} holds {{{{ $value }}}}'}}
"""
ROUTED = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"
rule_files = ["alerts.yml"]
{routes}
"""
ROUTE = """
[[routes]]
matchers = ['severity="page"']
action_plugin = "{plugin}"
backoff_delay = "{backoff}"
continue = true
"""
PLAIN = {
    "SCRAPE_URL": "http://127.0.0.1:9/metrics",
    "METRIC_NAME": "queue_depth",
    "THRESHOLD": ">50",
    "POLLING_INTERVAL": "1s",
}


def _routed(tmp_path: Path, *plugins: str, keep: str = "0s", backoff: str = "0s") -> Settings:
    (tmp_path / "alerts.yml").write_text(ALERTS.format(keep=keep))
    routes = "".join(ROUTE.format(plugin=plugin, backoff=backoff) for plugin in plugins)
    (tmp_path / "rules.toml").write_text(ROUTED.format(routes=routes))
    return load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})


def _routes(tmp_path: Path, *plugins: str) -> tuple[Route, ...]:
    return _routed(tmp_path, *plugins).routes


def _plain(**env: str) -> RuleConfig:
    [config] = load_settings({**PLAIN, **env}).rules
    return config


def _evaluate(step: EvaluationStep, rule: Rule, at: float, value: float | None) -> list[OwedCall]:
    owed: list[OwedCall] = []
    samples = [] if value is None else [Sample(MAIL, value)]
    step.evaluate(rule, Observation(at, samples), owed.append)
    return owed


def _run(calls: list[OwedCall], at: float, failing: set[str | None] | None = None) -> list[str]:
    """Run each call as the service does (every plugin in turn, then settle); return
    ``kind plugin`` of each plugin call."""
    out = []
    for call in calls:
        for plugin in call.plugins():
            out.append(f"{call.action.kind} {plugin}")
            call.report(plugin, ok=plugin not in (failing or set()))
        call.settle(at)
    return out


def test_after_a_route_change_the_resolve_goes_to_the_plugin_that_fired(tmp_path: Path) -> None:
    settings = _routed(tmp_path, "critical_remediate")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    assert _run(_evaluate(step, rule, 0.0, 95.0), 0.0) == ["fire critical_remediate"]

    step.routes = _routes(tmp_path, "alertmanager_action")  # a reload changes the route
    assert _run(_evaluate(step, rule, 1.0, 95.0), 1.0) == []
    assert _run(_evaluate(step, rule, 2.0, None), 2.0) == ["resolve critical_remediate"]

    # The next breach goes where the routes send it now, and so does its resolve.
    assert _run(_evaluate(step, rule, 3.0, 95.0), 3.0) == ["fire alertmanager_action"]
    assert _run(_evaluate(step, rule, 4.0, None), 4.0) == ["resolve alertmanager_action"]


def test_a_repeat_to_a_newly_routed_plugin_makes_it_hear_the_resolve_too(tmp_path: Path) -> None:
    settings = _routed(tmp_path, "pager", backoff="2s")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    assert _run(_evaluate(step, rule, 0.0, 95.0), 0.0) == ["fire pager"]
    step.routes = _routed(tmp_path, "tickets", backoff="2s").routes
    assert _run(_evaluate(step, rule, 2.0, 95.0), 2.0) == ["repeat tickets"]
    assert _run(_evaluate(step, rule, 3.0, None), 3.0) == ["resolve pager", "resolve tickets"]


def test_a_plugin_that_took_a_fire_another_failed_gets_the_resolve_alone(tmp_path: Path) -> None:
    settings = _routed(tmp_path, "pager", "tickets")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    fired = _run(_evaluate(step, rule, 0.0, 95.0), 0.0, failing={"tickets"})
    assert fired == ["fire pager", "fire tickets"]
    # The breach ends before the retry of "tickets": "pager" alone thinks it is firing.
    assert _run(_evaluate(step, rule, 1.0, None), 1.0) == ["resolve pager"]


def test_a_failed_resolve_is_retried_at_the_takers_that_have_not_taken_it(
    tmp_path: Path,
) -> None:
    settings = _routed(tmp_path, "pager", "tickets")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    _run(_evaluate(step, rule, 0.0, 95.0), 0.0)
    step.routes = ()
    resolved = _run(_evaluate(step, rule, 1.0, None), 1.0, failing={"tickets"})
    assert resolved == ["resolve pager", "resolve tickets"]
    assert _run(_evaluate(step, rule, 2.0, None), 2.0) == ["resolve tickets"]


def test_a_rule_whose_plugin_a_reload_changed_resolves_at_the_old_plugin() -> None:
    step = EvaluationStep()
    rule = make_rule(_plain(ACTION_PLUGIN="old_plugin"))
    assert _run(_evaluate(step, rule, 0.0, 95.0), 0.0) == ["fire old_plugin"]
    step.reconfigure(rule, _plain(ACTION_PLUGIN="new_plugin"), 0.5, lambda call: None)
    assert _run(_evaluate(step, rule, 1.0, 10.0), 1.0) == ["resolve old_plugin"]


def test_a_level_that_only_logged_its_fire_only_logs_its_resolve() -> None:
    step = EvaluationStep()
    rule = make_rule(_plain())
    assert _run(_evaluate(step, rule, 0.0, 95.0), 0.0) == ["fire None"]
    step.reconfigure(rule, _plain(ACTION_PLUGIN="pager"), 0.5, lambda call: None)
    assert _run(_evaluate(step, rule, 1.0, 10.0), 1.0) == ["resolve None"]  # pager never fired


def test_a_retired_rule_resolves_at_the_plugins_that_took_its_fires(tmp_path: Path) -> None:
    settings = _routed(tmp_path, "pager")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    _run(_evaluate(step, rule, 0.0, 95.0), 0.0)
    step.routes = _routes(tmp_path, "tickets")
    retired: list[OwedCall] = []
    step.retire(rule, 1.0, retired.append)
    assert _run(retired, 1.0) == ["resolve pager"]


def test_what_the_leader_fired_is_resolved_where_a_fire_would_go_now(tmp_path: Path) -> None:
    """A follower does not know which plugins the leader called: once it leads, it resolves
    where the routes send the alert now (the leader's record names no plugin)."""
    settings = _routed(tmp_path, "pager")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    owed: list[OwedCall] = []
    step.evaluate(rule, Observation(0.0, [Sample(MAIL, 95.0)]), owed.append, acting=False)
    assert owed == []
    assert rule.adopt("base", MAIL, "fire", 0.0, 1)  # the leader's record of its fire
    step.routes = _routes(tmp_path, "tickets")
    assert _run(_evaluate(step, rule, 1.0, None), 1.0) == ["resolve tickets"]


# --- the value and annotations a resolve carries --------------------------------------------


def test_a_resolved_alert_carries_its_last_active_value_and_annotations(tmp_path: Path) -> None:
    settings = _routed(tmp_path, "pager")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    _run(_evaluate(step, rule, 0.0, 95.0), 0.0)
    _run(_evaluate(step, rule, 1.0, 120.0), 1.0)
    [resolve] = _evaluate(step, rule, 2.0, None)  # the series left the result
    event = resolve.event("pager", 2.0)
    assert event.kind == "resolve"
    assert event.value == 120.0
    assert dict(event.annotations) == {"summary": "mail holds 120"}


def test_keep_firing_for_resolves_with_the_value_of_the_last_evaluation_that_held(
    tmp_path: Path,
) -> None:
    settings = _routed(tmp_path, "pager", keep="2s")
    step = EvaluationStep(settings.routes)
    rule = make_rule(settings.rules[0])
    _run(_evaluate(step, rule, 0.0, 95.0), 0.0)
    assert _evaluate(step, rule, 1.0, None) == []  # kept firing
    assert _evaluate(step, rule, 2.0, None) == []
    [resolve] = _evaluate(step, rule, 3.0, None)
    event = resolve.event("pager", 3.0)
    assert (event.value, event.annotations["summary"]) == (95.0, "mail holds 95")


def test_a_rule_resolves_with_the_last_value_that_breached_not_the_one_that_ended_it() -> None:
    step = EvaluationStep()
    rule = make_rule(_plain(ACTION_PLUGIN="pager", MISSING_VALUE_BEHAVIOR="zero"))
    _run(_evaluate(step, rule, 0.0, 95.0), 0.0)
    _run(_evaluate(step, rule, 1.0, 70.0), 1.0)
    [resolve] = _evaluate(step, rule, 2.0, None)  # absent: zero, which ends the breach
    assert resolve.event("pager", 2.0).value == 70.0
    assert not math.isnan(resolve.action.value)
