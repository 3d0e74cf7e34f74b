"""Properties of the state machine over arbitrary value sequences (hypothesis).

The plugin always succeeds here; the table-driven tests in test_state.py cover failures.
Breaches are recomputed independently from the values, and the calls the machine made are
checked against them: nothing before the duration, one fire per breach, repeats no closer
than the backoff, and exactly one resolve for each breach that fired and ended.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from metric_reader._samples import Sample
from metric_reader._state import LevelPolicy, RuleMachine
from metric_reader._threshold import parse_threshold

SERIES = (("s", "1"),)

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
        if last - start >= duration:
            # The first poll at or after start + duration fires, and nothing else does.
            first_due = min(
                pt for pt, _ in timeline if pt - start >= duration and (end is None or pt < end)
            )
            assert fires == [first_due]
        else:
            assert fires == [] and repeats == []
        if backoff == 0:
            assert repeats == []
        else:
            times = fires + repeats
            assert all(b - a >= backoff for a, b in itertools.pairwise(times))
        resolves = [ct for ct, k in calls if k == "resolve" and ct == end]
        assert resolves == ([end] if fires and end is not None else [])
    assert sum(1 for _, k in calls if k == "resolve") == sum(
        1
        for s, e in breaches(timeline)
        if e is not None and any(k == "fire" and s <= ct < e for ct, k in calls)
    )
