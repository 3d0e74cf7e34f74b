"""What a replayed series did, as a list of moments: went pending, fired, resolved, each
plugin call, and each call the governor held back; read from the replay's steps, calls and
history."""

from __future__ import annotations

from dataclasses import dataclass

from .._core import HistoryEntry, Labels
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
    """The calls made (``executed``, ``failed``) and those recorded in shadow mode."""
    held: list[HistoryEntry]
    """The calls the governor held back (``suppressed``), once per call and reason."""

    @property
    def acted(self) -> int:
        """Plugin calls that would have run (a level without a plugin is only logged; a
        call in shadow mode is recorded, not made; an approval request asks, it does not
        act)."""
        return sum(
            1 for call in self.calls if call.plugin is not None and ran(call) and not asks(call)
        )

    @property
    def asked(self) -> int:
        """Approval requests made (``mode = "approve"``): a backtest approves none."""
        return sum(1 for call in self.calls if asks(call))


def asks(call: ReplayedCall) -> bool:
    """Whether the call is an approval request (to ``approval_plugin``, or logged)."""
    return call.event.kind == "approval_request"


def ran(call: ReplayedCall) -> bool:
    """Whether the call was made (not one recorded in shadow mode)."""
    return call.outcome != "shadow"


def timelines(replayed: Replay) -> list[SeriesTimeline]:
    """Per series that was ever read, its state changes, calls and calls held back, in
    time order; series sorted by their labels. A storm's call is the rule's, not a
    series' (``storm_calls``)."""
    calls: dict[Labels, list[ReplayedCall]] = {}
    for call in replayed.calls:
        if call.event.kind != "storm":
            calls.setdefault(call.series, []).append(call)
    held: dict[Labels, list[HistoryEntry]] = {}
    for entry in suppressed(replayed):
        if entry.kind != "storm":
            held.setdefault(tuple(entry.series.items()), []).append(entry)
    out = []
    for labels in sorted(replayed.series):
        history = replayed.series[labels]
        out.append(
            SeriesTimeline(
                labels, history, _changes(history), calls.get(labels, []), held.get(labels, [])
            )
        )
    return out


def storm_calls(replayed: Replay) -> list[ReplayedCall]:
    """The rule's storm notices: one call a storm, to its ``storm_plugin`` (or logged)."""
    return [call for call in replayed.calls if call.event.kind == "storm"]


def suppressed(replayed: Replay) -> list[HistoryEntry]:
    """The calls the governor held back, each once per call and reason."""
    return [entry for entry in replayed.history if entry.outcome == "suppressed"]


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
