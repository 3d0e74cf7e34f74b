"""A rule's state as a snapshot, and back (``_engine._snapshot``): pure, on a fake clock.

The property: whatever state a machine reaches on random observations, a fresh machine that
restores its snapshot, on a clock with another origin, hands out the same actions with the
same breach durations on every following observation, and ends in the same state. The other
tests pin what restoring checks and clamps, and what a snapshot deliberately leaves out.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from metric_reader._config import MissingValueBehavior, load_settings
from metric_reader._core._samples import Labels, Sample
from metric_reader._core._threshold import parse_threshold
from metric_reader._engine import (
    AlertingRule,
    LevelSnapshot,
    RuleSnapshot,
    SeriesSnapshot,
    make_rule,
)
from metric_reader._engine._rule_machine import RuleMachine
from metric_reader._engine._snapshot import (
    LEVEL_FIELDS_NOT_IN_SNAPSHOT,
    restore_into,
    snapshot_of,
)
from metric_reader._engine._state import (
    MAX_COUNT,
    MAX_RETRY_DELAY,
    LevelMachine,
    LevelPolicy,
    State,
)

A: Labels = (("queue", "a"),)
B: Labels = (("queue", "b"),)


def machine(
    duration: float = 0.0,
    backoff: float = 0.0,
    hard: bool = False,
    missing: str = "skip",
    keep_firing_for: float = 0.0,
    forget_after: float = 600.0,
) -> RuleMachine:
    base = LevelPolicy(parse_threshold(">80"), duration, backoff, 2.0, keep_firing_for)
    hard_policy = LevelPolicy(parse_threshold(">95"), 5.0, backoff, 2.0) if hard else None
    return RuleMachine(base, hard_policy, MissingValueBehavior(missing), forget_after=forget_after)


Poll = tuple[int, tuple[float | None, float | None], bool]
"""Seconds since the previous poll, the values of series A and B (None: absent), and
whether the calls handed out at this poll succeed."""

VALUES = st.sampled_from([None, 10.0, 85.0, 99.0, math.nan])
polls = st.lists(
    st.tuples(st.integers(min_value=1, max_value=40), st.tuples(VALUES, VALUES), st.booleans()),
    max_size=30,
)


def drive(rule: RuleMachine, t: float, script: list[Poll]) -> tuple[list[str], float]:
    """Run ``script`` from ``t``; what a plugin would receive at each poll, and the end."""
    out = []
    for gap, values, ok in script:
        t += gap
        samples = [
            Sample(labels, v) for labels, v in zip((A, B), values, strict=True) if v is not None
        ]
        changes = [f"{c.labels}:{c.level}:{c.old}>{c.new}" for c in rule.observe(t, samples)]
        calls = []
        for action in rule.take_due(t):
            calls.append(
                f"{action.labels}:{action.level}:{action.kind}:{action.duration:.6f}"
                f":{action.fire_count}:{action.value!r}"
            )
            rule.finish(t, action, ok)
        out.append(f"{gap} {changes} {calls}")
    return out, t


def in_a_keep_firing_window(rule: RuleMachine) -> bool:
    return any(level.cleared_at is not None for s in rule.series.values() for level in s.levels())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    before=polls,
    after=polls,
    duration=st.sampled_from([0.0, 5.0, 30.0]),
    backoff=st.sampled_from([0.0, 10.0]),
    hard=st.booleans(),
    missing=st.sampled_from(list(MissingValueBehavior)),
    keep_firing_for=st.sampled_from([0.0, 6.0]),
    forget_after=st.sampled_from([20.0, 600.0]),
    origin=st.integers(min_value=-10_000, max_value=10_000),
)
def test_a_restored_machine_goes_on_as_the_one_it_was_taken_from(
    before: list[Poll],
    after: list[Poll],
    duration: float,
    backoff: float,
    hard: bool,
    missing: MissingValueBehavior,
    keep_firing_for: float,
    forget_after: float,
    origin: int,
) -> None:
    def make() -> RuleMachine:
        return machine(duration, backoff, hard, missing.value, keep_firing_for, forget_after)

    first = make()
    _, t = drive(first, 1000.0, before)
    # Where a keep_firing_for window started is not kept (the window starts again): only
    # outside one is the restored machine's future the same.
    assume(not in_a_keep_firing_window(first))
    saved = snapshot_of(first)
    # Another process: its clock reads ``now`` where the first one read ``t``.
    now = t + origin
    second = make()
    restored = restore_into(second, saved.retimed(lambda at: at + origin), now)
    assert restored.clamped == 0 and restored.ended == ()
    assert snapshot_of(second).retimed(lambda at: at - origin) == saved

    kept, t_end = drive(first, t, after)
    again, now_end = drive(second, now, after)
    assert again == kept
    assert now_end - t_end == origin
    assert snapshot_of(second).retimed(lambda at: at - origin) == snapshot_of(first)


def test_every_field_of_a_level_is_in_its_snapshot_or_deliberately_left_out() -> None:
    kept = {f.name for f in dataclasses.fields(LevelSnapshot)}
    machine_fields = {f.name for f in dataclasses.fields(LevelMachine)}
    assert kept.isdisjoint(LEVEL_FIELDS_NOT_IN_SNAPSHOT)
    assert kept | set(LEVEL_FIELDS_NOT_IN_SNAPSHOT) == machine_fields


def test_an_action_in_flight_is_taken_as_still_owed() -> None:
    first = machine()
    first.observe(10.0, [Sample(A, 90.0)])
    [fire] = first.take_due(10.0)  # handed out, never finished: the process died
    level = snapshot_of(first).series[0].base
    assert (level.due, level.due_at) == ("fire", 10.0)
    second = machine()
    restored = restore_into(second, snapshot_of(first), 11.0)
    assert restored.owed == 1 and restored.firing == 1
    [again] = second.take_due(11.0)
    assert (again.kind, again.active_at, again.breach) == ("fire", 10.0, fire.breach)


def test_a_keep_firing_for_window_starts_again_never_shorter() -> None:
    first = machine(keep_firing_for=10.0)
    first.observe(0.0, [Sample(A, 90.0)])
    for action in first.take_due(0.0):
        first.finish(0.0, action, ok=True)
    first.observe(5.0, [Sample(A, 10.0)])  # the window starts: resolve at 15
    second = machine(keep_firing_for=10.0)
    restore_into(second, snapshot_of(first), 8.0)
    second.observe(8.0, [Sample(A, 10.0)])  # the restored one starts it here: resolve at 18
    assert second.observe(15.0, [Sample(A, 10.0)]) == []
    [resolved] = second.observe(18.0, [Sample(A, 10.0)])
    assert resolved.new is State.OK


FIRING = LevelSnapshot(State.FIRING, active_at=0.0, fired_at=0.0)


def level(**fields: object) -> LevelSnapshot:
    """A firing level, but for ``fields``."""
    return dataclasses.replace(FIRING, **fields)


def test_times_later_than_now_are_clamped_to_now_and_a_retry_at_most_the_longest_delay() -> None:
    saved = RuleSnapshot(
        True,
        (
            SeriesSnapshot(
                A,
                level(
                    active_at=500.0,
                    last_success_at=90.0,
                    last_action=("fire", False, 400.0),
                    due="repeat",
                    due_at=100.0 + 10 * MAX_RETRY_DELAY,
                    failures=3,
                ),
                last_seen=1e9,
            ),
        ),
    )
    rule = machine()
    restored = restore_into(rule, saved, 100.0)
    assert restored.clamped == 4  # active_at, last_action.at, due_at, last_seen
    base = rule.series[A].base
    assert base.active_at == 100.0 and base.last_success_at == 90.0
    assert base.last_action == ("fire", False, 100.0)
    assert base.due_at == 100.0 + MAX_RETRY_DELAY
    assert rule.series[A].last_seen == 100.0
    # A retry deadline inside the longest delay is kept as it was.
    rule = machine()
    restore_into(rule, dataclasses.replace(saved, series=()), 100.0)
    keep = level(due="repeat", due_at=100.0 + MAX_RETRY_DELAY / 2)
    assert restore_into(rule, RuleSnapshot(True, (SeriesSnapshot(A, keep),)), 100.0).clamped == 0
    assert rule.series[A].base.due_at == 100.0 + MAX_RETRY_DELAY / 2


def test_levels_the_machine_has_no_more_or_not_yet_are_taken_as_a_reload_takes_them() -> None:
    """A hard level saved that the machine lacks ends at once, owing its resolve to the
    plugins that took its fire (then it is dropped); one the snapshot lacks starts idle."""
    fired = level(fire_count=1, last_held_at=0.0, takers=("pager",), held_value=97.0)
    saved = RuleSnapshot(True, (SeriesSnapshot(A, FIRING, hard=fired), SeriesSnapshot(B, FIRING)))
    rule = machine(hard=False)
    restored = restore_into(rule, saved, 5.0)
    [ended] = restored.ended
    assert (ended.labels, ended.level, ended.new) == (A, "hard", State.OK)
    assert (restored.firing, restored.owed) == (2, 1)
    [resolve] = rule.take_due(5.0)
    assert (resolve.level, resolve.kind, resolve.takers, resolve.value) == (
        "hard",
        "resolve",
        ("pager",),
        97.0,
    )
    rule.finish(5.0, resolve, ok=True)
    assert rule.series[A].hard is None and rule.series[A].base.state is State.FIRING
    rule = machine(hard=True)
    assert restore_into(rule, saved, 5.0).ended == ()
    hard = rule.series[B].hard
    assert hard is not None and hard.state is State.OK and rule.series[B].base.fired_at == 0.0


def test_restoring_replaces_what_the_machine_had() -> None:
    rule = machine()
    rule.observe(0.0, [Sample(A, 90.0)])
    restore_into(rule, RuleSnapshot(True, (SeriesSnapshot(B, LevelSnapshot(State.OK)),)), 1.0)
    assert list(rule.series) == [B] and rule.seen_any


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"failures": MAX_COUNT + 1}, "failures"),
        ({"fire_count": -1}, "fire_count"),
        ({"breach": 2**64}, "breach"),
        ({"active_at": math.nan}, "active_at"),
        ({"due": "fire", "due_at": math.inf}, "due_at"),
        ({"last_action": ("fire", True, -math.inf)}, "last_action.at"),
        ({"active_at": None}, "firing with an action owed needs active_at"),
        ({"due": "resolve", "due_at": None}, "due resolve needs due_at"),
    ],
)
def test_a_snapshot_the_machine_could_not_hold_is_refused(
    fields: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        level(**fields)


def test_a_series_last_seen_must_be_a_time() -> None:
    with pytest.raises(ValueError, match="last_seen"):
        SeriesSnapshot(A, LevelSnapshot(State.OK), last_seen=math.nan)


def test_an_alerting_rule_snapshots_and_restores_its_own_state() -> None:
    settings = load_settings(
        {
            "SCRAPE_URL": "http://127.0.0.1:9/metrics",
            "METRIC_NAME": "jobs",
            "THRESHOLD": ">80",
            "THRESHOLD_DURATION": "10s",
        }
    )
    first = make_rule(settings.rules[0])
    assert isinstance(first, AlertingRule)
    first.evaluate(100.0, [Sample(A, 90.0)])
    second = make_rule(settings.rules[0])
    assert isinstance(second, AlertingRule)
    restored = second.restore(first.snapshot(), 103.0)
    assert (restored.pending, restored.firing, restored.owed) == (1, 0, 0)
    assert second.evaluate(109.0, [Sample(A, 90.0)]) == []
    [fire] = second.evaluate(110.0, [Sample(A, 90.0)])
    assert (fire.kind, fire.duration) == ("fire", 10.0)
    assert second.snapshot() != first.snapshot()  # the restored one has gone on
