"""Properties of the state machine over arbitrary value sequences (hypothesis).

``test_calls_follow_the_breaches``: one level, a plugin that always succeeds; breaches are
recomputed from the values: nothing before the duration, one fire per breach, repeats no
closer than the backoff, exactly one resolve for each breach that fired and ended.

``test_every_call_owed_is_made_on_its_poll_and_no_other``: both levels, keep_firing_for,
clear_threshold and calls that fail; the calls owed are restated poll by poll, so a repeat
or retry that does not happen when due fails as surely as one that happens too early.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from metric_reader._core._samples import Sample
from metric_reader._core._threshold import parse_threshold
from metric_reader._engine._rule_machine import RuleMachine
from metric_reader._engine._state import MAX_RETRY_DELAY, LevelPolicy, State

SERIES = (("s", "1"),)
EPSILON = 1e-6
"""Times within a microsecond are one moment: 1.01 + 1.0 - 1.01 is 0.9999999999999998."""

polls = st.lists(
    st.tuples(st.floats(min_value=0.01, max_value=30), st.booleans()), min_size=1, max_size=80
)


def breaches(timeline: list[tuple[float, bool]]) -> list[tuple[float, float | None]]:
    """(start, end) of each run of breached polls; end is the first clear poll, or None."""
    runs: list[tuple[float, float | None]] = []
    start = None
    for t, breached in timeline:
        if breached and start is None:
            start = t
        elif not breached and start is not None:
            runs.append((start, t))
            start = None
    if start is not None:
        runs.append((start, None))
    return runs


@settings(max_examples=300, deadline=None)
@given(
    steps=polls,
    duration=st.sampled_from([0, 1, 5, 20]),
    backoff=st.sampled_from([0, 2, 10]),
)
def test_calls_follow_the_breaches(
    steps: list[tuple[float, bool]], duration: float, backoff: float
) -> None:
    machine = RuleMachine(LevelPolicy(parse_threshold(">0"), duration, backoff, 1.0))
    timeline: list[tuple[float, bool]] = []
    calls: list[tuple[float, str]] = []
    t = 0.0
    for gap, breached in steps:
        t += gap
        machine.observe(t, [Sample(SERIES, 1.0 if breached else 0.0)])
        timeline.append((t, breached))
        for action in machine.take_due(t):
            calls.append((t, action.kind))
            machine.finish(t, action, ok=True)

    for start, end in breaches(timeline):
        inside = [(ct, k) for ct, k in calls if start <= ct and (end is None or ct < end)]
        fires = [ct for ct, k in inside if k == "fire"]
        repeats = [ct for ct, k in inside if k == "repeat"]
        assert all(k != "resolve" for _, k in inside)
        last = max(t for t, _ in timeline if t >= start and (end is None or t < end))
        if last - start >= duration - EPSILON:
            # The first poll at or after start + duration fires, and nothing else does.
            first_due = min(
                pt
                for pt, _ in timeline
                if pt - start >= duration - EPSILON and (end is None or pt < end)
            )
            assert fires == [first_due]
        else:
            assert fires == [] and repeats == []
        if backoff == 0:
            assert repeats == []
        else:
            times = fires + repeats
            assert all(b - a >= backoff - EPSILON for a, b in itertools.pairwise(times))
        resolves = [ct for ct, k in calls if k == "resolve" and ct == end]
        assert resolves == ([end] if fires and end is not None else [])
    assert sum(1 for _, k in calls if k == "resolve") == sum(
        1
        for s, e in breaches(timeline)
        if e is not None and any(k == "fire" and s <= ct < e for ct, k in calls)
    )


# --- the whole machine: both levels, flap control and failing calls ---------------------------
#
# An independent statement of the rules, poll by poll: which polls each level is FIRING
# (duration, keep_firing_for, clear_threshold, the hard level counting only while the base
# level fires), then exactly which calls are owed in each breach: the fire, a retry of a
# failed call at the first poll its doubling delay allows, a repeat at the first poll the
# condition holds once the backoff has passed since the last success, and one resolve (and
# its retries) when a breach that had a successful call ends. The machine must hand out
# exactly these calls: none missing, none extra, none late.


@dataclass(frozen=True)
class Level:
    threshold: str
    duration: float
    backoff: float
    keep_firing_for: float = 0.0
    clear: str | None = None

    def policy(self, retry: float) -> LevelPolicy:
        clear = parse_threshold(self.clear) if self.clear else None
        return LevelPolicy(
            parse_threshold(self.threshold),
            self.duration,
            self.backoff,
            retry,
            self.keep_firing_for,
            clear,
        )


@dataclass
class Breach:
    started: float
    fired: float | None = None
    ended: float | None = None


def expected_breaches(
    polls: list[tuple[float, float]], level: Level, gate: list[bool] | None
) -> tuple[list[Breach], list[bool], list[bool]]:
    """The breaches of one level, and per poll whether it is FIRING after the poll and
    whether its condition held."""
    threshold = parse_threshold(level.threshold)
    clear = parse_threshold(level.clear) if level.clear else None
    breaches: list[Breach] = []
    firing_at, held_at = [], []
    current: Breach | None = None
    last_held: float | None = None
    cleared: float | None = None  # the first poll that did not hold while firing
    for i, (t, value) in enumerate(polls):
        allowed = gate is None or gate[i]
        firing = current is not None and current.fired is not None
        if not allowed:
            held, last_held = False, None
        elif firing and clear is not None:
            held = not clear.breached(value)
        else:
            held = threshold.breached(value)
        if held:
            last_held, cleared = t, None
            if current is None:
                current = Breach(started=t)
                breaches.append(current)
            if current.fired is None and t - current.started >= level.duration - EPSILON:
                current.fired = t
        elif current is not None:
            if current.fired is not None and last_held is not None and cleared is None:
                cleared = t  # keep_firing_for counts from here, as in Prometheus
            kept = (
                current.fired is not None
                and last_held is not None
                and cleared is not None
                and t - cleared < level.keep_firing_for - EPSILON
            )
            if not kept:
                current.ended = t
                current, cleared = None, None
        firing_at.append(current is not None and current.fired is not None)
        held_at.append(held)
    return breaches, firing_at, held_at


def expected_calls(
    polls: list[float],
    ok_at: list[bool],
    breaches: list[Breach],
    held_at: list[bool],
    level: Level,
    retry: float,
) -> list[tuple[float, str, bool]]:
    calls: list[tuple[float, str, bool]] = []
    for n, breach in enumerate(breaches):
        if breach.fired is None:
            continue
        following = breaches[n + 1].started if n + 1 < len(breaches) else math.inf
        end = math.inf if breach.ended is None else breach.ended
        due: float | None = breach.fired
        successes = failures = 0
        last_success = -math.inf
        for i, t in enumerate(polls):
            if not breach.fired <= t < end:
                continue
            if (
                due is None
                and level.backoff > 0
                and successes
                and held_at[i]
                and t - last_success >= level.backoff - EPSILON
            ):
                due = t
            if due is not None and t >= due - EPSILON:
                calls.append((t, "repeat" if successes else "fire", ok_at[i]))
                if ok_at[i]:
                    successes, failures, last_success, due = successes + 1, 0, t, None
                else:
                    failures += 1
                    due = t + min(retry * 2.0 ** (failures - 1), MAX_RETRY_DELAY)
        if not successes or breach.ended is None:
            continue
        due, failures = breach.ended, 0
        for i, t in enumerate(polls):
            if not breach.ended <= t < following or t < due - EPSILON:
                continue
            calls.append((t, "resolve", ok_at[i]))
            if ok_at[i]:
                break
            failures += 1
            due = t + min(retry * 2.0 ** (failures - 1), MAX_RETRY_DELAY)
    return sorted(calls)


levels = st.builds(
    Level,
    threshold=st.just(">80"),
    duration=st.sampled_from([0.0, 5.0, 20.0]),
    backoff=st.sampled_from([0.0, 3.0, 10.0]),
    keep_firing_for=st.sampled_from([0.0, 4.0]),
    clear=st.sampled_from([None, "<70"]),
)
hard_levels = st.builds(
    Level,
    threshold=st.just(">95"),
    duration=st.sampled_from([0.0, 5.0]),
    backoff=st.sampled_from([0.0, 3.0]),
    keep_firing_for=st.sampled_from([0.0, 4.0]),
    clear=st.sampled_from([None, "<90"]),
)
# Values in every region: clear of both, between clear and threshold, breached, hard.
steps = st.lists(
    st.tuples(
        st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.5, 10.0]),
        st.sampled_from([10.0, 75.0, 85.0, 92.0, 99.0]),
        st.booleans(),
    ),
    min_size=1,
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@example(  # the base level resolves inside the hard level's keep_firing_for window
    steps=[(1.0, 99.0, True), (1.0, 10.0, True), (1.0, 10.0, True)],
    base=Level(">80", 0.0, 0.0),
    hard=Level(">95", 0.0, 0.0, 4.0),
    retry=1.0,
)
@given(
    steps=steps,
    base=levels,
    hard=st.none() | hard_levels,
    retry=st.sampled_from([1.0, 2.0]),
)
def test_every_call_owed_is_made_on_its_poll_and_no_other(
    steps: list[tuple[float, float, bool]], base: Level, hard: Level | None, retry: float
) -> None:
    machine = RuleMachine(base.policy(retry), hard.policy(retry) if hard else None)
    made: dict[str, list[tuple[float, str, bool]]] = {"base": [], "hard": []}
    firing: dict[str, list[bool]] = {"base": [], "hard": []}
    polls: list[tuple[float, float]] = []
    t = 0.0
    for gap, value, ok in steps:
        t += gap
        polls.append((t, value))
        machine.observe(t, [Sample(SERIES, value)])
        for action in machine.take_due(t):
            made[action.level].append((t, action.kind, ok))
            machine.finish(t, action, ok)
        series = machine.series[SERIES]
        for name in ("base", "hard"):
            level = series.level(name)
            firing[name].append(level is not None and level.state is State.FIRING)

    times = [pt for pt, _ in polls]
    ok_at = [ok for _, _, ok in steps]
    breaches, base_firing, held = expected_breaches(polls, base, None)
    assert firing["base"] == base_firing
    assert made["base"] == expected_calls(times, ok_at, breaches, held, base, retry)
    if hard is None:
        assert made["hard"] == []
        return
    breaches, hard_firing, held = expected_breaches(polls, hard, base_firing)
    assert firing["hard"] == hard_firing
    assert made["hard"] == expected_calls(times, ok_at, breaches, held, hard, retry)
