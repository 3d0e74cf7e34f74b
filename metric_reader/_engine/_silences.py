"""Silences, as Alertmanager's: matchers, a start, an end, who made one and why.

While a silence is active (``starts_at <= now < ends_at``), the calls of every alert whose
labels all its matchers match are suppressed (reason ``silenced``); the series go on being
evaluated, and a call still owed when the silence ends runs at its series' next
evaluation. Expiring a silence ends it now. Expired silences are kept for
``SILENCE_RETENTION`` (Alertmanager's ``--data.retention``, 120h) so ``amtool silence
query --expired`` shows them, then forgotten.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal

from .._core import LabelMatcher, MatchOp, record, record_replace

SILENCE_RETENTION = 120 * 3600.0
SilenceState = Literal["pending", "active", "expired"]


@record(frozen=True, slots=True)
class Silence:
    id: str
    matchers: tuple[LabelMatcher, ...]
    starts_at: float
    """Wall-clock seconds since the epoch, as ``ends_at`` and ``updated_at``."""
    ends_at: float
    created_by: str
    comment: str
    updated_at: float

    def state(self, now: float) -> SilenceState:
        if now >= self.ends_at:
            return "expired"
        if now < self.starts_at:
            return "pending"
        return "active"

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)

    def describe(self) -> str:
        """``silence 5f1c… by alice: disk migration``."""
        who = f" by {self.created_by}" if self.created_by else ""
        why = f": {self.comment}" if self.comment else ""
        return f"silence {self.id}{who}{why}"

    def export(self) -> dict[str, object]:
        return {
            "id": self.id,
            "matchers": [[m.name, m.op.value, m.value] for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "updated_at": self.updated_at,
        }


def silence_of(saved: Mapping[str, object]) -> Silence:
    """A silence a state file kept; ``ValueError`` when it is not one."""
    try:
        matchers = tuple(
            LabelMatcher(str(name), MatchOp(str(op)), str(value))
            for name, op, value in saved["matchers"]  # type: ignore[attr-defined]
        )
        return Silence(
            id=str(saved["id"]),
            matchers=matchers,
            starts_at=float(saved["starts_at"]),  # type: ignore[arg-type]
            ends_at=float(saved["ends_at"]),  # type: ignore[arg-type]
            created_by=str(saved.get("created_by", "")),
            comment=str(saved.get("comment", "")),
            updated_at=float(saved.get("updated_at", 0.0)),  # type: ignore[arg-type]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a silence: {exc}") from None


class Silences:
    """Every silence known, by id."""

    def __init__(self) -> None:
        self._by_id: dict[str, Silence] = {}
        self.revision = 0
        """Counts the changes: the state file is saved when it moves."""

    def __iter__(self) -> Iterator[Silence]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, silence_id: str) -> Silence | None:
        return self._by_id.get(silence_id)

    def put(
        self,
        matchers: tuple[LabelMatcher, ...],
        starts_at: float,
        ends_at: float,
        created_by: str,
        comment: str,
        now: float,
        silence_id: str | None = None,
    ) -> Silence:
        """A new silence, or (``silence_id`` given, as Alertmanager's ``POST`` with an id)
        the one of that id changed; ``ValueError`` for what Alertmanager refuses."""
        if not matchers:
            raise ValueError("a silence needs at least one matcher")
        if all(_matches_empty(m) for m in matchers):
            raise ValueError("at least one matcher must not match the empty string")
        if ends_at <= starts_at:
            raise ValueError("the end of a silence must be after its start")
        if ends_at <= now:
            raise ValueError("the silence would already have ended")
        if silence_id is not None:
            old = self._by_id.get(silence_id)
            if old is None:
                raise LookupError(f"no silence with id {silence_id}")
            if old.state(now) == "expired":
                raise ValueError(f"silence {silence_id} has expired: create a new one")
        else:
            import uuid  # here: uuid imports platform, ~2.5 ms off every metric-reader test

            silence_id = str(uuid.uuid4())
        silence = Silence(silence_id, matchers, starts_at, ends_at, created_by, comment, now)
        self._by_id[silence_id] = silence
        self.revision += 1
        return silence

    def expire(self, silence_id: str, now: float) -> Silence:
        """End the silence now; ``LookupError`` when there is none of that id,
        ``ValueError`` when it has ended already (Alertmanager answers so too)."""
        silence = self._by_id.get(silence_id)
        if silence is None:
            raise LookupError(f"no silence with id {silence_id}")
        if silence.state(now) == "expired":
            raise ValueError(f"silence {silence_id} already expired")
        start = min(silence.starts_at, now)
        ended = record_replace(silence, starts_at=start, ends_at=now, updated_at=now)
        self._by_id[silence_id] = ended
        self.revision += 1
        return ended

    def silencing(self, labels: Mapping[str, str], now: float) -> Silence | None:
        """The first active silence that matches ``labels``."""
        for silence in self._by_id.values():
            if silence.state(now) == "active" and silence.matches(labels):
                return silence
        return None

    def forget_old(self, now: float) -> None:
        """Forget the silences that ended more than ``SILENCE_RETENTION`` ago."""
        old = [s.id for s in self._by_id.values() if s.ends_at < now - SILENCE_RETENTION]
        for silence_id in old:
            del self._by_id[silence_id]
        if old:
            self.revision += 1

    def export(self) -> list[dict[str, object]]:
        return [silence.export() for silence in self._by_id.values()]

    def restore(self, saved: list[Silence]) -> None:
        self._by_id = {silence.id: silence for silence in saved}
        self.revision += 1


def _matches_empty(matcher: LabelMatcher) -> bool:
    return matcher.matches({})
