"""One row of the action history: an owed call and what became of it (issue 25, point 8).

The governor makes one for every fire, repeat, resolve or storm call it owes, whether the
plugin was called (``executed``, ``failed``, ``timed_out``), not called (``suppressed``, with
the reason), or only recorded as it would have run (``shadow``). Pure data: the store is
the cluster layer's ``ActionHistory``; the readers are ``metric-reader history``,
``GET /api/actions`` and the status page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal, get_args

from ._numbers import json_number
from ._record import record, record_field
from ._selector import quote

Outcome = Literal[
    "executed",
    "failed",
    "timed_out",
    "suppressed",
    "shadow",
    "approval_requested",
    "approved",
    "denied",
    "expired",
    "withdrawn",
]
"""The last five are the steps of an approval request (``mode = "approve"``): asked, then
approved (the call runs at the series' next evaluation), denied, expired or withdrawn (the
breach ended first)."""
SuppressReason = Literal[
    "budget", "breaker", "storm", "muted", "silenced", "paused", "inhibited", "approval"
]

OUTCOMES: tuple[str, ...] = get_args(Outcome)
SUPPRESS_REASONS: tuple[str, ...] = get_args(SuppressReason)


@record(frozen=True, slots=True)
class HistoryEntry:
    """An owed call and its outcome.

    ``at`` is wall-clock time (seconds since the epoch); ``series`` the series' labels;
    ``plugin`` is empty when the call was only logged; ``kind`` is ``fire``, ``repeat``,
    ``resolve``, ``storm``, ``unverified``/``gave_up`` (a fix that did not hold, told to
    the ``escalate_plugin``) or ``approval_request``. ``reason`` is one of
    :data:`SuppressReason` for a suppressed call, else empty; ``detail`` says in one line
    which budget, the error, the silence id, the approval.
    ``duration`` is how long the breach had lasted, in seconds.
    """

    at: float
    rule: str
    series: Mapping[str, str]
    plugin: str
    kind: str
    outcome: Outcome
    reason: str = ""
    detail: str = ""
    value: float = math.nan
    threshold: str = ""
    duration: float = 0.0
    annotations: Mapping[str, str] = record_field(default_factory=dict)
    attempt: int = 1
    idempotency_key: str = ""
    level: str = "base"
    verified: bool | None = None
    """For a fire or repeat that ran, with ``verify_within``: whether the fix held (None:
    not verified, or not yet)."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: ``at`` as ISO 8601 UTC and ``at_unix`` in seconds; a value
        that is not finite as Prometheus writes it (``"NaN"``, ``"+Inf"``)."""
        return {
            "at": iso_utc(self.at),
            "at_unix": self.at,
            "rule": self.rule,
            "series": dict(self.series),
            "plugin": self.plugin,
            "kind": self.kind,
            "outcome": self.outcome,
            "reason": self.reason,
            "detail": self.detail,
            "value": json_number(self.value),
            "threshold": self.threshold,
            "duration_seconds": self.duration,
            "annotations": dict(self.annotations),
            "attempt": self.attempt,
            "idempotency_key": self.idempotency_key,
            "level": self.level,
            "verified": self.verified,
        }

    def series_text(self) -> str:
        """The series' labels as PromQL writes them: ``{instance="db-1", mount="/"}``."""
        return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(self.series.items())) + "}"

    def why(self) -> str:
        """The reason and the detail in one line: ``budget: budget of plugin restart_pod: 3
        per 1h``, an error, or empty; and for a verified fix whether it held."""
        text = ": ".join(part for part in (self.reason, self.detail) if part)
        if self.verified is None:
            return text
        held = "verified: the fix held" if self.verified else "unverified: the fix did not hold"
        return f"{text}; {held}" if text else held


def iso_utc(at: float) -> str:
    """``at`` (seconds since the epoch) as ISO 8601 in UTC to the millisecond, ``Z``
    suffixed; ``?`` for a time no calendar holds."""
    try:
        moment = datetime.fromtimestamp(at, UTC)
    except (OverflowError, ValueError, OSError):
        return "?"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
