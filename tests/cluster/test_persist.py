"""STATE_FILE: what a restart keeps, and how the file survives crashes and bad content.

The rules are real (built from a configuration as the service builds them) and run on a fake
clock. A "restart" takes the saved document through JSON, builds brand-new rules and
restores into them on a new clock: the monotonic origin is different, the wall clock has
moved on by however long the restart took. The assertions are on the actions a plugin
would receive afterwards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger

from metric_reader._cluster._persist import (
    StateFile,
    StateWriter,
    fingerprint,
    restore,
    snapshot,
)
from metric_reader._cluster._state_format import SAVED_LEVEL_FIELDS
from metric_reader._config import ConfigError, Settings, load_settings
from metric_reader._core._exceptions import StateError
from metric_reader._core._samples import Labels, Sample
from metric_reader._engine import (
    MAX_COUNT,
    Action,
    EvaluationStep,
    LevelMachine,
    LevelSnapshot,
    Observation,
    OwedCall,
    Rule,
    State,
    make_rule,
)
from metric_reader._engine._snapshot import (
    LEVEL_FIELDS_NOT_IN_SNAPSHOT as UNSAVED_LEVEL_FIELDS,
)

SERIES: Labels = (("queue", "mail"),)
WALL0 = 1_700_000_000.0
"""Wall-clock time of the first run's monotonic time MONO0."""
MONO0 = 1000.0


# --- a fake service -------------------------------------------------------------------------


def make_rules(**env: str) -> list[Rule]:
    """Rules as the service builds them from an environment (one scrape rule by default)."""
    base = {
        "SCRAPE_URL": "http://127.0.0.1:9/metrics",
        "METRIC_NAME": "jobs_waiting",
        "THRESHOLD": ">80",
        "POLLING_INTERVAL": "1s",
    }
    return [make_rule(config) for config in load_settings({**base, **env}).rules]


@dataclasses.dataclass
class Run:
    """One process' life: its rules and a monotonic clock tied to a wall clock."""

    rules: list[Rule]
    mono_origin: float
    wall_origin: float
    calls: list[tuple[float, Action]] = dataclasses.field(default_factory=list)
    running: list[Action] = dataclasses.field(default_factory=list)

    @property
    def rule(self) -> Rule:
        return self.rules[0]

    def wall(self, mono: float) -> float:
        return self.wall_origin + (mono - self.mono_origin)

    def poll(
        self, t: float, value: float | None, *, ok: bool | None = True, labels: Labels = SERIES
    ) -> list[str]:
        """One poll at monotonic ``t``; actions handed out succeed (ok), fail (False) or stay
        running (None). Returns ``level:kind`` of each action handed out."""
        samples = [] if value is None else [Sample(labels, value)]
        out = []
        for action in self.rule.evaluate(t, samples):
            out.append(f"{action.level}:{action.kind}")
            if ok is None:
                self.running.append(action)
                continue
            if ok:
                self.calls.append((t, action))
                self.rule.took(action, "pager")
            self.rule.finish(t, action, ok)
        return out

    def save(self, t: float) -> dict[str, Any]:
        """The document the service would write at monotonic ``t``, as read back from disk."""
        text = json.dumps(snapshot(self.rules, t, self.wall(t)), allow_nan=False)
        return dict(json.loads(text))

    def level(self, level: str = "base", labels: Labels = SERIES) -> LevelMachine:
        assert self.rule.machine is not None
        series = self.rule.machine.series[labels]
        machine = series.base if level == "base" else series.hard
        assert machine is not None
        return machine


def restart(
    doc: dict[str, Any],
    wall: float,
    mono: float = 5.0,
    settings: Mapping[str, str] | None = None,
    **env: str,
) -> tuple[Run, list[str]]:
    """A new process started at wall-clock ``wall``, its monotonic clock reading ``mono``,
    with the rule configured by ``settings`` and ``env``."""
    run = Run(make_rules(**(settings or {}), **env), mono_origin=mono, wall_origin=wall)
    messages = restore(run.rules, doc, mono, wall)
    return run, messages


@pytest.fixture
def records() -> Iterator[list[Any]]:
    out: list[Any] = []
    sink = logger.add(lambda m: out.append(m.record), level="DEBUG")
    yield out
    logger.remove(sink)


# --- round trips of every state ---------------------------------------------------------------


def test_pending_keeps_its_start_and_fires_after_the_remaining_duration() -> None:
    env = {"THRESHOLD_DURATION": "60s"}
    first = Run(make_rules(**env), MONO0, WALL0)
    assert first.poll(MONO0, 90) == []  # breach starts at wall WALL0
    assert first.poll(MONO0 + 10, 95) == []
    doc = first.save(MONO0 + 20)
    # Killed at +20 s; the new process starts 30 s later, with its own monotonic origin.
    second, messages = restart(doc, wall=WALL0 + 50, mono=5.0, settings=env)
    assert second.level().state is State.PENDING
    assert any("1 pending" in m for m in messages), messages
    assert second.poll(5.0, 95) == []  # 50 s into the breach
    assert second.poll(14.999, 95) == []  # 59.999 s
    assert second.poll(15.0, 95) == ["base:fire"]  # 60 s after the breach began, not 60 s
    [(_, fire)] = second.calls  # after the restart
    assert fire.duration == pytest.approx(60.0)
    assert fire.value == 95.0


def test_a_restart_without_the_state_would_have_waited_the_full_duration() -> None:
    """The contrast: the same polls on fresh rules fire a full duration after the restart."""
    fresh = Run(make_rules(THRESHOLD_DURATION="60s"), 5.0, WALL0 + 50)
    assert fresh.poll(5.0, 95) == []
    assert fresh.poll(15.0, 95) == []
    assert fresh.poll(65.0, 95) == ["base:fire"]


def test_firing_does_not_repeat_before_the_backoff_counted_from_the_saved_success() -> None:
    env = {"BACKOFF_DELAY": "100s"}
    first = Run(make_rules(**env), MONO0, WALL0)
    assert first.poll(MONO0, 90) == ["base:fire"]  # succeeds at wall WALL0
    doc = first.save(MONO0 + 10)
    second, _ = restart(doc, wall=WALL0 + 50, mono=5.0, settings=env)
    assert second.level().state is State.FIRING
    assert second.level().fire_count == 1
    for t in (5.0, 20.0, 40.0, 54.99):  # mono 55 is wall WALL0 + 100
        assert second.poll(t, 90) == [], t
    assert second.poll(55.0, 90) == ["base:repeat"]
    [(_, repeat)] = second.calls
    assert repeat.fire_count == 1
    assert repeat.duration == pytest.approx(100.0)


def test_a_fire_that_succeeded_and_was_saved_never_runs_again() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 90) == ["base:fire"]
    second, _ = restart(first.save(MONO0 + 1), wall=WALL0 + 2)
    for t in range(5, 500, 7):
        assert second.poll(float(t), 90) == []


def test_an_action_in_flight_at_the_save_runs_again_after_the_restart() -> None:
    """The at-least-once edge: a call not confirmed when the process died is owed still."""
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 90, ok=None) == ["base:fire"]  # running when killed
    doc = first.save(MONO0 + 1)
    assert doc["rules"]["jobs_waiting"]["series"][0]["base"]["due"] == "fire"
    second, messages = restart(doc, wall=WALL0 + 3)
    assert any("1 action(s) owed" in m for m in messages), messages
    assert second.poll(5.0, 90) == ["base:fire"]
    assert second.poll(6.0, 90) == []


def test_a_due_retry_keeps_its_delay_and_its_failure_count() -> None:
    env = {"POLLING_INTERVAL": "10s"}  # the first retry delay is one polling interval
    first = Run(make_rules(**env), MONO0, WALL0)
    assert first.poll(MONO0, 90, ok=False) == ["base:fire"]  # retry at +10
    assert first.poll(MONO0 + 10, 90, ok=False) == ["base:fire"]  # retry at +30 (20 s delay)
    doc = first.save(MONO0 + 15)
    second, _ = restart(doc, wall=WALL0 + 20, mono=5.0, settings=env)  # +30 is mono 15
    assert second.level().failures == 2
    assert second.poll(14.9, 90) == []
    assert second.poll(15.0, 90, ok=False) == ["base:fire"]
    # The third failure doubles again: 40 s, not the first delay of 10 s.
    assert second.poll(54.9, 90) == []
    assert second.poll(55.0, 90) == ["base:fire"]


def test_firing_resolves_once_after_the_restart_when_the_breach_is_over() -> None:
    first = Run(make_rules(THRESHOLD_DURATION="10s"), MONO0, WALL0)
    first.poll(MONO0, 90)
    assert first.poll(MONO0 + 10, 90) == ["base:fire"]
    second, _ = restart(first.save(MONO0 + 12), wall=WALL0 + 20, mono=5.0, THRESHOLD_DURATION="10s")
    assert second.poll(5.0, 10) == ["base:resolve"]  # wall WALL0 + 20
    [(_, resolve)] = second.calls
    assert resolve.duration == pytest.approx(20.0)  # the breach began at WALL0
    assert second.poll(6.0, 10) == []


def test_a_resolve_that_succeeded_and_was_saved_is_not_repeated() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 90) == ["base:fire"]
    assert first.poll(MONO0 + 1, 10) == ["base:resolve"]
    second, messages = restart(first.save(MONO0 + 2), wall=WALL0 + 5)
    assert len(messages) == 1, messages  # nothing pending, firing or owed: one summary line
    last = second.level().last_action
    assert last is not None and last[:2] == ("resolve", True)
    for t in (5.0, 6.0, 7.0):
        assert second.poll(t, 10) == []


def test_a_failed_resolve_is_still_owed_after_the_restart() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 90) == ["base:fire"]
    assert first.poll(MONO0 + 1, 10, ok=False) == ["base:resolve"]  # retried at +2
    second, _ = restart(first.save(MONO0 + 1.5), wall=WALL0 + 1.5, mono=5.0)
    assert second.poll(5.4, 10) == []
    assert second.poll(5.5, 10) == ["base:resolve"]
    [(_, resolve)] = second.calls
    assert resolve.duration == pytest.approx(1.0)  # until the breach ended, not the restart


def test_a_resolve_owed_at_the_restart_carries_the_last_value_that_breached() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 97) == ["base:fire"]
    assert first.poll(MONO0 + 1, 10, ok=False) == ["base:resolve"]
    second, _ = restart(first.save(MONO0 + 1.5), wall=WALL0 + 1.5, mono=5.0)
    assert second.poll(5.5, 10) == ["base:resolve"]
    [(_, resolve)] = second.calls
    assert (resolve.value, resolve.takers) == (97, ("pager",))


ALERT_FILE = """\
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        labels: {severity: page}
        annotations: {summary: 'holds {{ $value }}'}
"""
ROUTED_TO = """\
prometheus_endpoint = "http://127.0.0.1:9"
polling_interval = "1s"
rule_files = ["alerts.yml"]

[[routes]]
matchers = ['severity="page"']
action_plugin = "{plugin}"
"""


def _routed_to(tmp_path: Path, plugin: str) -> Settings:
    (tmp_path / "alerts.yml").write_text(ALERT_FILE)
    (tmp_path / "rules.toml").write_text(ROUTED_TO.format(plugin=plugin))
    return load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})


def _fired_and_saved(tmp_path: Path) -> dict[str, Any]:
    """An alert fired at the plugin "remediate", saved while it fires."""
    settings = _routed_to(tmp_path, "remediate")
    rules = [make_rule(config) for config in settings.rules]
    step = EvaluationStep(settings.routes)
    owed: list[OwedCall] = []
    step.evaluate(rules[0], Observation(MONO0, [Sample(SERIES, 95.0)]), owed.append)
    [fire] = owed
    for plugin in fire.plugins():
        fire.report(plugin, ok=True)
    assert fire.plugins() == ["remediate"] and fire.settle(MONO0)
    text = json.dumps(snapshot(rules, MONO0 + 1, WALL0 + 1), allow_nan=False)
    return dict(json.loads(text))


def _resolve_after_restart(tmp_path: Path, doc: dict[str, Any]) -> OwedCall:
    """The service restarted with the route sending the alert to "relay" now; the breach is
    over at the first poll."""
    settings = _routed_to(tmp_path, "relay")
    rules = [make_rule(config) for config in settings.rules]
    restore(rules, doc, 5.0, WALL0 + 3)
    owed: list[OwedCall] = []
    EvaluationStep(settings.routes).evaluate(rules[0], Observation(5.0, []), owed.append)
    [resolve] = owed
    assert resolve.action.kind == "resolve"
    return resolve


def test_a_restart_after_a_route_change_resolves_at_the_plugin_that_fired(
    tmp_path: Path,
) -> None:
    doc = _fired_and_saved(tmp_path)
    [series] = doc["rules"]["QueueHigh"]["series"]
    assert series["base"]["takers"] == ["remediate"]
    resolve = _resolve_after_restart(tmp_path, doc)
    assert resolve.plugins() == ["remediate"]
    event = resolve.event("remediate", 5.0)
    assert (event.value, dict(event.annotations)) == (95.0, {"summary": "holds 95"})


def test_a_file_from_before_takers_were_saved_resolves_where_a_fire_would_go_now(
    tmp_path: Path,
) -> None:
    """An earlier version's file (no ``takers``, no ``held_value``) is read as before: the
    resolve goes to the routes of now, and carries the saved value."""
    doc = _fired_and_saved(tmp_path)
    [series] = doc["rules"]["QueueHigh"]["series"]
    del series["base"]["takers"], series["base"]["held_value"]
    resolve = _resolve_after_restart(tmp_path, doc)
    assert resolve.plugins() == ["relay"]
    assert resolve.event("relay", 5.0).value == 95.0


RENAMING_GROUP = """\
  - name: other
    rules:
      - alert: QueueHigh
        expr: mail_depth > 50
"""


def _alert_rules(tmp_path: Path, alerts: str, plugin: str = "remediate") -> list[Rule]:
    (tmp_path / "alerts.yml").write_text(alerts)
    (tmp_path / "rules.toml").write_text(ROUTED_TO.format(plugin=plugin))
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    return [make_rule(config) for config in settings.rules]


def test_an_edited_alert_keeps_firing_over_a_restart_as_over_a_reload(tmp_path: Path) -> None:
    """Its annotation, expression, ``for`` and route backoff edited while the service was
    down: the alert is the same (group, name, labels), so it is still firing, is not
    executed again, and resolves at the plugin that took its fire."""
    doc = _fired_and_saved(tmp_path)
    edited = (
        ALERT_FILE.replace("queue_depth > 50", "queue_depth > 60")
        .replace("holds", "now holds")
        .replace("        labels:", "        for: 10m\n        labels:")
    )
    (tmp_path / "alerts.yml").write_text(edited)
    (tmp_path / "rules.toml").write_text(
        ROUTED_TO.format(plugin="remediate") + 'backoff_delay = "2h"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    [rule] = [make_rule(config) for config in settings.rules]
    assert rule.config.base is not None and rule.config.base.duration == 600.0
    messages = restore([rule], doc, 5.0, WALL0 + 3)
    assert any("1 firing" in m for m in messages), messages
    step = EvaluationStep(settings.routes)
    for at in (5.0, 6.0, 700.0):  # beyond the new ``for``: no second execute
        owed: list[OwedCall] = []
        step.evaluate(rule, Observation(at, [Sample(SERIES, 97.0)]), owed.append)
        assert owed == []
    assert rule.series[SERIES].base.state is State.FIRING
    owed = []
    step.evaluate(rule, Observation(701.0, []), owed.append)
    [resolve] = owed
    assert resolve.plugins() == ["remediate"]
    event = resolve.event("remediate", 701.0)
    assert (event.kind, dict(event.annotations)) == ("resolve", {"summary": "now holds 97"})


def test_an_alert_renamed_by_the_configuration_keeps_its_state(tmp_path: Path) -> None:
    """Another group gets an alert of the same name: the rule becomes ``queues:QueueHigh``,
    the same rule by its identity (its group, alert name and labels)."""
    doc = _fired_and_saved(tmp_path)
    rules = _alert_rules(tmp_path, ALERT_FILE + RENAMING_GROUP)
    assert [rule.name for rule in rules] == ["queues:QueueHigh", "other:QueueHigh"]
    messages = restore(rules, doc, 5.0, WALL0 + 3)
    assert any("into rule 'queues:QueueHigh'" in m for m in messages), messages
    assert rules[0].series[SERIES].base.state is State.FIRING
    assert dict(rules[1].series) == {}


def test_other_alert_labels_are_another_alert_that_starts_afresh(
    tmp_path: Path, records: list[Any]
) -> None:
    """Its resolve cannot be sent: the configuration that says what the old alert was
    (its labels, annotations) is gone; a warning says so."""
    doc = _fired_and_saved(tmp_path)
    [rule] = _alert_rules(tmp_path, ALERT_FILE.replace("severity: page", "severity: critical"))
    messages = restore([rule], doc, 5.0, WALL0 + 3)
    assert any("'QueueHigh' is another rule now" in m for m in messages), messages
    assert dict(rule.series) == {}
    [warning] = [r["message"] for r in records if "no resolve" in r["message"]]
    assert "1 firing breach(es) a plugin acted on" in warning and "no resolve" in warning


def test_a_changed_threshold_is_judged_at_the_first_poll_after_the_restart() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 95) == ["base:fire"]
    doc = first.save(MONO0 + 1)
    still, _ = restart(doc, wall=WALL0 + 2, THRESHOLD=">90")
    assert still.level().state is State.FIRING
    assert still.poll(5.0, 95) == []  # 95 > 90: firing still, not fired again
    over, _ = restart(doc, wall=WALL0 + 2, THRESHOLD=">100")
    assert over.poll(5.0, 95) == ["base:resolve"]  # 95 <= 100: resolved, at the pager
    [(_, resolve)] = over.calls
    assert (resolve.value, resolve.takers) == (95, ("pager",))
    assert over.rule.event(resolve, 5.0, "pager").threshold == ">100"


@pytest.mark.parametrize(
    "change",
    [
        {"THRESHOLD_DURATION": "61s"},
        {"BACKOFF_DELAY": "5m"},
        {"LABEL_FILTERS": 'queue="mail"'},
        {"SCRAPE_URL": "http://127.0.0.1:10/metrics"},
        {"HARD_THRESHOLD": ">99"},
        {"KEEP_FIRING_FOR": "1m"},
        {"CLEAR_THRESHOLD": "<50"},
    ],
)
def test_a_restart_keeps_the_state_of_a_rule_whose_settings_changed(
    change: dict[str, str],
) -> None:
    """As a reload keeps it: the rule's identity (its name) is the same."""
    env = {"THRESHOLD_DURATION": "60s"}
    first = Run(make_rules(**env), MONO0, WALL0)
    first.poll(MONO0, 95)
    second, messages = restart(first.save(MONO0 + 1), wall=WALL0 + 2, settings={**env, **change})
    assert any("1 pending" in m for m in messages), messages
    assert second.level().state is State.PENDING
    assert second.level().active_at == pytest.approx(5.0 - 2)  # the breach began at WALL0


def test_a_hard_level_removed_over_a_restart_resolves_at_its_takers() -> None:
    env = {"HARD_THRESHOLD": ">90"}
    first = Run(make_rules(**env), MONO0, WALL0)
    assert first.poll(MONO0, 95) == ["base:fire", "hard:fire"]
    second, _ = restart(first.save(MONO0 + 1), wall=WALL0 + 2)
    assert second.poll(5.0, 95) == ["hard:resolve"]  # the base level goes on firing
    [(_, resolve)] = second.calls
    assert (resolve.takers, resolve.value, resolve.duration) == (("pager",), 95, 2.0)
    assert second.rule.event(resolve, 5.0, "pager").threshold == ">90"
    assert second.poll(6.0, 95) == []
    assert second.level().state is State.FIRING
    assert second.rule.series[SERIES].hard is None


def test_a_hard_level_added_over_a_restart_starts_idle() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 95) == ["base:fire"]
    env = {"HARD_THRESHOLD": ">90", "HARD_THRESHOLD_DURATION": "10s"}
    second, _ = restart(first.save(MONO0 + 1), wall=WALL0 + 2, **env)
    assert second.poll(5.0, 95) == []  # the base level fired before the restart
    assert second.level("hard").state is State.PENDING
    assert second.poll(15.0, 95) == ["hard:fire"]


@pytest.mark.parametrize("with_plugins", [False, True], ids=["without plugins", "with plugins"])
def test_an_entry_an_earlier_version_wrote_is_restored_by_its_fingerprint(
    with_plugins: bool,
) -> None:
    """Earlier versions wrote no identity: such an entry goes to the rule of its name when
    its fingerprint, of either form they wrote, is that rule's; else it is dropped."""
    first = Run(make_rules(ACTION_PLUGIN="pager"), MONO0, WALL0)
    first.poll(MONO0, 95)
    doc = first.save(MONO0 + 1)
    entry = doc["rules"]["jobs_waiting"]
    del entry["identity"]
    entry["fingerprint"] = fingerprint(first.rule.config, with_plugins=with_plugins)
    second, _ = restart(doc, wall=WALL0 + 2, ACTION_PLUGIN="pager")
    assert second.level().state is State.FIRING
    changed, messages = restart(doc, wall=WALL0 + 2, ACTION_PLUGIN="pager", THRESHOLD=">90")
    assert any("changed since its state was saved" in m for m in messages), messages
    assert changed.rule.machine is not None and changed.rule.machine.series == {}


def test_escalation_state_is_restored_on_both_levels() -> None:
    env = {"HARD_THRESHOLD": ">95", "HARD_THRESHOLD_DURATION": "30s", "HARD_BACKOFF_DELAY": "60s"}
    first = Run(make_rules(**env), MONO0, WALL0)
    assert first.poll(MONO0, 99) == ["base:fire"]  # hard goes pending at WALL0
    doc = first.save(MONO0 + 10)
    second, _ = restart(doc, wall=WALL0 + 20, mono=5.0, settings=env)
    assert second.level("base").state is State.FIRING
    assert second.level("hard").state is State.PENDING
    assert second.poll(14.9, 99) == []
    assert second.poll(15.0, 99) == ["hard:fire"]  # 30 s after WALL0


def test_series_keep_their_labels_and_values() -> None:
    first = Run(make_rules(MISSING_VALUE_BEHAVIOR="last_value"), MONO0, WALL0)
    labels: Labels = (("a", 'quo"te'), ("b", "ünï\ncode"))
    first.poll(MONO0, 50, labels=labels)
    first.poll(MONO0 + 1, math.nan, labels=labels)
    doc = first.save(MONO0 + 2)
    second, _ = restart(doc, wall=WALL0 + 3, MISSING_VALUE_BEHAVIOR="last_value")
    assert second.rule.machine is not None
    series = second.rule.machine.series[labels]
    assert series.last_value == 50.0
    assert second.level(labels=labels).state is State.OK
    # last_value reuses the saved value for a missing poll: 50 is not > 80, nothing happens.
    assert second.poll(5.0, None, labels=labels) == []


def test_a_rule_that_never_saw_a_series_keeps_its_placeholder() -> None:
    env = {"MISSING_VALUE_BEHAVIOR": "assume_breached", "THRESHOLD_DURATION": "30s"}
    first = Run(make_rules(**env), MONO0, WALL0)
    first.poll(MONO0, None, labels=())  # the metric does not exist: pending at WALL0
    second, _ = restart(first.save(MONO0 + 1), wall=WALL0 + 20, mono=5.0, settings=env)
    assert second.poll(14.9, None, labels=()) == []
    assert second.poll(15.0, None, labels=()) == ["base:fire"]


# --- what is not restored -------------------------------------------------------------------


def test_a_changed_plugin_keeps_the_state_and_the_resolve_goes_to_the_one_that_fired() -> None:
    first = Run(make_rules(ACTION_PLUGIN="pager"), MONO0, WALL0)
    assert first.poll(MONO0, 95) == ["base:fire"]
    second, _ = restart(first.save(MONO0 + 1), wall=WALL0 + 2, ACTION_PLUGIN="tickets")
    assert second.poll(5.0, 95) == []  # still firing: not fired again at "tickets"
    assert second.poll(6.0, 10) == ["base:resolve"]
    [(_, resolve)] = second.calls
    assert resolve.takers == ("pager",)


def test_a_file_an_earlier_version_wrote_is_restored(tmp_path: Path) -> None:
    """No identity, a fingerprint that held the plugin, and levels without ``takers`` nor
    ``held_value``."""
    first = Run(make_rules(ACTION_PLUGIN="pager"), MONO0, WALL0)
    first.poll(MONO0, 95)
    doc = first.save(MONO0 + 1)
    entry = doc["rules"]["jobs_waiting"]
    del entry["identity"]
    entry["fingerprint"] = fingerprint(first.rule.config, with_plugins=True)
    del entry["series"][0]["base"]["takers"], entry["series"][0]["base"]["held_value"]
    second, _ = restart(doc, wall=WALL0 + 2, ACTION_PLUGIN="pager")
    assert second.level().state is State.FIRING and second.level().takers is None
    assert second.poll(5.0, 10) == ["base:resolve"]
    [(_, resolve)] = second.calls
    assert (resolve.value, resolve.takers) == (95, None)  # to the plugin configured now
    _, messages = restart(doc, wall=WALL0 + 2, ACTION_PLUGIN="tickets")
    assert any("changed since" in m for m in messages), messages


def test_how_often_a_rule_polls_is_not_part_of_what_it_means() -> None:
    first = Run(make_rules(THRESHOLD_DURATION="60s"), MONO0, WALL0)
    first.poll(MONO0, 95)
    second, _ = restart(
        first.save(MONO0 + 1), wall=WALL0 + 2, THRESHOLD_DURATION="60s", POLLING_INTERVAL="5s"
    )
    assert second.level().state is State.PENDING


def test_a_rule_no_longer_configured_is_dropped_and_said_so() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    first.poll(MONO0, 95)
    doc = first.save(MONO0 + 1)
    _, messages = restart(doc, wall=WALL0 + 2, METRIC_NAME="other_metric")
    assert any("'jobs_waiting' is not configured any more" in m for m in messages), messages


def test_a_file_marked_as_from_a_dry_run_is_not_taken_as_done_by_a_real_run() -> None:
    """Dry runs of earlier versions wrote the file, marked ``dry_run``: their actions were
    only logged, so a real run must not take them as done."""
    first = Run(make_rules(), MONO0, WALL0)
    assert first.poll(MONO0, 95) == ["base:fire"]  # only logged, in a dry run
    doc = {**first.save(MONO0 + 1), "dry_run": True}
    real = make_rules()
    messages = restore(real, doc, 5.0, WALL0 + 2, dry_run=False)
    assert any("dry run" in m for m in messages), messages
    assert real[0].machine is not None and real[0].machine.series == {}
    dry = make_rules()
    restore(dry, doc, 5.0, WALL0 + 2, dry_run=True)
    assert dry[0].machine is not None and len(dry[0].machine.series) == 1


# --- clocks ---------------------------------------------------------------------------------


def test_a_saved_time_in_the_future_is_clamped_to_now() -> None:
    first = Run(make_rules(THRESHOLD_DURATION="60s"), MONO0, WALL0)
    first.poll(MONO0, 95)
    doc = first.save(MONO0 + 1)
    level = doc["rules"]["jobs_waiting"]["series"][0]["base"]
    level["active_at"] = WALL0 + 3600  # a bad file: the breach "starts" in an hour
    second, messages = restart(doc, wall=WALL0 + 2, mono=5.0, THRESHOLD_DURATION="60s")
    assert second.level().active_at == 5.0  # now
    assert any("clamped" in m for m in messages), messages
    assert second.poll(64.9, 95) == []
    assert second.poll(65.0, 95) == ["base:fire"]


def test_a_file_written_in_the_future_keeps_its_intervals() -> None:
    """The wall clock went back an hour between the runs: the breach had lasted 20 s when
    the file was written, and still has 40 s to go after the restart."""
    first = Run(make_rules(THRESHOLD_DURATION="60s"), MONO0, WALL0)
    first.poll(MONO0, 95)
    doc = first.save(MONO0 + 20)
    second, messages = restart(doc, wall=WALL0 + 20 - 3600, mono=5.0, THRESHOLD_DURATION="60s")
    assert any("in the future" in m for m in messages), messages
    assert second.level().active_at == pytest.approx(5.0 - 20)
    assert second.poll(44.9, 95) == []
    assert second.poll(45.0, 95) == ["base:fire"]


def test_an_old_file_is_restored_and_the_breach_goes_on_if_it_still_holds() -> None:
    first = Run(make_rules(THRESHOLD_DURATION="10m"), MONO0, WALL0)
    first.poll(MONO0, 95)
    second, messages = restart(
        first.save(MONO0 + 1), wall=WALL0 + 2 * 86400, THRESHOLD_DURATION="10m"
    )
    assert any("ago" in m for m in messages), messages
    assert second.poll(5.0, 95) == ["base:fire"]
    [(_, fire)] = second.calls
    assert fire.duration == pytest.approx(2 * 86400)


def test_a_retry_deadline_may_lie_ahead_but_not_beyond_the_longest_retry_delay() -> None:
    first = Run(make_rules(), MONO0, WALL0)
    first.poll(MONO0, 95, ok=False)  # retry at +1
    doc = first.save(MONO0 + 0.5)
    level = doc["rules"]["jobs_waiting"]["series"][0]["base"]
    second, _ = restart(doc, wall=WALL0 + 0.5, mono=5.0)
    assert second.level().due_at == pytest.approx(5.5)
    level["due_at"] = WALL0 + 86400
    third, _ = restart(doc, wall=WALL0 + 0.5, mono=5.0)
    assert third.level().due_at == pytest.approx(5.0 + 300)


# --- the document ---------------------------------------------------------------------------


def test_every_field_of_a_level_is_either_saved_or_deliberately_not() -> None:
    names = {f.name for f in dataclasses.fields(LevelMachine)}
    assert names == set(SAVED_LEVEL_FIELDS) | set(UNSAVED_LEVEL_FIELDS)


def test_a_saved_level_holds_every_field_of_a_level_snapshot_in_its_order() -> None:
    assert tuple(f.name for f in dataclasses.fields(LevelSnapshot)) == SAVED_LEVEL_FIELDS


def test_the_document_uses_wall_clock_times_and_plain_json() -> None:
    first = Run(make_rules(THRESHOLD_DURATION="60s"), MONO0, WALL0)
    first.poll(MONO0 + 0.25, math.inf)
    doc = first.save(MONO0 + 1)
    assert doc["format"] == "metric-reader-state"
    assert doc["version"] == 1
    assert doc["written_at"] == WALL0 + 1
    [series] = doc["rules"]["jobs_waiting"]["series"]
    assert series["labels"] == [["queue", "mail"]]
    assert series["base"]["state"] == "pending"
    assert series["base"]["active_at"] == WALL0 + 0.25
    assert series["base"]["value"] == "+Inf"
    assert series["hard"] is None


def valid_doc() -> dict[str, Any]:
    first = Run(make_rules(), MONO0, WALL0)
    first.poll(MONO0, 95, ok=False)
    return first.save(MONO0 + 1)


def _set(doc: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    node: Any = doc
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return doc


GARBAGE_DOCUMENTS = {
    "wrong version": ("version", 99),
    "wrong format": ("format", "something else"),
    "rules not an object": ("rules", []),
    "missing written_at": ("written_at", None),
    "written_at before 1970": ("written_at", -5),
    "written_at NaN": ("written_at", math.nan),
}


@pytest.mark.parametrize("name", list(GARBAGE_DOCUMENTS))
def test_restore_refuses_a_document_that_is_not_a_state_file_and_changes_nothing(
    name: str,
) -> None:
    path, value = GARBAGE_DOCUMENTS[name]
    doc = _set(valid_doc(), path, value)
    rules = make_rules()
    with pytest.raises(StateError):
        restore(rules, doc, 5.0, WALL0 + 2)
    assert rules[0].machine is not None and rules[0].machine.series == {}


OTHER: Labels = (("queue", "other"),)


def two_series_doc() -> dict[str, Any]:
    """series.0: a fire that failed, owed again; series.1 (OTHER): fired, FIRING."""
    first = Run(make_rules(BACKOFF_DELAY="60s"), MONO0, WALL0)
    first.poll(MONO0, 95, ok=False)
    first.poll(MONO0, 95, labels=OTHER)
    doc = first.save(MONO0 + 1)
    assert [s["labels"] for s in doc["rules"]["jobs_waiting"]["series"]] == [
        [list(pair) for pair in SERIES],
        [list(pair) for pair in OTHER],
    ]
    return doc


BAD_SERIES = {
    "unknown state": ("base.state", "burning"),
    "time as text": ("base.active_at", "yesterday"),
    "a time before 1970": ("base.fired_at", -5),
    "a NaN time": ("base.last_success_at", math.nan),
    "a NaN last seen": ("last_seen", math.nan),
    "negative count": ("base.failures", -1),
    "count as bool": ("base.fire_count", True),
    "a fractional count": ("base.breach", 1.5),
    "unknown action": ("base.due", "explode"),
    "labels not pairs": ("labels", [["a"]]),
    "firing without a start": ("base.active_at", None),
    "level not an object": ("base", 3),
    "takers not a list": ("base.takers", "pager"),
    "a taker without a name": ("base.takers", [""]),
    "held value as text": ("base.held_value", "high"),
    "series not an object": ("", 3),
}


@pytest.mark.parametrize("name", list(BAD_SERIES))
def test_a_bad_series_record_is_left_out_with_a_warning_and_the_rest_restored(
    name: str, records: list[Any]
) -> None:
    where, value = BAD_SERIES[name]
    path = "rules.jobs_waiting.series.0" + (f".{where}" if where else "")
    doc = _set(two_series_doc(), path, value)
    second, _ = restart(doc, wall=WALL0 + 2, BACKOFF_DELAY="60s")
    assert second.rule.machine is not None
    assert list(second.rule.machine.series) == [OTHER]
    assert second.level(labels=OTHER).fire_count == 1
    [warning] = state_warnings(records)
    assert "1 saved record(s)" in warning and "rules['jobs_waiting']" in warning
    # The restored series carries on: no fire again inside its backoff, a repeat after it.
    assert second.poll(10.0, 95, labels=OTHER) == []
    assert second.poll(5.0 + 59.0, 95, labels=OTHER) == ["base:repeat"]


@pytest.mark.parametrize(
    "entry", [3, {"fingerprint": 7, "seen_any": True, "series": []}, {"series": {}}]
)
def test_a_bad_rule_entry_costs_only_that_rule(entry: object, records: list[Any]) -> None:
    doc = valid_doc()
    doc["rules"]["gone"] = entry
    second, _ = restart(doc, wall=WALL0 + 2)
    assert second.level().due == "fire"
    [warning] = state_warnings(records)
    assert "rules['gone']" in warning and "not restored" in warning


EXTREME_LEVEL = """{
  "state": "firing", "active_at": 1e999, "fired_at": 100000000000000000000000000000,
  "resolved_at": null, "last_held_at": Infinity, "last_success_at": 1e300,
  "last_action": {"kind": "repeat", "ok": false, "at": 1e999},
  "due": "repeat", "due_at": 1e999,
  "failures": 1000000000000000000000000000000000, "fire_count": 1e999,
  "breach": 340282366920938463463374607431768211456, "value": -1e999
}"""


def test_a_state_file_with_extreme_numbers_loads_clamped_and_the_rule_carries_on(
    tmp_path: Path, records: list[Any]
) -> None:
    """A file written by a service that failed for years, or edited by hand: every count
    beyond 2**53-1 and every time beyond any calendar is clamped, and the rule goes on
    retrying every five minutes at most, never overflowing."""
    path = tmp_path / "state.json"
    doc = valid_doc()
    text = json.dumps(doc).replace(
        json.dumps(doc["rules"]["jobs_waiting"]["series"][0]["base"]), EXTREME_LEVEL
    )
    text = text.replace('"last_value": 95', '"last_value": 1e999')
    path.write_text(text)
    data = StateFile(path).load()
    assert data is not None and path.exists()
    second, messages = restart(data, wall=WALL0 + 2, mono=5.0)
    [warning] = state_warnings(records)
    assert "3 saved record(s)" in warning and "taken as 9007199254740991" in warning
    assert any("clamped to now" in m for m in messages), messages
    level = second.level()
    assert (level.state, level.failures, level.fire_count, level.breach) == (
        State.FIRING,
        MAX_COUNT,
        MAX_COUNT,
        MAX_COUNT,
    )
    assert level.active_at == level.last_success_at == 5.0  # clamped to now
    assert level.due_at == 5.0 + 300
    assert level.value == -math.inf
    # A thousand more failures: each retry five minutes after the last, nothing overflows.
    t = level.due_at
    for _ in range(1000):
        assert second.poll(t, 95, ok=False) == ["base:repeat"]
        assert level.due_at == t + 300
        t = level.due_at
    assert second.poll(t, 95) == ["base:repeat"]
    assert level.fire_count == MAX_COUNT and level.failures == 0
    second.save(t)  # and it is saved again as plain JSON


# --- configuration --------------------------------------------------------------------------

RULE = {"SCRAPE_URL": "http://127.0.0.1:9/metrics", "METRIC_NAME": "q", "THRESHOLD": ">1"}


def test_state_file_is_read_from_the_environment(tmp_path: Path) -> None:
    assert load_settings(RULE).state_file is None
    path = tmp_path / "state.json"
    assert load_settings({**RULE, "STATE_FILE": str(path)}).state_file == path


@pytest.mark.parametrize(
    ("where", "reason"),
    [("missing/state.json", "no such directory"), (".", "is a directory")],
)
def test_a_state_file_that_cannot_be_kept_is_a_configuration_error(
    tmp_path: Path, where: str, reason: str
) -> None:
    value = str(tmp_path / where)
    with pytest.raises(ConfigError) as error:
        load_settings({**RULE, "STATE_FILE": value})
    [problem] = error.value.problems
    assert problem.startswith(f"STATE_FILE={value!r} is invalid") and reason in problem


def test_state_file_in_a_rule_file_is_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    rules = tmp_path / "rules.toml"
    rules.write_text(
        'state_file = "run/state.json"\n[[rules]]\nname = "q"\nmetric_name = "q"\n'
        'scrape_url = "http://127.0.0.1:9/metrics"\nthreshold = ">1"\n'
    )
    settings = load_settings({"CONFIG_FILE": str(rules)})
    assert settings.state_file == tmp_path / "run" / "state.json"
    override = tmp_path / "elsewhere.json"
    settings = load_settings({"CONFIG_FILE": str(rules), "STATE_FILE": str(override)})
    assert settings.state_file == override


# --- the file -------------------------------------------------------------------------------


def warnings_of(records: list[Any]) -> list[str]:
    return [r["message"] for r in records if r["level"].name == "WARNING"]


def state_warnings(records: list[Any]) -> list[str]:
    """Warnings about the state file (not the rules' own, such as "firing")."""
    return [
        r["message"]
        for r in records
        if r["level"].name == "WARNING" and r["name"] == "metric_reader._cluster._persist"
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[1, 2, 3]", "expected an object"),
        (json.dumps(_set(valid_doc(), "version", 2)).encode(), "unsupported version 2"),
        (json.dumps(_set(valid_doc(), "rules", [])).encode(), "rules: expected an object"),
    ],
    ids=["broken", "empty", "binary", "a list", "version", "rules not an object"],
)
def test_an_unusable_file_is_set_aside_with_one_warning(
    tmp_path: Path, records: list[Any], content: bytes, reason: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    assert StateFile(path).load() is None
    assert not path.exists()
    [aside] = tmp_path.glob("state.json.corrupt-*")
    assert aside.read_bytes() == content
    [warning] = warnings_of(records)
    assert str(path) in warning and reason in warning and aside.name in warning


def test_set_aside_never_overwrites_an_earlier_one(tmp_path: Path, records: list[Any]) -> None:
    path = tmp_path / "state.json"
    for content in (b"one", b"two", b"three"):
        path.write_bytes(content)
        assert StateFile(path).load() is None
    kept = sorted(p.read_bytes() for p in tmp_path.glob("state.json.corrupt-*"))
    assert kept == [b"one", b"three", b"two"]
    assert len(warnings_of(records)) == 3


def test_a_missing_file_is_no_saved_state(tmp_path: Path, records: list[Any]) -> None:
    assert StateFile(tmp_path / "state.json").load() is None
    assert warnings_of(records) == []


def test_an_unreadable_file_is_set_aside(tmp_path: Path, records: list[Any]) -> None:
    path = tmp_path / "state.json"
    path.mkdir()  # reading a directory fails with an OSError, as an unreadable file does
    assert StateFile(path).load() is None
    [warning] = warnings_of(records)
    assert "cannot read it" in warning and str(path) in warning
    assert list(tmp_path.glob("state.json.corrupt-*"))


def test_load_removes_the_temporary_files_a_crash_left_and_nothing_else(tmp_path: Path) -> None:
    path = tmp_path / "state[1].json"  # glob characters in the name match only themselves
    StateFile(path).save(valid_doc())
    (tmp_path / ".state[1].json.4242.0badcafe.tmp").write_text('{"half": ')
    (tmp_path / ".state1.json.4242.0badcafe.tmp").write_text("someone else's")
    assert StateFile(path).load() == valid_doc()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".state1.json.4242.0badcafe.tmp",
        path.name,
    ]


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    doc = valid_doc()
    StateFile(path).save(doc)
    assert StateFile(path).load() == doc
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    StateFile(path).save({"old": True})
    blocked = StateFile(tmp_path / "blocked")
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "x").write_text("a non-empty directory cannot be renamed over")
    with pytest.raises(OSError):
        blocked.save({"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "state.json"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    docs = [{"n": n, "padding": str(n) * 200_000} for n in range(2)]
    StateFile(path).save(docs[0])
    seen: set[int] = set()
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                doc = json.loads(text)
            except ValueError:
                problems.append(f"partial file of {len(text)} characters")
                return
            seen.add(doc["n"])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            StateFile(path).save(docs[i % 2])
    finally:
        done.set()
        reader.join()
    assert problems == []
    assert seen <= {0, 1}


KILLED_WRITER = """
import sys
from pathlib import Path
from metric_reader._cluster._persist import StateFile

state = StateFile(Path(sys.argv[1]))
docs = [
    {"format": "metric-reader-state", "version": 1, "written_at": n, "rules": {},
     "padding": str(n) * 300_000}
    for n in range(2)
]
state.save(docs[0])
print("ready", flush=True)
i = 0
while True:
    i += 1
    state.save(docs[i % 2])
"""


def test_a_writer_killed_at_any_moment_leaves_the_old_or_the_new_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    rng = random.Random(1234)
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0.0, 0.3))  # to kill it at a random moment of a write
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        doc = json.loads(path.read_text())
        assert doc["written_at"] in (0, 1)
        assert doc["padding"] == str(doc["written_at"]) * 300_000
    # A temporary file a kill left behind is removed by the next load.
    assert StateFile(path).load() is not None
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


# --- the writer -----------------------------------------------------------------------------


async def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not predicate():
            await anyio.sleep(0.01)


def test_the_writer_saves_each_change_and_coalesces_bursts(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    run = Run(make_rules(THRESHOLD_DURATION="60s"), MONO0, WALL0)
    writer = StateWriter(
        StateFile(path), run.rules, clock=lambda: MONO0 + 1, wall_clock=lambda: WALL0 + 1
    )

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.run)
            run.poll(MONO0, 95)
            writer.changed()
            await wait_for(lambda: path.exists())
            assert (
                json.loads(path.read_text())["rules"]["jobs_waiting"]["series"][0]["base"]["state"]
                == "pending"
            )
            before = writer.writes
            for _ in range(100):  # a burst: at most the write in progress and one more
                writer.changed()
            await wait_for(lambda: writer.writes >= before + 1)
            await writer.flush()
            assert writer.writes <= before + 3
            run.poll(MONO0 + 1, 10)
            await writer.flush()  # returns when it is on disk
            doc = json.loads(path.read_text())
            assert doc["rules"]["jobs_waiting"]["series"][0]["base"]["state"] == "ok"
            tasks.cancel_scope.cancel()

    anyio.run(main)


def test_a_failing_write_is_logged_once_and_retried_at_the_next_change(
    tmp_path: Path, records: list[Any]
) -> None:
    path = tmp_path / "state.json"
    path.mkdir()
    (path / "x").write_text("in the way")  # the rename onto it fails, as a full disk would
    run = Run(make_rules(), MONO0, WALL0)
    writer = StateWriter(StateFile(path), run.rules)

    def errors() -> list[str]:
        return [r["message"] for r in records if r["level"].name == "ERROR"]

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.run)
            for _ in range(5):
                writer.changed()
                await writer.flush()
            assert writer.writes == 0
            assert len(errors()) == 1, errors()
            assert "cannot write the state file" in errors()[0]
            (path / "x").unlink()
            path.rmdir()
            writer.changed()
            await wait_for(lambda: writer.writes == 1)
            assert any("written again" in r["message"] for r in records)
            tasks.cancel_scope.cancel()

    anyio.run(main)
    assert json.loads(path.read_text())["format"] == "metric-reader-state"


def test_the_writer_restores_then_writes_the_current_state(
    tmp_path: Path, records: list[Any]
) -> None:
    path = tmp_path / "state.json"
    first = Run(make_rules(THRESHOLD_DURATION="60s"), MONO0, WALL0)
    first.poll(MONO0, 95)
    StateFile(path).save(first.save(MONO0 + 1))
    rules = make_rules(THRESHOLD_DURATION="60s")
    writer = StateWriter(StateFile(path), rules, clock=lambda: 5.0, wall_clock=lambda: WALL0 + 2)

    async def main() -> None:
        messages = await writer.restore()
        assert any("1 pending" in m for m in messages)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.run)
            await wait_for(lambda: writer.writes == 1)
            tasks.cancel_scope.cancel()

    anyio.run(main)
    assert rules[0].machine is not None
    assert rules[0].machine.series[SERIES].base.active_at == pytest.approx(3.0)
    assert json.loads(path.read_text())["written_at"] == WALL0 + 2
    assert any("1 pending" in r["message"] for r in records)


def test_a_dry_run_starts_from_the_real_file_and_never_changes_it(
    tmp_path: Path, records: list[Any]
) -> None:
    path = tmp_path / "state.json"
    real = Run(make_rules(BACKOFF_DELAY="60s"), MONO0, WALL0)
    assert real.poll(MONO0, 95) == ["base:fire"]  # run for real, saved
    StateFile(path).save(real.save(MONO0 + 1))
    saved = path.read_bytes()
    leftover = tmp_path / ".state.json.4242.cafe.tmp"  # the real service's write in progress
    leftover.write_text("{")
    dry = Run(make_rules(BACKOFF_DELAY="60s"), 5.0, WALL0 + 2)
    writer = StateWriter(
        StateFile(path), dry.rules, dry_run=True, clock=lambda: 5.0, wall_clock=lambda: WALL0 + 2
    )

    async def main() -> None:
        messages = await writer.restore()
        assert any("1 firing" in m for m in messages), messages
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(writer.run)
            # The dry run goes on from the real state: the repeat is owed at 60 s, as for real.
            assert dry.poll(5.0 + 1, 95) == []
            assert dry.poll(5.0 + 58, 95) == ["base:repeat"]
            writer.changed()
            await writer.flush()
            await anyio.sleep(0.05)
            tasks.cancel_scope.cancel()
        await writer.flush()

    anyio.run(main)
    assert writer.writes == 0
    assert path.read_bytes() == saved
    assert leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [leftover.name, "state.json"]


def test_a_dry_run_leaves_an_unusable_file_where_it_is(tmp_path: Path, records: list[Any]) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"{not json")
    assert StateFile(path, read_only=True).load() is None
    assert path.read_bytes() == b"{not json"
    assert not list(tmp_path.glob("state.json.corrupt-*"))
    [warning] = warnings_of(records)
    assert "not valid JSON" in warning and "leaves it as it is" in warning


# --- a property: a restart changes nothing ----------------------------------------------------

steps = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=40),  # seconds to the next poll
        st.sampled_from([None, 10.0, 85.0, 99.0, math.nan]),  # absent, ok, base, hard
        st.sampled_from([True, True, False]),  # whether the actions succeed
    ),
    max_size=40,
)


def _drive(run: Run, t: float, script: list[tuple[int, float | None, bool]]) -> list[str]:
    out = []
    for gap, value, ok in script:
        t += gap
        run.calls.clear()
        kinds = run.poll(t, value, ok=ok)
        durations = [round(a.duration, 3) for _, a in run.calls]
        out.append(f"{gap} {kinds} {durations}")
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=steps,
    after=steps,
    duration=st.sampled_from(["0s", "5s", "30s"]),
    backoff=st.sampled_from(["0s", "10s", "60s"]),
    hard=st.booleans(),
    missing=st.sampled_from(["skip", "last_value", "zero", "assume_breached"]),
    pause=st.integers(min_value=0, max_value=500),
)
def test_snapshot_restore_snapshot_is_stable_and_the_rule_carries_on_alike(
    before: list[tuple[int, float | None, bool]],
    after: list[tuple[int, float | None, bool]],
    duration: str,
    backoff: str,
    hard: bool,
    missing: str,
    pause: int,
) -> None:
    env = {
        "THRESHOLD_DURATION": duration,
        "BACKOFF_DELAY": backoff,
        "MISSING_VALUE_BEHAVIOR": missing,
        "POLLING_INTERVAL": "3s",
        **({"HARD_THRESHOLD": ">95", "HARD_THRESHOLD_DURATION": "10s"} if hard else {}),
    }
    first = Run(make_rules(**env), MONO0, WALL0)
    _drive(first, MONO0, before)
    t_end = MONO0 + sum(gap for gap, _, _ in before)
    saved = first.save(t_end)
    # The restart: `pause` seconds later, on a monotonic clock with another origin.
    second, _ = restart(saved, wall=first.wall(t_end) + pause, mono=7.0, settings=env)
    again = json.loads(json.dumps(snapshot(second.rules, 7.0, first.wall(t_end) + pause)))
    assert {**again, "written_at": None} == {**saved, "written_at": None}
    # The same future, seen by a process that never stopped (the pause is a gap in its polls)
    # and by the restarted one, hands out the same actions with the same breach durations.
    kept = _drive(first, t_end + pause, after)
    restarted = _drive(second, 7.0, after)
    assert restarted == kept


def test_a_fix_being_verified_and_the_attempts_that_did_not_hold_survive_a_restart() -> None:
    """Saved mid-verification, a second attempt pending: the restarted service finds it
    did not hold at the same deadline and gives up (max_attempts 2), calling no plugin."""
    env = {"ACTION_PLUGIN": "restart", "BACKOFF_DELAY": "10s", "VERIFY_WITHIN": "30s"}
    rules = make_rules(**env, MAX_ATTEMPTS="2")
    step = EvaluationStep()

    def evaluate(rule: Rule, at: float) -> list[Any]:
        calls: list[Any] = []
        step.evaluate(rule, Observation(at, [Sample(SERIES, 95.0)]), calls.append)
        for call in calls:
            for plugin in call.plugins():
                call.report(plugin, ok=True)
            call.settle(at)
        return calls

    assert [c.action.kind for c in evaluate(rules[0], MONO0)] == ["fire"]
    held = evaluate(rules[0], MONO0 + 30)  # the fire did not hold: the repeat tries again
    assert sorted(type(c).__name__ for c in held) == ["FixNotice", "OwedCall"]
    doc = json.loads(json.dumps(snapshot(rules, MONO0 + 31, WALL0 + 31), allow_nan=False))
    [series] = doc["rules"]["jobs_waiting"]["series"]
    assert (series["base"]["fix"]["deadline"], series["base"]["unheld"]) == (WALL0 + 60, 1)

    again = make_rules(**env, MAX_ATTEMPTS="2")
    restore(again, doc, 5.0, WALL0 + 33)  # restarted: monotonic 5.0 is WALL0 + 33
    assert evaluate(again[0], 5.0 + 26) == []  # a second before the deadline: nothing
    [gave_up] = evaluate(again[0], 5.0 + 27)
    assert (type(gave_up).__name__, gave_up.event(None, 32.0).kind) == ("FixNotice", "gave_up")
    assert evaluate(again[0], 5.0 + 60) == []  # the loop breaker: no repeat in this breach
