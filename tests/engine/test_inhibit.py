"""Inhibition (issue 26, point 3), as Alertmanager's ``inhibit`` package decides it, on this
service's own alerts: the cases of Alertmanager's inhibit/inhibit_test.go with their
sources made firing alerts of real rules, and a target held back through the evaluation
step while its source fires, acting at its next evaluation after (fake clock)."""

from __future__ import annotations

from pathlib import Path

from metric_reader._config import Settings, load_settings
from metric_reader._core import HistoryEntry, Sample
from metric_reader._engine import EvaluationStep, Governor, Observation, OwedCall, Rule, make_rule

HEAD = 'prometheus_endpoint = "http://127.0.0.1:9"\npolling_interval = "1s"\n'


def _settings(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "rules.toml"
    path.write_text(HEAD + text)
    return load_settings({"CONFIG_FILE": str(path)})


def _rule_table(name: str, extra: str = "") -> str:
    return f'[[rules]]\nname = "{name}"\nmetric_name = "m_{name}"\nthreshold = ">90"\n{extra}\n'


class Alerts:
    """Rules whose series are the alerts of a test, one rule per alert name, sharing a
    governor configured from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.history: list[HistoryEntry] = []
        self.governor = Governor(record=self.history.append, quiet=True)
        self.rules: dict[str, Rule] = {}
        for config in settings.rules:
            rule = make_rule(config)
            rule.quiet = True
            self.rules[config.name] = rule
        self.governor.configure(
            settings.limits,
            settings.plugin_guards,
            list(self.rules.values()),
            settings.time_intervals,
            settings.inhibit_rules,
        )
        self.step = EvaluationStep(settings.routes, self.governor)
        self.called: list[tuple[float, str, str, str]] = []
        """(time, rule, its "pod" or "node" label, kind) of each plugin call made."""

    def tick(self, at: float, values: dict[str, dict[tuple[tuple[str, str], ...], float]]) -> None:
        """Evaluate each rule (in the order given) on its series' values; run every call."""
        for name, series in values.items():
            samples = [Sample(labels, value) for labels, value in series.items()]
            handed: list[object] = []
            self.step.evaluate(self.rules[name], Observation(at, samples), handed.append)
            for call in handed:
                assert isinstance(call, OwedCall)
                for plugin in call.plugins():
                    labels = dict(call.action.labels)
                    if plugin is not None:  # not one only logged
                        who = labels.get("pod", labels.get("node", ""))
                        self.called.append((at, name, who, call.event(plugin, at).kind))
                    call.report(plugin, True)
                call.settle(at)

    def inhibited(self, labels: dict[str, str]) -> bool:
        return self.governor.inhibitor.inhibited_by(labels) is not None


def _labels(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def test_alertmanagers_rule_matches_cases(tmp_path: Path) -> None:
    """inhibit_test.go TestInhibitRuleMatches, with the deprecated ``source_match`` and
    ``target_match`` it uses: a target matching both sides is inhibited by a source that
    matches only the source side, not by one that matches both."""
    settings = _settings(
        tmp_path,
        _rule_table("one")
        + _rule_table("two")
        + "[[inhibit_rules]]\nsource_match = { s1 = '1' }\ntarget_match = { t1 = '1' }\n"
        "equal = ['e']\n"
        "[[inhibit_rules]]\nsource_match = { s2 = '1' }\ntarget_match = { t2 = '1' }\n"
        "equal = ['e']\n",
    )
    alerts = Alerts(settings)
    alerts.tick(
        0.0,
        {
            "one": {_labels(s1="1", t1="2", e="1"): 95.0},  # rule 1's source side only
            "two": {_labels(s2="1", t2="1", e="1"): 95.0},  # both sides of rule 2
        },
    )
    cases = [
        ({"t1": "1", "e": "1"}, True),
        ({"t2": "1", "e": "1"}, True),
        ({"t1": "1", "t3": "1", "e": "1"}, True),
        ({"t1": "1", "t2": "1", "e": "1"}, True),
        ({"t1": "0", "e": "1"}, False),
        ({"s1": "1", "t1": "1", "e": "1"}, True),
        ({"s2": "1", "t2": "1", "e": "1"}, False),  # never by an alert of its own kind
        ({"t1": "1", "e": "0"}, False),
    ]
    assert [(target, alerts.inhibited(target)) for target, _ in cases] == cases
    # The source alert itself (it matches both sides of rule 2) is not inhibited.
    assert not alerts.inhibited({"alertname": "two", "s2": "1", "t2": "1", "e": "1"})


def test_only_a_firing_source_inhibits_and_missing_equal_labels_count_as_equal(
    tmp_path: Path,
) -> None:
    """inhibit_test.go TestInhibit: the target is muted while the source is active, not
    before it fires (pending here) nor after it resolved; ``equal`` labels missing on both
    sides are equal (TestInhibitRuleHasEqual: "no equal labels" and the empty value)."""
    settings = _settings(
        tmp_path,
        _rule_table("src", 'threshold_duration = "2s"')
        + "[[inhibit_rules]]\nsource_matchers = ['s=\"1\"']\ntarget_matchers = ['t=\"1\"']\n"
        "equal = ['e', 'zone']\n",
    )
    alerts = Alerts(settings)
    source = {"src": {_labels(s="1", e="f"): 95.0}}
    target = {"t": "1", "e": "f"}
    alerts.tick(0.0, source)  # pending
    assert not alerts.inhibited(target)
    alerts.tick(2.0, source)  # firing
    assert alerts.inhibited(target)
    assert not alerts.inhibited({**target, "zone": "a"})  # zone only on the target
    assert not alerts.inhibited({"t": "1", "e": "g"})
    inhibition = alerts.governor.inhibitor.inhibited_by(target)
    assert inhibition is not None
    assert inhibition.describe() == (
        'inhibited by firing alert {alertname="src", e="f", s="1"} (inhibit_rules[0])'
    )
    alerts.tick(3.0, {"src": {_labels(s="1", e="f"): 10.0}})  # resolved
    assert not alerts.inhibited(target)


NODES = (
    _rule_table("NodeNotReady")
    + _rule_table("PodCrashLooping", 'action_plugin = "restart_pod"\nbackoff_delay = "1h"')
    + """
[[inhibit_rules]]
name = "node-down"
source_matchers = ['alertname="NodeNotReady"']
target_matchers = ['alertname="PodCrashLooping"']
equal = ["node"]
"""
)


def test_a_target_waits_while_its_source_fires_and_acts_at_its_next_evaluation_after(
    tmp_path: Path,
) -> None:
    alerts = Alerts(_settings(tmp_path, NODES))
    pods = {_labels(node="n1", pod="p1"): 95.0, _labels(node="n2", pod="p2"): 95.0}
    down = {"NodeNotReady": {_labels(node="n1"): 95.0}, "PodCrashLooping": pods}
    alerts.tick(0.0, down)
    alerts.tick(1.0, down)
    assert alerts.called == [(0.0, "PodCrashLooping", "p2", "fire")]  # p1's node is down
    [held] = [e for e in alerts.history if e.outcome == "suppressed"]  # once, not per tick
    assert (held.series["pod"], held.kind, held.reason) == ("p1", "fire", "inhibited")
    assert held.detail == (
        'inhibited by firing alert {alertname="NodeNotReady", node="n1"} (node-down)'
    )

    alerts.tick(2.0, {"NodeNotReady": {_labels(node="n1"): 10.0}, "PodCrashLooping": pods})
    assert alerts.called[1:] == [(2.0, "PodCrashLooping", "p1", "fire")]
    pod_rows = [e for e in alerts.history if e.rule == "PodCrashLooping"]
    assert [(e.series["pod"], e.outcome, e.reason) for e in pod_rows] == [
        ("p1", "suppressed", "inhibited"),
        ("p2", "executed", ""),
        ("p1", "executed", ""),
    ]


def test_a_resolve_is_inhibited_too_and_goes_when_the_source_stops(tmp_path: Path) -> None:
    """Alertmanager mutes the resolved notification of an inhibited alert as well."""
    alerts = Alerts(_settings(tmp_path, NODES))
    pod = {_labels(node="n1", pod="p1"): 95.0}
    alerts.tick(0.0, {"PodCrashLooping": pod})  # fires: its node is fine
    alerts.tick(1.0, {"NodeNotReady": {_labels(node="n1"): 95.0}})
    alerts.tick(2.0, {"PodCrashLooping": {_labels(node="n1", pod="p1"): 10.0}})
    assert [e.reason for e in alerts.history if e.kind == "resolve"] == ["inhibited"]
    alerts.tick(3.0, {"NodeNotReady": {_labels(node="n1"): 10.0}})
    alerts.tick(4.0, {"PodCrashLooping": {_labels(node="n1", pod="p1"): 10.0}})
    assert [(at, kind) for at, _, _, kind in alerts.called] == [(0.0, "fire"), (4.0, "resolve")]
