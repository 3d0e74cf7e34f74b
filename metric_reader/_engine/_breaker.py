"""A plugin's circuit breaker.

Closed, it counts failed calls (errors and timeouts); ``failures`` of them within
``window`` seconds open it. Open, the plugin's calls are suppressed for ``cooldown``
seconds; then the breaker is half-open and lets one trial call through: its success closes
the breaker, its failure opens it again for another cooldown.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from .._config import BreakerConfig

BreakerState = Literal["closed", "open", "half_open"]


class Breaker:
    __slots__ = (
        "_failures",
        "config",
        "opened_at",
        "plugin",
        "state",
        "trial_running",
        "trial_started",
    )

    def __init__(self, plugin: str, config: BreakerConfig) -> None:
        self.plugin = plugin
        self.config = config
        self.state: BreakerState = "closed"
        self.opened_at: float | None = None
        self.trial_running = False
        self.trial_started = 0.0
        self._failures: deque[float] = deque()

    def allows(self, now: float) -> tuple[bool, str | None]:
        """Whether a call may run now, and the change of state this makes (the cooldown
        is over: the breaker is half-open and this call is its trial), to be logged."""
        if self.state == "closed":
            return True, None
        if self.state == "open":
            assert self.opened_at is not None
            if now < self.opened_at + self.config.cooldown:
                return False, None
            self.state = "half_open"
            self.trial_running, self.trial_started = True, now
            return True, "half-open: one trial call"
        if self.trial_running and now < self.trial_started + self.config.cooldown:
            return False, None
        # No trial running, or one whose outcome never came (a call cut off): another.
        self.trial_running, self.trial_started = True, now
        return True, None

    def record(self, ok: bool, now: float) -> str | None:
        """A call of the plugin ended; return the change of state it made, if any."""
        if self.state == "half_open":
            self.trial_running = False
            if ok:
                self._close()
                return "closed: the trial call succeeded"
            self._open(now)
            return "open again: the trial call failed"
        if ok or self.state == "open":
            return None
        failures, window = self._failures, self.config.window
        failures.append(now)
        while failures and failures[0] <= now - window:
            failures.popleft()
        if len(failures) < self.config.failures:
            return None
        self._open(now)
        from .._core import format_duration

        return (
            f"open: {len(failures)} failed calls within {format_duration(window)}; calls "
            f"suppressed for {format_duration(self.config.cooldown)}"
        )

    def reopens_at(self) -> float | None:
        if self.state != "open" or self.opened_at is None:
            return None
        return self.opened_at + self.config.cooldown

    def _open(self, now: float) -> None:
        self.state = "open"
        self.opened_at = now
        self._failures.clear()

    def _close(self) -> None:
        self.state = "closed"
        self.opened_at = None
        self._failures.clear()

    def export(self) -> dict[str, object]:
        return {
            "state": "open" if self.state == "half_open" else self.state,
            "opened_at": self.opened_at,
            "failures": list(self._failures),
        }

    def restore(self, saved: dict[str, object]) -> None:
        """The state a state file kept (a half-open breaker comes back open: its trial's
        outcome was lost, so a new trial decides)."""
        state = saved.get("state")
        opened_at = saved.get("opened_at")
        failures = saved.get("failures")
        if state == "open" and isinstance(opened_at, int | float):
            self.state, self.opened_at = "open", float(opened_at)
        if isinstance(failures, list):
            self._failures = deque(float(f) for f in failures if isinstance(f, int | float))
