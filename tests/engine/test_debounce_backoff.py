"""Debounce (``breach_count`` of ``breach_window``) and escalating repeats
(``backoff_multiplier``, ``backoff_max``) in the state machine, on a fake clock (README,
"When an action runs")."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from metric_reader._config import MissingValueBehavior
from metric_reader._core._samples import Labels, Sample
from metric_reader._core._threshold import parse_threshold
from metric_reader._engine._rule_machine import RuleMachine
from metric_reader._engine._snapshot import restore_into, snapshot_of
from metric_reader._engine._state import LevelPolicy, State

SERIES: Labels = (("instance", "a"),)


@dataclass
class Call:
    t: float
    kind: str
    value: float


@dataclass
class Harness:
    """Runs a RuleMachine as the service does; every action succeeds at once."""

    machine: RuleMachine
    calls: list[Call] = field(default_factory=list)

    def poll(self, t: float, value: float | None) -> None:
        self.machine.observe(t, [] if value is None else [Sample(SERIES, value)])
        for action in self.machine.take_due(t):
            self.calls.append(Call(t, action.kind, action.value))
            self.machine.finish(t, action, True)

    def state(self) -> State:
        return self.machine.series[SERIES].base.state


POLICY = LevelPolicy(parse_threshold(">80"), retry_delay=1.0)
FLAP_2_OF_5 = [90, 10, 90, 10, 10] * 6
FLAP_3_OF_5 = [90, 10, 90, 10, 90] * 6


def run(policy: LevelPolicy, values: list[float | None], missing: str = "skip") -> Harness:
    h = Harness(RuleMachine(policy, None, MissingValueBehavior(missing)))
    for t, value in enumerate(values):
        h.poll(float(t), value)
    return h


def debounced(**changes: object) -> LevelPolicy:
    return replace(POLICY, breach_count=3, breach_window=5, **changes)  # type: ignore[arg-type]


def test_a_series_breaching_2_of_5_never_fires_while_3_of_5_does() -> None:
    assert run(debounced(), FLAP_2_OF_5).calls == []
    fired = run(debounced(), FLAP_3_OF_5).calls
    # 90 10 90 10 90: the third breach is the fifth evaluation
    assert [(c.t, c.kind, c.value) for c in fired] == [(4.0, "fire", 90)]
    # without debounce the same series fires at its first breach and resolves at each dip
    plain = run(POLICY, FLAP_3_OF_5[:5]).calls
    kinds = ["fire", "resolve", "fire", "resolve", "fire"]
    assert [(c.t, c.kind) for c in plain] == list(enumerate(kinds))


def test_pending_counts_from_the_third_breach_and_ok_needs_fewer_than_3_of_5() -> None:
    h = Harness(RuleMachine(debounced(duration=1.0), None))
    states = []
    for t, value in enumerate([90, 90, 10, 90, 10, 90, 10, 10]):
        h.poll(float(t), value)
        states.append(h.state().value[0])
    # 3 of the last 5 breach from t=3 to t=5: pending at 3, fires 1s later at 4 (though 4
    # itself did not breach: it carries the last value that did), and resolves at 6 when
    # only 2 of the last 5 (2..6) did.
    assert "".join(states) == "ooopffoo"
    assert [(c.t, c.kind, c.value) for c in h.calls] == [(4, "fire", 90), (6, "resolve", 90)]


def test_clear_threshold_decides_what_counts_as_breached_while_firing() -> None:
    policy = debounced(clear_threshold=parse_threshold("<50"))
    # fires at t=2; 70 is not above 80 but not below 50 either: still a breach while firing
    h = run(policy, [90, 90, 90, 70, 70, 70, 70, 40, 40])
    assert [(c.t, c.kind) for c in h.calls] == [(2, "fire")]
    h.poll(9.0, 40)  # 7, 8, 9 cleared: only 2 of the last 5 held
    assert [(c.t, c.kind) for c in h.calls] == [(2, "fire"), (9, "resolve")]


def test_a_missing_value_counts_as_its_missing_value_behavior_says() -> None:
    # skip: no evaluation; the window waits for values
    assert run(debounced(), [90, None, None, 90, None, 90]).calls[0].t == 5
    # assume_breached: a breach
    assert run(debounced(), [90, None, None], "assume_breached").calls[0].t == 2
    # resolve (an alert's series leaving the result): an evaluation that did not breach,
    # and the series is not forgotten while its window still holds a breach
    h = run(debounced(), [90, None, 90, None, 90], "resolve")
    assert [(c.t, c.kind) for c in h.calls] == [(4, "fire")]


def test_the_window_survives_a_restart_and_an_old_snapshot_counts_as_its_state() -> None:
    h = run(debounced(), [90, 10, 90, 10])  # 2 of 4: the next breach fires
    saved = snapshot_of(h.machine)
    assert saved.series[0].base.breaches == (False, True, False, True, False)
    fresh = Harness(RuleMachine(debounced(), None))
    restore_into(fresh.machine, saved, 4.0)
    fresh.poll(4.0, 90)
    assert [(c.t, c.kind) for c in fresh.calls] == [(4, "fire")]
    # a snapshot without the window (an older state file) of a firing level: it stays
    # firing until fewer than 3 of the last 5 breached, as if they all had
    firing = run(debounced(), [90, 90, 90])
    old = snapshot_of(firing.machine)
    old = replace(
        old, series=(replace(old.series[0], base=replace(old.series[0].base, breaches=None)),)
    )
    again = Harness(RuleMachine(debounced(), None))
    restore_into(again.machine, old, 3.0)
    for t in (3.0, 4.0):
        again.poll(t, 10)
        assert again.state() is State.FIRING
    again.poll(5.0, 10)
    assert again.state() is State.OK


REPEATS = dict(backoff=60.0, backoff_multiplier=2.0, backoff_max=240.0)


def test_repeats_come_after_1_2_4_then_every_4_minutes_and_reset_with_the_breach() -> None:
    policy = replace(POLICY, **REPEATS)  # type: ignore[arg-type]
    values: list[float | None] = [90.0] * 16 + [10.0] + [90.0] * 4  # one poll a minute
    h = Harness(RuleMachine(policy, None))
    for minute, value in enumerate(values):
        h.poll(minute * 60.0, value)
    minutes = [(c.t / 60, c.kind) for c in h.calls]
    # the fire at 0, repeats 1, 2, 4, 4, 4 minutes apart; the second breach starts again
    assert minutes == [
        (0, "fire"),
        (1, "repeat"),
        (3, "repeat"),
        (7, "repeat"),
        (11, "repeat"),
        (15, "repeat"),
        (16, "resolve"),
        (17, "fire"),
        (18, "repeat"),
        (20, "repeat"),
    ]


def test_the_interval_grows_without_bound_when_no_maximum_is_set() -> None:
    policy = replace(POLICY, backoff=1.0, backoff_multiplier=10.0)
    assert [policy.repeat_interval(n) for n in (1, 2, 3)] == [1.0, 10.0, 100.0]
    assert policy.repeat_interval(10**6) == math.inf  # no overflow
    assert replace(policy, backoff_max=50.0).repeat_interval(10**6) == 50.0


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.sampled_from([10.0, 90.0]), max_size=25),
    window=st.integers(1, 6),
    data=st.data(),
)
def test_a_level_is_breached_exactly_while_count_of_its_last_window_evaluations_breached(
    values: list[float], window: int, data: st.DataObject
) -> None:
    """The definition, checked against a plain recount; count = window = 1 (the default)
    is today's machine: breached exactly when the value is."""
    count = data.draw(st.integers(1, window))
    h = Harness(RuleMachine(replace(POLICY, breach_count=count, breach_window=window), None))
    for t, value in enumerate(values):
        h.poll(float(t), value)
        last = values[max(0, t + 1 - window) : t + 1]
        assert (h.state() is State.FIRING) == (sum(v > 80 for v in last) >= count)
