"""Whether a fix held (``verify_within``) and the loop breaker (``max_attempts``), on a fake
clock: the replay evaluates through the same step as the service."""

from __future__ import annotations

from metric_reader._config import load_settings
from metric_reader._core._samples import Sample
from metric_reader._engine import Observation, replay

RULE = {
    "SCRAPE_URL": "http://127.0.0.1:9/metrics",
    "METRIC_NAME": "queue_depth",
    "THRESHOLD": ">50",
    "BACKOFF_DELAY": "1s",
    "POLLING_INTERVAL": "1s",
    "ACTION_PLUGIN": "restart",
    "VERIFY_WITHIN": "2s",
    "ESCALATE_PLUGIN": "pager",
}


def _reads(values: list[float]) -> list[Observation]:
    return [Observation(float(at), [Sample((), value)]) for at, value in enumerate(values)]


def test_a_fix_that_never_holds_is_tried_max_attempts_times_then_the_breaker_gives_up() -> None:
    [config] = load_settings(RULE).rules
    # Breached from 0 to 20, calm at 21 to 23, breached again from 24.
    values = [99.0] * 21 + [10.0] * 3 + [99.0] * 2
    result = replay(config, _reads(values))
    calls = [(call.at, call.plugin, call.event.kind, call.verified) for call in result.calls]
    assert calls == [
        (0.0, "restart", "fire", False),
        (2.0, "pager", "unverified", None),
        (2.0, "restart", "repeat", False),
        (4.0, "pager", "unverified", None),
        (4.0, "restart", "repeat", False),
        (6.0, "pager", "gave_up", None),
        # No more repeats until the breach ends; its resolve still goes to the plugin.
        (21.0, "restart", "resolve", None),
        (24.0, "restart", "fire", None),  # a new breach: tried again
    ]
    rows = [(row.at, row.plugin, row.kind, row.outcome, row.verified) for row in result.history]
    assert rows == [
        (0.0, "restart", "fire", "executed", False),
        (2.0, "pager", "unverified", "executed", None),
        (2.0, "restart", "repeat", "executed", False),
        (4.0, "pager", "unverified", "executed", None),
        (4.0, "restart", "repeat", "executed", False),
        (6.0, "pager", "gave_up", "executed", None),
        (21.0, "restart", "resolve", "executed", None),
        (24.0, "restart", "fire", "executed", None),
    ]
    assert [row.attempt for row in result.history if row.plugin == "pager"] == [1, 2, 3]


def test_a_fix_that_holds_is_recorded_verified_and_escalates_nothing() -> None:
    [config] = load_settings({**RULE, "MAX_ATTEMPTS": "2"}).rules
    result = replay(config, _reads([99.0, 99.0, 10.0, 10.0]))
    calls = [(call.at, call.plugin, call.event.kind, call.verified) for call in result.calls]
    assert calls == [(0.0, "restart", "fire", True), (2.0, "restart", "resolve", None)]
    assert [(row.kind, row.verified) for row in result.history] == [
        ("fire", True),
        ("resolve", None),
    ]
