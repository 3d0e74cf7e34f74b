"""A failing target does not flood the log: changes at once, repeats once a minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loguru import logger

from metric_reader._core._throttle import Throttle


@pytest.fixture
def lines() -> Iterator[list[str]]:
    out: list[str] = []
    sink = logger.add(
        lambda m: out.append(f"{m.record['message']} {m.record['extra'].get('repeated', '')}"),
        level="DEBUG",
    )
    yield out
    logger.remove(sink)


def test_identical_errors_are_logged_once_a_minute_with_a_count(lines: list[str]) -> None:
    throttle = Throttle("query up", "ERROR", "poll failed")
    for second in range(0, 150):  # one failing poll a second for 2.5 minutes
        throttle.report(float(second), "cannot connect")
    assert [line.strip() for line in lines] == [
        "poll failed: cannot connect",
        "poll failed: cannot connect 59",
        "poll failed: cannot connect 59",
    ]


def test_a_changed_error_is_logged_at_once(lines: list[str]) -> None:
    throttle = Throttle("query up", "ERROR", "poll failed")
    throttle.report(0, "HTTP 503")
    throttle.report(1, "HTTP 503")
    throttle.report(2, "no answer within 0.8s")
    assert [line.strip() for line in lines] == [
        "poll failed: HTTP 503",
        "poll failed: no answer within 0.8s",
    ]


def test_clear_counts_the_reports_and_starts_over(lines: list[str]) -> None:
    throttle = Throttle("query up", "ERROR", "poll failed")
    for second in range(5):
        throttle.report(float(second), "HTTP 503")
    assert throttle.clear() == 5
    assert throttle.clear() == 0
    throttle.report(6, "HTTP 503")  # the same error after a recovery is news again
    assert len(lines) == 2
