"""The "no data" condition of a rule (``_nodata.NoData``), poll by poll on a fake clock."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from metric_reader._core._logging import configure_logging
from metric_reader._engine import NO_DATA_POLLS, NoData


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    yield out
    configure_logging()


def lines(log: io.StringIO) -> list[tuple[str, str]]:
    return [
        (record["level"], record["message"])
        for record in map(json.loads, log.getvalue().splitlines())
    ]


def test_a_rule_whose_first_read_is_empty_has_no_data_at_once(log: io.StringIO) -> None:
    tracker = NoData("typo", "queue_dept")
    tracker.observe(10.0, 0)
    assert (tracker.active, tracker.empty_polls, tracker.since) == (True, 1, 10.0)
    tracker.observe(11.0, 0)
    assert (tracker.active, tracker.empty_polls, tracker.since) == (True, 2, 10.0)
    tracker.observe(12.0, 4)
    assert (tracker.active, tracker.empty_polls, tracker.since) == (False, 0, None)
    assert lines(log) == [
        (
            "warning",
            "no data: the first read returns no series; "
            "check the metric name, label filters or query",
        ),
        ("info", "data again: the read returns 4 series after 2 empty poll(s)"),
    ]


def test_a_rule_that_had_data_has_no_data_after_three_empty_reads_in_a_row(
    log: io.StringIO,
) -> None:
    assert NO_DATA_POLLS == 3
    tracker = NoData("queues", "queue_depth")
    tracker.observe(0.0, 2)
    tracker.observe(1.0, 0)
    tracker.observe(2.0, 0)
    tracker.observe(3.0, 1)  # two empty reads are a gap, not "no data"
    assert not tracker.active and lines(log) == []
    for now in (4.0, 5.0):
        tracker.observe(now, 0)
        assert not tracker.active
    tracker.observe(6.0, 0)
    assert (tracker.active, tracker.empty_polls, tracker.since) == (True, 3, 4.0)
    for now in (7.0, 8.0):  # said once, not at every poll
        tracker.observe(now, 0)
    assert tracker.empty_polls == 5
    assert lines(log) == [
        (
            "warning",
            "no data: the last 3 reads returned no series; "
            "check the metric name, label filters or query",
        )
    ]
