"""No data: a rule whose successful reads return no series at all.

A misspelled ``METRIC_NAME`` (or a label filter or query that matches nothing) is not an
error for the source: it answers, with nothing. Without this, such a rule polls forever and
looks healthy. Like Grafana's *No Data* state (and Prometheus' ``absent()``), a rule is in
"no data":

- at once when the first successful read after the start returns no series: there is
  nothing to smooth over, and the most likely cause is a mistake in the configuration;
- after ``NO_DATA_POLLS`` successful reads in a row returned no series, once it had data
  (so one empty answer, e.g. while a target restarts, is not reported).

It ends with the first read that returns a series. Entering it is a warning, leaving it an
info line, each logged once. A failed read neither counts nor ends it: that is a read error,
reported as such. "No data" does not make the service unready (it is a configuration or
application problem, and restarting the service would not fix it), and it changes nothing
in how the rule is evaluated (``MISSING_VALUE_BEHAVIOR`` still applies to each series).
"""

from __future__ import annotations

from loguru import logger

NO_DATA_POLLS = 3
"""Successful reads in a row that returned no series before a rule that had data is
reported as "no data"."""


class NoData:
    """Tracks one rule's reads; ``active`` is the "no data" condition."""

    def __init__(self, rule: str, reads: str, polls: int = NO_DATA_POLLS) -> None:
        self.rule = rule
        self.reads = reads
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
        log = logger.bind(rule=self.rule, reads=self.reads)
        if series:
            if self.active:
                log.bind(empty_polls=self.empty_polls).info(
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
        log.bind(empty_polls=self.empty_polls).warning(
            "no data: {}; check the metric name, label filters or query", when
        )
