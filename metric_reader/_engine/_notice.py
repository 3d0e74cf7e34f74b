"""One-off calls: what a storm, a fix that did not hold and an approval request tell a
plugin. Unlike a series level's call, a notice is not retried and owes nothing after it
ran; it is recorded in the history as a row of its kind, and counts for the plugin's
circuit breaker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .._core import HistoryEntry, Outcome


class Recorder(Protocol):
    """What a notice needs of the governor (which imports the notices' modules)."""

    @property
    def record(self) -> Callable[[HistoryEntry], None]: ...

    def outcome(self, plugin: str | None, ok: bool, now: float) -> None: ...

    def paused(self, now: float) -> object | None: ...


def call_outcome(ok: bool, result: str | None) -> Outcome:
    """What became of a plugin's call, as the dispatch said it (``result``)."""
    if result == "dry_run":
        return "shadow"
    if result == "timeout":
        return "timed_out"
    return "executed" if ok else "failed"


class Notice:
    """A one-off call: ``report`` records each plugin's outcome and tells its breaker;
    nothing is settled or given back. A subclass says what its history row is
    (``_record``)."""

    __slots__ = ()
    _governor: Recorder
    _plugins: list[str | None]
    wall: float
    """When it was made, on the wall clock."""

    def plugins(self) -> list[str | None]:
        return list(self._plugins)

    def _unless_paused(self, plugin: str | None) -> list[str | None]:
        """The plugins to tell: ``plugin``, or none while paused (the suppression
        recorded); only logged (None) whatever the pause."""
        if plugin is not None and self._governor.paused(self.wall) is not None:
            self._record(plugin, "suppressed", "paused", "paused")
            return []
        return [plugin]

    def report(
        self, plugin: str | None, ok: bool, result: str | None = None, detail: str = ""
    ) -> None:
        self._record(plugin, call_outcome(ok, result), detail=detail)
        self._governor.outcome(plugin, ok and result != "timeout", self.wall)

    def settle(self, now: float) -> bool:
        return True

    def give_back(self) -> None:
        pass

    def _record(
        self, plugin: str | None, outcome: Outcome, reason: str = "", detail: str = ""
    ) -> None:
        raise NotImplementedError
