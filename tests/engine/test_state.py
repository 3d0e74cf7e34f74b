"""The state machine (README, "When an action runs"), driven by a fake clock.

Each scenario is a script of polls: at time ``t`` the source returns ``value`` (``None``:
the series is absent, NaN: a NaN sample); the actions the machine hands out at that poll
are run at once and succeed unless the script says otherwise. The assertion is on what
a plugin would have received: kind, level and the breach duration.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import pytest

from metric_reader._config import MissingValueBehavior
from metric_reader._core._samples import Labels, Sample
from metric_reader._core._threshold import parse_threshold
from metric_reader._engine._rule_machine import RuleMachine
from metric_reader._engine._state import (
    MAX_COUNT,
    MAX_RETRY_DELAY,
    LevelMachine,
    LevelPolicy,
    State,
)

SERIES: Labels = (("instance", "a"),)


@dataclass
class Call:
    t: float
    kind: str
    level: str
    value: float
    duration: float
    fire_count: int


@dataclass
class Harness:
    """Runs a RuleMachine like the service does, recording the calls a plugin would get."""

    machine: RuleMachine
    fail_until: dict[str, float] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def poll(self, t: float, value: float | None, labels: Labels = SERIES) -> list[str]:
        samples = [] if value is None else [Sample(labels, value)]
        self.machine.observe(t, samples)
        return self.dispatch(t)

    def dispatch(self, t: float) -> list[str]:
        kinds = []
        for action in self.machine.take_due(t):
            ok = t >= self.fail_until.get(action.level, -math.inf)
            if ok:
                self.calls.append(
                    Call(
                        t,
                        action.kind,
                        action.level,
                        action.value,
                        action.duration,
                        action.fire_count,
                    )
                )
            kinds.append(f"{action.level}:{action.kind}" + ("" if ok else "!"))
            self.machine.finish(t, action, ok)
        return kinds

    def state(self, labels: Labels = SERIES, level: str = "base") -> State:
        series = self.machine.series[labels]
        machine = series.base if level == "base" else series.hard
        assert machine is not None
        return machine.state


def harness(
    threshold: str = ">80",
    duration: float = 0.0,
    backoff: float = 0.0,
    missing: str = "skip",
    hard: tuple[str, float, float] | tuple[str, float, float, float] | None = None,
    retry: float = 1.0,
    keep_firing_for: float = 0.0,
    clear: str | None = None,
    forget_after: float = 600.0,
) -> Harness:
    base = LevelPolicy(
        parse_threshold(threshold),
        duration,
        backoff,
        retry,
        keep_firing_for,
        parse_threshold(clear) if clear else None,
    )
    hard_policy = (
        LevelPolicy(parse_threshold(hard[0]), hard[1], hard[2], retry, *hard[3:]) if hard else None
    )
    return Harness(
        RuleMachine(base, hard_policy, MissingValueBehavior(missing), forget_after=forget_after)
    )


Script = list[tuple[float, float | None, list[str]]]

SCENARIOS: dict[str, tuple[dict[str, object], Script]] = {
    # the OK row of the README's state table
    "ok stays ok on a value that is not breached": (
        {"duration": 5},
        [(0, 10, []), (1, 80, []), (2, 79.9, [])],
    ),
    "ok goes pending, then fires once the duration is met": (
        {"duration": 5},
        [(0, 90, []), (4, 90, []), (5, 90, ["base:fire"]), (6, 90, [])],
    ),
    "zero duration fires on the first breached value": (
        {"duration": 0},
        [(0, 50, []), (1, 81, ["base:fire"]), (2, 81, [])],
    ),
    # PENDING row
    "duration not yet met: nothing runs": (
        {"duration": 10},
        [(0, 90, []), (5, 95, []), (9.99, 99, [])],
    ),
    "a dip shorter than the duration resets the timer": (
        {"duration": 5},
        [(0, 90, []), (3, 70, []), (4, 90, []), (8, 90, []), (9, 90, ["base:fire"])],
    ),
    "pending back to ok runs nothing": (
        {"duration": 5},
        [(0, 90, []), (2, 10, []), (10, 10, [])],
    ),
    # FIRING row
    "backoff 0 runs once per breach": (
        {"duration": 1, "backoff": 0},
        [(0, 90, []), (1, 90, ["base:fire"]), (100, 90, []), (1000, 90, [])],
    ),
    "backoff suppresses repeats inside the delay": (
        {"backoff": 10},
        [(0, 90, ["base:fire"]), (5, 90, []), (9.9, 90, [])],
    ),
    "backoff expiry re-runs the action": (
        {"backoff": 10},
        [
            (0, 90, ["base:fire"]),
            (10, 90, ["base:repeat"]),
            (15, 90, []),
            (20, 90, ["base:repeat"]),
        ],
    ),
    "firing back to ok resolves": (
        {"backoff": 10},
        [(0, 90, ["base:fire"]), (1, 50, ["base:resolve"]), (2, 50, [])],
    ),
    "a new breach after a resolve fires again": (
        {"duration": 2},
        [
            (0, 90, []),
            (2, 90, ["base:fire"]),
            (3, 10, ["base:resolve"]),
            (4, 90, []),
            (6, 90, ["base:fire"]),
        ],
    ),
    # Missing values
    "skip leaves state and timers as they are": (
        {"duration": 5, "missing": "skip"},
        [
            (0, 90, []),
            (2, None, []),
            (4, math.nan, []),
            (5, 90, ["base:fire"]),
            (6, None, []),
            (7, 90, []),
        ],
    ),
    "skip does not resolve while the series is absent": (
        {"missing": "skip"},
        [(0, 90, ["base:fire"]), (1, None, []), (50, None, []), (51, 10, ["base:resolve"])],
    ),
    "last_value reuses the last value seen": (
        {"duration": 2, "missing": "last_value"},
        [(0, 90, []), (1, None, []), (2, math.nan, ["base:fire"])],
    ),
    "last_value with nothing seen yet skips": (
        {"missing": "last_value"},
        [(0, None, []), (1, None, [])],
    ),
    "zero counts a missing value as 0": (
        {"threshold": ">80", "missing": "zero"},
        [(0, 90, ["base:fire"]), (1, None, ["base:resolve"])],
    ),
    "zero breaches a below threshold": (
        {"threshold": "<10", "duration": 1, "missing": "zero"},
        [(0, None, []), (1, None, ["base:fire"])],
    ),
    "assume_breached acts on a metric that does not exist": (
        {"duration": 3, "missing": "assume_breached"},
        [(0, None, []), (3, None, ["base:fire"]), (4, 10, ["base:resolve"])],
    ),
    "NaN is a missing value, not a breach": (
        {"threshold": "!=0", "missing": "skip"},
        [(0, math.nan, []), (1, math.nan, []), (2, 1, ["base:fire"])],
    ),
    # Escalation
    "soft to hard": (
        {"duration": 2, "hard": (">95", 2, 0)},
        [(0, 90, []), (2, 99, ["base:fire"]), (3, 99, []), (4, 99, ["hard:fire"]), (5, 99, [])],
    ),
    "hard is only evaluated while the base level fires": (
        {"duration": 10, "hard": (">95", 0, 0)},
        [(0, 99, []), (5, 99, []), (10, 99, ["base:fire", "hard:fire"])],
    ),
    "hard back to base firing resolves hard only": (
        {"hard": (">95", 0, 0)},
        [
            (0, 99, ["base:fire", "hard:fire"]),
            (1, 90, ["hard:resolve"]),
            (2, 90, []),
            (3, 99, ["hard:fire"]),
        ],
    ),
    "hard back to none resolves both": (
        {"hard": (">95", 0, 0)},
        [(0, 99, ["base:fire", "hard:fire"]), (1, 10, ["base:resolve", "hard:resolve"])],
    ),
    "hard has its own backoff": (
        {"backoff": 100, "hard": (">95", 0, 5)},
        [(0, 99, ["base:fire", "hard:fire"]), (5, 99, ["hard:repeat"]), (10, 99, ["hard:repeat"])],
    ),
    # Flap control
    "keep_firing_for: no resolve inside the window": (
        {"keep_firing_for": 10},
        # the window starts at the first value that breaches nothing (1), as in Prometheus
        [(0, 90, ["base:fire"]), (1, 50, []), (10.9, 50, []), (11, 50, ["base:resolve"])],
    ),
    "keep_firing_for: a breach again inside the window is the same breach": (
        {"keep_firing_for": 10},
        [
            (0, 90, ["base:fire"]),
            (5, 50, []),
            (8, 90, []),
            (17, 50, []),
            (18, 90, []),
            (27, 50, []),
            (38, 50, ["base:resolve"]),
        ],
    ),
    "keep_firing_for does not hold a pending breach": (
        {"duration": 5, "keep_firing_for": 10},
        [(0, 90, []), (2, 50, []), (7, 90, []), (12, 90, ["base:fire"])],
    ),
    "clear_threshold: once firing, only the clear value ends the breach": (
        {"clear": "<70"},
        [
            (0, 90, ["base:fire"]),
            (1, 75, []),
            (2, 79, []),
            (3, 70, []),
            (4, 69, ["base:resolve"]),
            (5, 75, []),
            (6, 81, ["base:fire"]),
        ],
    ),
    "clear_threshold does not start a breach": (
        {"clear": "<70", "duration": 5},
        [(0, 75, []), (1, 90, []), (3, 75, []), (10, 75, [])],
    ),
    "a hard dip shorter than its duration runs nothing": (
        {"hard": (">95", 5, 0)},
        [
            (0, 90, ["base:fire"]),
            (1, 99, []),
            (3, 90, []),
            (4, 99, []),
            (8, 99, []),
            (9, 99, ["hard:fire"]),
        ],
    ),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    options, script = SCENARIOS[name]
    h = harness(**options)  # type: ignore[arg-type]
    for t, value, expected in script:
        assert h.poll(t, value) == expected, f"{name}: at t={t} value={value}"


def test_fire_carries_value_and_breach_duration() -> None:
    """The resolve carries the last value at which the breach held, as Prometheus sends an
    alert's last active value, not the value that ended it."""
    h = harness(duration=30, backoff=60)
    h.poll(100, 85)
    h.poll(115, 88)
    h.poll(130, 91)
    h.poll(190, 93)
    h.poll(200, 10)
    assert [(c.kind, c.value, c.duration, c.fire_count) for c in h.calls] == [
        ("fire", 91, 30, 0),
        ("repeat", 93, 90, 1),
        ("resolve", 93, 100, 2),
    ]


def test_failed_action_is_retried_with_exponential_backoff_until_it_succeeds() -> None:
    h = harness(retry=1.0)
    h.fail_until["base"] = 7
    got = {t: h.poll(t, 90) for t in range(12)}
    # Failures at 0, 1 (after 1 s), 3 (after 2 s), then success at 7 (after 4 s).
    assert {t: kinds for t, kinds in got.items() if kinds} == {
        0: ["base:fire!"],
        1: ["base:fire!"],
        3: ["base:fire!"],
        7: ["base:fire"],
    }
    assert [c.kind for c in h.calls] == ["fire"]


def test_retry_delay_is_capped_at_five_minutes() -> None:
    h = harness(retry=100.0)
    h.fail_until["base"] = math.inf
    times = [t for t in range(0, 2000) if h.poll(t, 90)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[:3] == [100, 200, MAX_RETRY_DELAY]
    assert max(gaps) == MAX_RETRY_DELAY


def test_a_breach_that_ends_before_any_success_resolves_nothing() -> None:
    h = harness()
    h.fail_until["base"] = math.inf
    assert h.poll(0, 90) == ["base:fire!"]
    assert h.poll(1, 10) == []
    assert h.poll(2, 10) == []


def test_repeat_backoff_counts_from_the_last_success() -> None:
    h = harness(backoff=10, retry=1)
    h.poll(0, 90)  # fire succeeds
    h.fail_until["base"] = 13
    assert h.poll(10, 90) == ["base:repeat!"]
    assert h.poll(11, 90) == ["base:repeat!"]
    assert h.poll(13, 90) == ["base:repeat"]
    assert h.poll(22, 90) == []
    assert h.poll(23, 90) == ["base:repeat"]


def test_at_most_one_call_in_flight_per_series_and_level() -> None:
    h = harness(backoff=1)
    h.machine.observe(0, [Sample(SERIES, 90)])
    [fire] = h.machine.take_due(0)
    for t in range(1, 20):  # the plugin is slow: nothing else starts meanwhile
        h.machine.observe(t, [Sample(SERIES, 90)])
        assert h.machine.take_due(t) == []
    h.machine.finish(20, fire, ok=True)
    h.machine.observe(21, [Sample(SERIES, 90)])
    assert [a.kind for a in h.machine.take_due(21)] == ["repeat"]


def test_breach_ending_while_the_fire_is_in_flight_resolves_after_it_succeeds() -> None:
    h = harness()
    h.machine.observe(0, [Sample(SERIES, 90)])
    [fire] = h.machine.take_due(0)
    h.machine.observe(1, [Sample(SERIES, 10)])
    assert h.machine.take_due(1) == []
    h.machine.finish(2, fire, ok=True)
    assert [a.kind for a in h.machine.take_due(2)] == ["resolve"]


def test_breach_ending_while_the_fire_is_in_flight_and_fails_resolves_nothing() -> None:
    h = harness()
    h.machine.observe(0, [Sample(SERIES, 90)])
    [fire] = h.machine.take_due(0)
    h.machine.observe(1, [Sample(SERIES, 10)])
    h.machine.finish(2, fire, ok=False)
    assert h.machine.take_due(100) == []


def test_failed_resolve_is_retried() -> None:
    h = harness(retry=1)
    h.poll(0, 90)
    h.fail_until["base"] = 2
    assert h.poll(1, 10) == ["base:resolve!"]
    assert h.poll(2, 10) == ["base:resolve"]
    assert h.poll(3, 10) == []


def test_each_series_has_its_own_machine() -> None:
    a: Labels = (("disk", "a"),)
    b: Labels = (("disk", "b"),)
    h = harness(duration=2)
    m = h.machine
    m.observe(0, [Sample(a, 90), Sample(b, 10)])
    m.observe(1, [Sample(a, 90), Sample(b, 90)])
    m.observe(2, [Sample(a, 90), Sample(b, 90)])
    assert [(x.labels, x.kind) for x in m.take_due(2)] == [(a, "fire")]
    m.observe(3, [Sample(a, 90), Sample(b, 90)])
    assert [(x.labels, x.kind) for x in m.take_due(3)] == [(b, "fire")]


def test_absent_series_is_a_missing_value_for_that_series_only() -> None:
    a: Labels = (("disk", "a"),)
    b: Labels = (("disk", "b"),)
    h = harness(missing="zero", threshold="<10")
    h.machine.observe(0, [Sample(a, 50), Sample(b, 50)])
    h.machine.observe(1, [Sample(a, 50)])
    assert [(x.labels, x.kind) for x in h.machine.take_due(1)] == [(b, "fire")]


def test_placeholder_series_is_resolved_and_dropped_when_real_series_appear() -> None:
    h = harness(missing="assume_breached")
    assert h.poll(0, None) == ["base:fire"]
    assert list(h.machine.series) == [()]
    assert h.poll(1, 10, labels=SERIES) == ["base:resolve"]
    assert h.poll(2, None) == ["base:fire"]  # the real series is now absent, assumed breached
    assert list(h.machine.series) == [SERIES]


def test_a_late_outcome_of_an_old_breach_does_not_touch_a_new_one() -> None:
    h = harness(duration=5)
    h.machine.observe(0, [Sample(SERIES, 90)])
    h.machine.observe(5, [Sample(SERIES, 90)])
    [fire] = h.machine.take_due(5)
    h.machine.observe(6, [Sample(SERIES, 10)])
    h.machine.observe(7, [Sample(SERIES, 90)])  # a new breach, pending
    h.machine.finish(8, fire, ok=True)
    assert h.machine.take_due(8) == []
    h.machine.observe(12, [Sample(SERIES, 90)])
    [again] = h.machine.take_due(12)
    assert (again.kind, again.fire_count, again.duration) == ("fire", 0, 5)


def test_transitions_are_reported_for_logging() -> None:
    h = harness(duration=2)
    seen = []
    for t, v in [(0, 90), (2, 90), (3, 10)]:
        seen += [(x.old, x.new) for x in h.machine.observe(t, [Sample(SERIES, v)])]
        h.dispatch(t)
    assert seen == [
        (State.OK, State.PENDING),
        (State.PENDING, State.FIRING),
        (State.FIRING, State.OK),
    ]


@pytest.mark.parametrize(
    ("threshold", "value", "breached"),
    [
        (">80", 80.1, True),
        (">80", 80, False),
        ("<10", 9, True),
        ("<10", 10, False),
        (">=0.5", 0.5, True),
        (">=0.5", 0.49, False),
        ("<=-3", -3, True),
        ("<=-3", -2.9, False),
        ("==1", 1, True),
        ("==1", 1.1, False),
        ("!=0", 2, True),
        ("!=0", 0, False),
        ("> 1e3", 1001, True),
        ("<+Inf", 1e308, True),
        (">-Inf", -1e308, True),
        (">80", math.inf, True),
        ("!=0", math.nan, False),
    ],
)
def test_threshold_operators(threshold: str, value: float, breached: bool) -> None:
    assert parse_threshold(threshold).breached(value) is breached


def test_backoff_counts_from_when_the_successful_call_started() -> None:
    h = harness(backoff=10)
    h.machine.observe(0, [Sample(SERIES, 90)])
    [fire] = h.machine.take_due(0)
    h.machine.finish(3, fire, ok=True)  # the plugin took 3 s
    h.machine.observe(9, [Sample(SERIES, 90)])
    assert h.machine.take_due(9) == []
    h.machine.observe(10, [Sample(SERIES, 90)])
    assert [a.kind for a in h.machine.take_due(10)] == ["repeat"]


def test_a_vanished_series_is_resolved_then_forgotten() -> None:
    a: Labels = (("pod", "a"),)
    b: Labels = (("pod", "b"),)
    h = harness(forget_after=60)
    h.machine.observe(0, [Sample(a, 90), Sample(b, 10)])
    assert h.dispatch(0) == ["base:fire"]
    for t in range(1, 60):
        h.machine.observe(t, [Sample(b, 10)])
        assert h.dispatch(t) == []  # skip: absent for less than a minute changes nothing
    h.machine.observe(60, [Sample(b, 10)])
    assert h.dispatch(60) == ["base:resolve"]
    h.machine.observe(61, [Sample(b, 10)])
    assert list(h.machine.series) == [b]


def test_memory_stays_flat_when_label_values_churn() -> None:
    h = harness(forget_after=30)
    for t in range(10_000):
        h.machine.observe(t, [Sample((("request_id", str(t)),), 10)])
    assert len(h.machine.series) <= 31


# --- a follower taking on what the leader ran (leader election) ---------------------------


def follower_poll(h: Harness, t: float, value: float | None) -> None:
    """A follower observes like the leader but hands out nothing."""
    h.machine.observe(t, [] if value is None else [Sample(SERIES, value)])


def level(h: Harness) -> LevelMachine:
    return h.machine.series[SERIES].base


def test_a_new_leader_does_not_fire_again_what_the_old_leader_fired() -> None:
    h = harness(duration=5, backoff=30)
    for t in range(0, 8):
        follower_poll(h, t, 90)
    assert level(h).due == "fire"  # owed, kept for when this replica leads
    assert level(h).adopt("fire", 5.5, 1)  # the leader fired at 5.5
    assert h.poll(8, 90) == []  # now leading: nothing to run again
    assert h.poll(35, 90) == []
    assert h.poll(35.5, 90) == ["base:repeat"]  # the backoff counts from the leader's fire
    assert h.calls[-1].fire_count == 1


def test_a_follower_still_pending_when_the_leader_fired_does_not_fire_later() -> None:
    h = harness(duration=5)
    follower_poll(h, 1, 90)
    follower_poll(h, 5, 90)
    assert level(h).state is State.PENDING
    assert level(h).adopt("fire", 5.5, 1)
    follower_poll(h, 6, 90)  # its own duration is over now
    assert level(h).state is State.FIRING and level(h).due is None
    assert h.poll(7, 90) == []


def test_a_new_leader_resolves_what_the_old_leader_fired() -> None:
    h = harness(duration=0)
    follower_poll(h, 0, 90)
    level(h).adopt("fire", 0.2, 1)
    follower_poll(h, 3, 10)  # the breach ends while the old leader is gone
    assert h.poll(4, 10) == ["base:resolve"]


def test_a_resolve_the_leader_ran_is_not_run_again() -> None:
    h = harness(duration=0)
    follower_poll(h, 0, 90)
    level(h).adopt("fire", 0.2, 1)
    follower_poll(h, 3, 10)
    assert level(h).adopt("resolve", 3.1, 1)
    assert h.poll(4, 10) == []


def test_nothing_is_adopted_into_a_series_that_is_not_breached() -> None:
    h = harness(duration=0)
    follower_poll(h, 0, 10)
    assert not level(h).adopt("fire", 0.2, 1)
    assert h.poll(1, 90) == ["base:fire"]


def test_without_a_record_a_new_leader_runs_what_is_owed() -> None:
    h = harness(duration=5)
    for t in range(0, 8):
        follower_poll(h, t, 90)
    assert h.poll(8, 90) == ["base:fire"]
    assert h.calls[-1].duration == 8


# --- counters and delays that must not overflow ---------------------------------------------


def test_ten_thousand_failed_calls_keep_retrying_every_five_minutes() -> None:
    """A plugin down for a month: the retry delay stays capped, nothing overflows."""
    h = harness(retry=1.0)
    h.fail_until["base"] = math.inf
    assert h.poll(0, 90) == ["base:fire!"]
    machine = level(h)
    t = 0.0
    for _ in range(9_999):
        t = machine.due_at
        assert h.poll(t, 90) == ["base:fire!"]
    assert machine.failures == 10_000
    assert machine.due_at - t == MAX_RETRY_DELAY
    h.fail_until["base"] = 0
    assert h.poll(t + MAX_RETRY_DELAY - 1, 90) == []
    assert h.poll(t + MAX_RETRY_DELAY, 90) == ["base:fire"]
    assert machine.failures == 0


def test_counts_restored_at_their_limit_stay_there_and_the_machine_goes_on() -> None:
    h = harness(backoff=10, retry=1.0)
    h.poll(0, 90)
    machine = level(h)
    machine.fire_count = machine.breach = MAX_COUNT
    h.fail_until["base"] = 12
    assert h.poll(10, 90) == ["base:repeat!"]
    machine.failures = MAX_COUNT
    assert h.poll(11, 90) == ["base:repeat!"]
    assert (machine.failures, machine.due_at) == (MAX_COUNT, 11 + MAX_RETRY_DELAY)
    assert h.poll(11 + MAX_RETRY_DELAY, 90) == ["base:repeat"]
    assert machine.fire_count == MAX_COUNT
    assert h.poll(400, 10) == ["base:resolve"]
    assert h.poll(401, 90) == ["base:fire"]  # a new breach, numbered afresh
    assert machine.breach == 1


# --- forgetting an absent series only when that cannot change what the rule does --------------


def run_polls(h: Harness, times: range, value: float | None) -> dict[float, list[str]]:
    """Poll at each of ``times``; the polls at which something was handed out."""
    got = {t: h.poll(t, value) for t in times}
    return {t: kinds for t, kinds in got.items() if kinds}


def test_the_heartbeat_example_fires_at_ten_minutes_and_keeps_firing_while_missing() -> None:
    """examples/rules.toml's batch-heartbeat: `<0`, assume_breached, 10 minutes, every 5 s
    (with a 5-minute backoff here). The series vanishes after t=100."""
    h = harness(threshold="<0", duration=600, backoff=300, missing="assume_breached")
    assert run_polls(h, range(0, 101, 5), 1.7e9) == {}
    missing = run_polls(h, range(105, 7200, 5), None)
    assert missing == {705: ["base:fire"]} | {705 + 300 * k: ["base:repeat"] for k in range(1, 22)}
    assert h.state() is State.FIRING
    assert h.poll(7200, 1.7e9 + 7200) == ["base:resolve"]  # it came back, with a good value
    assert h.calls[-1].duration == 7200 - 105


@pytest.mark.parametrize("missing", ["assume_breached", "zero", "last_value"])
def test_a_breach_that_absence_keeps_is_not_resolved_at_the_forget_window(missing: str) -> None:
    """A one-minute breach of `<10` whose series vanishes: assume_breached, zero (0 < 10)
    and last_value (5 < 10) all keep it breached, past the ten-minute forget window, until
    the series comes back with a good value."""
    h = harness(threshold="<10", duration=60, backoff=0, missing=missing)
    assert h.poll(0, 5) == []
    assert run_polls(h, range(15, 3600, 15), None) == {60: ["base:fire"]}
    assert h.state() is State.FIRING and list(h.machine.series) == [SERIES]
    assert h.poll(3600, 5) == []  # back, still breached: the same breach goes on
    assert h.poll(3615, 50) == ["base:resolve"]


@pytest.mark.parametrize(("missing", "value"), [("zero", 5), ("last_value", 50), ("skip", 5)])
def test_an_absent_series_that_absence_leaves_idle_is_forgotten(missing: str, value: float) -> None:
    """`>80`: neither 0, nor the last value 50, nor skip breaches it, so once the breach has
    resolved the absent series is idle, and forgetting it changes nothing."""
    h = harness(threshold=">80", missing=missing)
    assert h.poll(0, 90) == ["base:fire"]
    assert h.poll(1, value) == ["base:resolve"]
    assert run_polls(h, range(2, 601), None) == {}
    assert list(h.machine.series) == [SERIES]
    h.poll(601, None)  # absent for ten minutes, and idle: forgotten
    assert h.machine.series == {}


def test_skip_still_resolves_and_forgets_a_breach_absent_for_the_window() -> None:
    h = harness(missing="skip", backoff=120)
    assert h.poll(0, 90) == ["base:fire"]
    assert run_polls(h, range(10, 600, 10), None) == {}  # frozen: no repeat, no resolve
    assert h.poll(600, None) == ["base:resolve"]
    h.poll(610, None)
    assert h.machine.series == {}


@pytest.mark.parametrize(
    ("missing", "threshold"), [("skip", ">80"), ("zero", ">80"), ("last_value", ">80")]
)
def test_memory_stays_flat_when_label_values_churn_under_any_idle_absence(
    missing: str, threshold: str
) -> None:
    h = harness(threshold=threshold, missing=missing, forget_after=30)
    for t in range(10_000):
        h.machine.observe(t, [Sample((("request_id", str(t)),), 10)])
    assert len(h.machine.series) <= 32


# --- branches a mutation once survived ------------------------------------------------------


def test_a_series_repeated_in_one_reading_counts_its_first_value() -> None:
    h = harness()
    h.machine.observe(0, [Sample(SERIES, 90), Sample(SERIES, 10)])
    assert h.dispatch(0) == ["base:fire"]
    h.machine.observe(1, [Sample(SERIES, 10), Sample(SERIES, 90)])
    assert h.dispatch(1) == ["base:resolve"]  # 10 counted, not 90
    assert [c.value for c in h.calls] == [90, 90]  # the resolve: the last value that held


def test_a_hard_level_keeps_firing_for_its_window_only_while_the_base_level_fires() -> None:
    h = harness(hard=(">95", 0, 0, 30))
    assert h.poll(0, 99) == ["base:fire", "hard:fire"]
    assert h.poll(1, 90) == []  # hard no longer holds: kept firing for 30 s from here
    assert h.state(level="hard") is State.FIRING
    assert h.poll(30.9, 90) == []
    assert h.poll(31, 90) == ["hard:resolve"]
    assert h.poll(32, 99) == ["hard:fire"]
    # The base level resolves: the hard one resolves with it, its window notwithstanding.
    assert h.poll(33, 10) == ["base:resolve", "hard:resolve"]
    assert h.poll(34, 90) == ["base:fire"]  # a new base breach; hard starts afresh
    assert h.state(level="hard") is State.OK


def test_adopting_an_older_success_keeps_the_newer_one_for_the_backoff() -> None:
    h = harness(backoff=10)
    assert h.poll(0, 90) == ["base:fire"]
    assert h.poll(10, 90) == ["base:repeat"]
    # The leader's record counts more calls but its success is older than this one's.
    assert level(h).adopt("repeat", 5.0, 3)
    assert level(h).fire_count == 3
    assert h.poll(19.9, 90) == []
    assert h.poll(20, 90) == ["base:repeat"]
    assert h.calls[-1].fire_count == 3
