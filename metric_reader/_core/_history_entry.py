"""One row of the action history: an owed call and what became of it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

Outcome = Literal["executed", "failed", "timed_out", "suppressed", "shadow"]
SuppressReason = Literal["budget", "breaker", "storm", "muted", "silenced", "paused"]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: float
    """Wall-clock seconds since the epoch."""
    rule: str
    series: Mapping[str, str]
    """The series' labels."""
    plugin: str
    """Empty when the call was only logged (no plugin)."""
    kind: str
    """fire, repeat, resolve or storm."""
    outcome: Outcome
    reason: str = ""
    """For ``suppressed``: one of ``SuppressReason``."""
    detail: str = ""
    """One line: which budget, the error, the silence..."""
    value: float = math.nan
    threshold: str = ""
    duration: float = 0.0
    """How long the breach had lasted, in seconds."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1
    idempotency_key: str = ""
    level: str = "base"

    def as_dict(self) -> dict[str, object]:
        return {
            "at": datetime.fromtimestamp(self.at, UTC).isoformat(),
            "at_unix": self.at,
            "rule": self.rule,
            "series": dict(self.series),
            "plugin": self.plugin,
            "kind": self.kind,
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": self.detail,
            "value": None if math.isnan(self.value) else self.value,
            "threshold": self.threshold,
            "duration_seconds": self.duration,
            "annotations": dict(self.annotations),
            "attempt": self.attempt,
            "idempotency_key": self.idempotency_key,
            "level": self.level,
        }
