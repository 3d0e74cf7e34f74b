"""``SERIES_LIMIT`` at its boundaries: a read that fits once the idle series are forgotten
is evaluated, however exactly it fits; a read that cannot fit changes nothing."""

from __future__ import annotations

from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import EvaluationStep, Observation, OwedCall, Rule, State, make_rule


def _series(name: str) -> tuple[tuple[str, str], ...]:
    return (("queue", name),)


def _rule() -> Rule:
    [config] = load_settings(
        {
            "SCRAPE_URL": "http://127.0.0.1:9/metrics",
            "METRIC_NAME": "queue_depth",
            "THRESHOLD": ">50",
            "THRESHOLD_DURATION": "1h",  # a breach stays pending: it cannot be forgotten
            "POLLING_INTERVAL": "1s",
            "SERIES_LIMIT": "3",
        }
    ).rules
    return make_rule(config)


def _read(step: EvaluationStep, rule: Rule, at: float, **values: float) -> str | None:
    owed: list[OwedCall] = []
    samples = [Sample(_series(name), value) for name, value in values.items()]
    evaluation = step.evaluate(rule, Observation(at, samples), owed.append)
    assert evaluation.evaluated == (evaluation.refused is None)
    return evaluation.refused


def test_a_read_that_fits_exactly_once_the_idle_series_are_forgotten_is_evaluated() -> None:
    step = EvaluationStep()
    rule = _rule()
    assert _read(step, rule, 0.0, a=10, b=10, c=95) is None
    # Two new series, one more than the room: the two absent idle series (a, b) make it.
    assert _read(step, rule, 1.0, c=95, d=95, e=10) is None
    assert set(rule.series) == {_series("c"), _series("d"), _series("e")}
    assert rule.series[_series("d")].base.state is State.PENDING  # evaluated


def test_a_read_that_cannot_fit_forgets_nothing() -> None:
    step = EvaluationStep()
    rule = _rule()
    assert _read(step, rule, 0.0, a=10, b=95, c=95) is None
    before = (rule.revision, repr(rule.series))
    # Two new series need two places; only a can be forgotten (b and c are breached).
    refused = _read(step, rule, 1.0, d=10, e=10)
    assert refused is not None and "2 new series would make 5 tracked" in refused
    assert (rule.revision, repr(rule.series)) == before  # a is still there: as a failed poll
    # One new series: a, absent and idle, makes room for it now.
    assert _read(step, rule, 2.0, b=95, c=95, d=10) is None
    assert set(rule.series) == {_series("b"), _series("c"), _series("d")}
