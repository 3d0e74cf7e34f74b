"""Whether a fix held: the verification state of one series level (issue 26, point 1).

A fire or repeat that every plugin took is a fix; with ``verify_within`` the series level's
condition must end within that time (an evaluation at which it no longer holds), else the
fix did not hold. With ``verify_query`` that query judges instead: the fix held at the
first evaluation that finds it ``healthy`` for the alert. After ``max_attempts`` fixes
that did not hold in one breach the loop breaker gives up: the level owes no more repeats
until the breach ends. Pure data and one
pure function; the level machine (``_state``) keeps the state and calls ``judge``, the
evaluation step (``_verify``) starts a check and hands out what came of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from .._core import Sample, record

FixResult = Literal["verified", "unverified", "gave_up"]
"""What came of a fix: it held; it did not (the next repeat is the next attempt); it did
not, and it was the last attempt (``gave_up``: the level calls no plugin for its fire or
repeats until the breach ends)."""


@record(frozen=True, slots=True)
class PendingFix:
    """A fix being verified."""

    deadline: float
    """By when the condition must have ended (the level machine's clock)."""
    key: str
    """The fix's idempotency key: the history rows of its call bear it."""
    attempts: int
    """``max_attempts`` when the fix was made."""
    plugins: tuple[str, ...] = ()
    """The plugins the fix went to ("" for one only logged)."""
    query: str | None = None
    """``verify_query`` when the fix was made: the query judges it (``healthy``), not the
    level's condition; None: the condition does."""


@record(frozen=True, slots=True)
class FixCheck:
    """What came of a fix, at ``at``: told by the level machine to the evaluation step."""

    level: str
    result: FixResult
    fix: PendingFix
    at: float
    unheld: int
    """Fixes of this breach that did not hold, this one included."""
    value: float
    active_at: float
    breach: int
    fire_count: int


def judge(fix: PendingFix, breached: bool, deadline_passed: bool, unheld: int) -> FixResult | None:
    """What an evaluation says of ``fix``: held when the condition no longer holds, did
    not once the deadline passed with it holding still (``gave_up`` for the last attempt:
    ``unheld`` fixes of the breach did not hold before), else nothing yet."""
    if not breached:
        return "verified"
    if not deadline_passed:
        return None
    return "gave_up" if unheld + 1 >= fix.attempts else "unverified"


def healthy(samples: Iterable[Sample], alert: Mapping[str, str]) -> bool:
    """Whether a ``verify_query``'s answer is healthy for the alert with the labels
    ``alert``: no result series agrees with them on every label name both have (the metric
    name aside). A series sharing no label name with the alert agrees: it is about every
    alert."""
    for sample in samples:
        if all(alert.get(name, value) == value for name, value in sample.labels if name != NAME):
            return False
    return True


NAME = "__name__"
