"""Logging a recurring problem without flooding the log.

A target that is down fails every poll; logging each failure would bury everything else.
A new or changed message is logged at once; the same message again at most once per
``every`` seconds, with how many times it repeated since it was last logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._logging import logger

REPEAT_INTERVAL = 60.0


@dataclass
class Throttle:
    target: str
    level: str
    """The loguru level name: ``ERROR`` for failed polls, ``WARNING`` for query warnings."""
    prefix: str
    every: float = REPEAT_INTERVAL
    last: str | None = None
    last_logged: float = 0.0
    repeated: int = 0
    count: int = 0
    """Reports since the last ``clear``."""
    subject: str = "target"
    """The bound field that names ``target``: ``target`` (a read), ``group``."""

    def report(self, now: float, message: str, **fields: object) -> None:
        """Report ``message``; ``fields`` are bound to the line, if it is logged, and do not
        make it news (counts that change from one report to the next)."""
        self.count += 1
        if message != self.last or now - self.last_logged >= self.every:
            log = logger.bind(**{self.subject: self.target}, error=message, **fields)
            if self.repeated and message == self.last:
                log = log.bind(repeated=self.repeated)
            log.log(self.level, "{}: {}", self.prefix, message)
            self.last, self.last_logged, self.repeated = message, now, 0
        else:
            self.repeated += 1

    def clear(self) -> int:
        """Forget the problem; return how many reports it had."""
        count = self.count
        self.last, self.repeated, self.count = None, 0, 0
        return count
