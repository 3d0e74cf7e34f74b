"""What a replayed series did, as a list of moments: went pending, fired, resolved, and
each plugin call; read from the replay's steps and calls."""

from __future__ import annotations

from dataclasses import dataclass

from .._core import Labels
from .._engine import Replay, ReplayedCall, SeriesHistory, State


@dataclass(frozen=True, slots=True)
class Change:
    at: float
    level: str
    old: State
    new: State
    value: float | None


@dataclass(frozen=True, slots=True)
class SeriesTimeline:
    labels: Labels
    history: SeriesHistory
    changes: list[Change]
    calls: list[ReplayedCall]

    @property
    def acted(self) -> int:
        """Plugin calls that would have run (a level without a plugin is only logged)."""
        return sum(1 for call in self.calls if call.plugin is not None)


def timelines(replayed: Replay) -> list[SeriesTimeline]:
    """Per series that was ever read, its state changes and calls, in time order; series
    sorted by their labels."""
    calls: dict[Labels, list[ReplayedCall]] = {}
    for call in replayed.calls:
        calls.setdefault(call.series, []).append(call)
    out = []
    for labels in sorted(replayed.series):
        history = replayed.series[labels]
        out.append(SeriesTimeline(labels, history, _changes(history), calls.get(labels, [])))
    return out


def _changes(history: SeriesHistory) -> list[Change]:
    out: list[Change] = []
    base, hard = State.OK, None
    for step in history.steps:
        if step.base is not base:
            out.append(Change(step.at, "base", base, step.base, step.value))
            base = step.base
        if step.hard is not hard and not (hard is None and step.hard is State.OK):
            out.append(Change(step.at, "hard", hard or State.OK, step.hard or State.OK, step.value))
        hard = step.hard
    return out
