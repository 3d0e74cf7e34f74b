"""Recent evaluations kept for the status page's sparklines: a ring per series, for a few
series of a rule, the breached ones first; memory bounded whatever the rule reads."""

from __future__ import annotations

import math

from metric_reader._config import MissingValueBehavior
from metric_reader._core._samples import Sample
from metric_reader._core._threshold import parse_threshold
from metric_reader._engine._recent import Recent, recent_length, recent_window
from metric_reader._engine._rule_machine import RuleMachine
from metric_reader._engine._state import LevelPolicy, State


def machine(length: int = 5, series: int = 3, duration: float = 2.0) -> RuleMachine:
    return RuleMachine(
        LevelPolicy(parse_threshold(">50"), duration=duration),
        missing=MissingValueBehavior.SKIP,
        recent_length=length,
        recent_series=series,
    )


def labels(k: int) -> tuple[tuple[str, str], ...]:
    return (("i", f"{k:04d}"),)


def test_the_ring_keeps_the_newest_evaluations_oldest_first() -> None:
    ring: Recent[str] = Recent(3, "ok")
    assert list(ring) == []
    for k in range(5):
        ring.add(float(k), None if k == 3 else k * 10.0, "ok" if k < 4 else "firing")
    assert len(ring) == 3
    entries = list(ring)
    assert [at for at, _, _ in entries] == [2.0, 3.0, 4.0]
    assert entries[0][1] == 20.0 and math.isnan(entries[1][1]) and entries[2][1] == 40.0
    assert [state for _, _, state in entries] == ["ok", "ok", "firing"]


def test_ten_minutes_at_most_120_evaluations() -> None:
    assert recent_length(1.0) == 120
    assert recent_length(5.0) == 120
    assert recent_length(15.0) == 40
    assert recent_length(600.0) == 2
    assert recent_length(0.0) == 120
    assert [recent_window(s) for s in (1.0, 15.0, 7.0, 3600.0)] == [120.0, 600.0, 602.0, 7200.0]


def test_a_series_records_its_values_and_the_state_after_each_evaluation() -> None:
    rule = machine(length=10)
    values = [10, 60, 70, 80, 20]
    for t, value in enumerate(values):
        rule.observe(float(t), [Sample(labels(0), float(value))])
    recent = rule.series[labels(0)].recent
    assert recent is not None
    assert list(recent) == [
        (0.0, 10.0, State.OK),
        (1.0, 60.0, State.PENDING),
        (2.0, 70.0, State.PENDING),
        (3.0, 80.0, State.FIRING),  # pending for the 2 s duration
        (4.0, 20.0, State.OK),
    ]


def test_only_a_few_series_of_a_rule_keep_them_and_the_breached_take_the_place_of_calm_ones() -> (
    None
):
    rule = machine(series=3)
    calm = [Sample(labels(k), 1.0) for k in range(1_000)]
    rule.observe(0.0, calm)
    kept = [one.labels for one in rule.series.values() if one.recent is not None]
    assert kept == [labels(0), labels(1), labels(2)]  # the first seen

    breached = [*calm[:500], Sample(labels(500), 99.0), Sample(labels(501), 99.0), *calm[502:]]
    rule.observe(1.0, breached)
    kept = [one.labels for one in rule.series.values() if one.recent is not None]
    assert len(kept) == 3
    assert labels(500) in kept and labels(501) in kept
    recent = rule.series[labels(500)].recent
    assert recent is not None and list(recent) == [(1.0, 99.0, State.PENDING)]

    # A forgotten series gives its ring back to the next new one.
    rule.forget_after = 5.0
    rule.observe(10.0, [Sample(labels(500), 99.0), Sample(labels(501), 99.0)])
    assert labels(2) not in rule.series  # the calm one still kept was forgotten
    rule.observe(
        11.0, [Sample(labels(500), 99.0), Sample(labels(501), 99.0), Sample(labels(2_000), 1.0)]
    )
    new = rule.series[labels(2_000)].recent
    assert new is not None and len(new) == 1
    assert sum(one.recent is not None for one in rule.series.values()) == 3


def test_no_ring_without_a_length() -> None:
    rule = machine(length=0)
    rule.observe(0.0, [Sample(labels(0), 99.0)])
    assert rule.series[labels(0)].recent is None


def test_all_rules_together_keep_the_recent_evaluations_of_at_most_2000_series() -> None:
    from metric_reader._engine import recent_shares
    from metric_reader._engine._recent import RECENT_SERIES_OVERALL, RECENT_SERIES_PER_RULE

    for rules in (0, 1, 39, 40, 41, 1000, 2000, 2001, 10_000):
        shares = recent_shares(rules)
        assert len(shares) == rules
        assert sum(shares) <= max(RECENT_SERIES_OVERALL, 0)
        assert all(0 <= share <= RECENT_SERIES_PER_RULE for share in shares)
    assert recent_shares(10) == [50] * 10  # a few rules: 50 series each
    assert recent_shares(1000) == [2] * 1000
    assert recent_shares(10_000)[:2000] == [1] * 2000 and not any(recent_shares(10_000)[2000:])
