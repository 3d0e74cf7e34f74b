"""Failed reads, said once per group and error, not once per read or per rule.

When a Prometheus is down every read of its group fails at each tick, each with the same
error: one request per ``QUERY`` and per alert of a rule file, so 64 alerts made 64 lines
in the same millisecond. A group's reads are reported together once its tick is done: one
line per distinct error, naming the group, its endpoint, how many reads failed that way and
how many rules they serve (and the read, when it is one). The same error is said again at
most once a minute (``Throttle``). Reads that answer again are said in one ``poll
recovered`` line, once no read of the group fails with the error they had.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._core import Throttle, logger


@dataclass(frozen=True, slots=True)
class FailedRead:
    """One read of a tick that failed, in full or for some of its rules."""

    target: str
    """The read's description: ``query up at http://prometheus:9090``."""
    rules: int
    """How many rules it failed for."""
    error: str


@dataclass(slots=True)
class TickReads:
    """What the reads of one tick came to: those that failed, and those that answered."""

    failed: list[FailedRead] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)
    """The descriptions of the reads that answered for every rule they serve."""


class ReadErrors:
    """The failed reads of one group (or one read alone), said once per tick and error."""

    def __init__(self) -> None:
        self._throttles: dict[str, Throttle] = {}
        """By error: the line of each error the last tick had."""
        self._failing: dict[str, tuple[str, int]] = {}
        """The reads failing now, by description: their last error, and how many of their
        polls failed."""
        self._recovered: dict[str, dict[str, int]] = {}
        """Reads that answered again, not said yet, by the error they had: said once no read
        has that error any more (an endpoint that comes back during a tick answers some of
        its reads in that tick and the others in the next, or later when the tick had no
        time for them: one line for all of them)."""

    def report(self, now: float, tick: TickReads, group: str, where: str) -> None:
        """Say what ``tick`` came to, for the group ``group`` reading ``where``."""
        for target in tick.answered:
            if target in self._failing:
                error, polls = self._failing.pop(target)
                self._recovered.setdefault(error, {})[target] = polls
        for read in tick.failed:
            polls = self._failing.get(read.target, ("", 0))[1]
            for held in self._recovered.values():
                polls += held.pop(read.target, 0)
            self._failing[read.target] = (read.error, polls + 1)
        errors = {error for error, _ in self._failing.values()}  # a read not made: as it was
        for error in [error for error in self._recovered if error not in errors]:
            self._said_recovered(self._recovered.pop(error), group, where)
        self._said_failed(now, tick.failed, group, where)

    def _said_recovered(self, reads: dict[str, int], group: str, where: str) -> None:
        if not reads:
            return
        fields = _where(group, where)
        fields["reads"] = len(reads)
        if len(reads) == 1:
            fields["target"] = next(iter(reads))
        fields["failed_polls"] = sum(reads.values())
        logger.bind(**fields).info("poll recovered")

    def _said_failed(self, now: float, failed: list[FailedRead], group: str, where: str) -> None:
        by_error: dict[str, list[FailedRead]] = {}
        for read in failed:
            by_error.setdefault(read.error, []).append(read)
        self._throttles = {
            error: self._throttles.get(error) or _throttle(group) for error in by_error
        }
        for error, reads in by_error.items():
            extra = _where("", where)
            extra["reads"] = len(reads)
            extra["rules"] = sum(read.rules for read in reads)
            if len(reads) == 1:
                extra["target"] = reads[0].target
            self._throttles[error].report(now, error, **extra)


def _throttle(group: str) -> Throttle:
    return Throttle(group, "ERROR", "poll failed", subject="group")


def _where(group: str, where: str) -> dict[str, object]:
    """The group and endpoint a line names, those known (a read alone has neither)."""
    return {key: value for key, value in (("group", group), ("endpoint", where)) if value}
