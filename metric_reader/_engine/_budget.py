"""A budget: at most ``max_actions`` calls in any ``per`` seconds (a sliding window).

A call over budget is not queued: it is suppressed, and the series that still owes it
gets it at its next evaluation after the oldest call in the window has aged out.
"""

from __future__ import annotations

from collections import deque

from .._config import BudgetConfig


class Budget:
    """The calls spent within the window, by wall-clock time."""

    __slots__ = ("_spent", "config")

    def __init__(self, config: BudgetConfig, spent: list[float] | None = None) -> None:
        self.config = config
        self._spent: deque[float] = deque(sorted(spent or ()))

    def _age(self, now: float) -> None:
        spent, per = self._spent, self.config.per
        while spent and spent[0] <= now - per:
            spent.popleft()

    def allows(self, now: float) -> bool:
        self._age(now)
        return len(self._spent) < self.config.max_actions

    def spend(self, now: float) -> None:
        self._spent.append(now)

    def used(self, now: float) -> int:
        self._age(now)
        return len(self._spent)

    def frees_at(self, now: float) -> float | None:
        """When the next call fits again (None: one fits now)."""
        if self.allows(now):
            return None
        return self._spent[0] + self.config.per

    def restore(self, spent: list[float], replace: bool = False) -> None:
        """The calls a state file kept (with those spent since, if any); ``replace``: only
        those (the leader's, taken on by a follower)."""
        kept = set(spent) if replace else {*self._spent, *spent}
        self._spent = deque(sorted(kept))

    def spent(self) -> list[float]:
        """The times of the calls in the window, for the state file."""
        return list(self._spent)

    def describe(self) -> str:
        """``budget of plugin restart_pod: 3 per 1h0m0s``."""
        from .._core import format_duration

        config = self.config
        return f"budget of {config.name}: {config.max_actions} per {format_duration(config.per)}"
