"""No data: a rule whose successful reads return no series at all.

A misspelled ``METRIC_NAME`` (or a filter or query that matches nothing) is no error for the
source: it answers, with nothing, and the rule would poll forever looking healthy. Like
Grafana's *No Data* state, a rule enters "no data" at once when its first read returns no
series (most likely a configuration mistake), or after ``NO_DATA_POLLS`` empty reads in a
row once it had data; the first read with a series ends it. A failed read neither counts
nor ends it. Entering is a warning, leaving an info line; neither makes the service unready
or changes how the rule is evaluated.

Only rules that read a metric have it (selector and ``QUERY`` rules). An alert of a rule file
has none: its expression returning no series is its normal, healthy state, which Prometheus
shows as *inactive*; an expression that fails is a failed read, reported as such.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loguru import Logger

    from .._config import RuleConfig

NO_DATA_POLLS = 3
"""Successful reads in a row that returned no series before a rule that had data is
reported as "no data"."""


def tracks_no_data(config: RuleConfig) -> bool:
    """Whether a rule of ``config`` is told apart in "no data": not an alert of a rule file."""
    return config.alert is None


class NoData:
    """Tracks one rule's reads; ``active`` is the "no data" condition."""

    def __init__(self, rule: str, expression: str, polls: int = NO_DATA_POLLS) -> None:
        self.rule = rule
        self.expression = expression
        """What the rule reads (its selector or query), for the log lines."""
        self.polls = polls
        self.active = False
        self.empty_polls = 0
        """Successful reads in a row that returned no series."""
        self.since: float | None = None
        """Monotonic time of the first of those reads."""
        self._read_once = False

    def observe(self, now: float, series: int) -> None:
        """One successful read at monotonic ``now`` that returned ``series`` series."""
        first = not self._read_once
        self._read_once = True
        if series:
            if self.active:
                self._log().info(
                    "data again: the read returns {} series after {} empty poll(s)",
                    series,
                    self.empty_polls,
                )
            self.active, self.empty_polls, self.since = False, 0, None
            return
        if not self.empty_polls:
            self.since = now
        self.empty_polls += 1
        if self.active or not (first or self.empty_polls >= self.polls):
            return
        self.active = True
        when = (
            "the first read returns no series"
            if first
            else f"the last {self.empty_polls} reads returned no series"
        )
        self._log().warning("no data: {}; check the metric name, label filters or query", when)

    def _log(self) -> Logger:
        # Bound only when there is something to say: observe runs on every poll of every rule.
        from .._core import logger

        return logger.bind(rule=self.rule, reads=self.expression, empty_polls=self.empty_polls)
