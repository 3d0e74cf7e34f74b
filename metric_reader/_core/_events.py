"""The event a plugin receives."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

from ._record import record, record_field

EventKind = Literal["fire", "repeat", "resolve"]
"""What a series level of a rule owes: its state machine hands these out."""
CallKind = Literal[
    "fire", "repeat", "resolve", "storm", "unverified", "gave_up", "approval_request"
]
"""What a plugin is told: a series level's call, or for a whole rule a ``storm`` (more
series breached at once than its ``max_breaching`` allows), or to a rule's
``escalate_plugin`` that a fix of a series level did not hold (``unverified``) and that the
loop breaker gave up on it (``gave_up``) after ``max_attempts`` such fixes, or an
``approval_request`` (a call of a rule in ``mode = "approve"`` waits for
``metric-reader approve ID``)."""
Level = Literal["base", "hard"]


@record(frozen=True, slots=True)
class Event:
    """Everything known about one action: passed to plugins that accept ``event=``.

    ``metric_name`` is the rule's metric name, or its PromQL text for a ``QUERY`` rule.
    ``breach_started`` is wall-clock time (UTC); ``duration`` is how long the breach has
    lasted when the event was made; ``fire_count`` counts the successful fire and repeat
    calls of this breach before this one. ``annotations`` are the rendered annotations of
    an alerting rule (empty for other rules). ``idempotency_key`` names the call (see
    :func:`idempotency_key`), so a plugin can tell a retry from a new call.
    ``external_labels`` are the service's (``EXTERNAL_LABELS``), not in ``labels``: a plugin
    sending alerts adds them where an alert has no label of that name, as Prometheus'
    notifier does. ``generator_url`` is ``EXTERNAL_URL`` followed by the table view of the
    rule's expression (``/graph?g0.expr=...&g0.tab=1``), as Prometheus sends it; empty
    without ``EXTERNAL_URL``.
    """

    rule: str
    metric_name: str
    labels: Mapping[str, str]
    value: float
    threshold: str
    level: Level
    kind: CallKind
    breach_started: datetime
    duration: timedelta
    fire_count: int
    plugin: str = ""
    annotations: Mapping[str, str] = record_field(default_factory=dict)
    idempotency_key: str = ""
    external_labels: Mapping[str, str] = record_field(default_factory=dict)
    generator_url: str = ""
    series: tuple[Mapping[str, str], ...] = ()
    """For a ``storm``: the labels of the first series breached (at most 20); only a storm's
    ``as_dict`` has them."""

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view (times as ISO 8601, duration in seconds)."""
        return {
            "rule": self.rule,
            "metric_name": self.metric_name,
            "labels": dict(self.labels),
            "value": self.value,
            "threshold": self.threshold,
            "level": self.level,
            "kind": self.kind,
            "breach_started": self.breach_started.isoformat(),
            "duration_seconds": self.duration.total_seconds(),
            "fire_count": self.fire_count,
            "plugin": self.plugin,
            "annotations": dict(self.annotations),
            "idempotency_key": self.idempotency_key,
            "external_labels": dict(self.external_labels),
            "generator_url": self.generator_url,
            **(
                {"series": [dict(labels) for labels in self.series]} if self.kind == "storm" else {}
            ),
        }


def idempotency_key(
    rule: str,
    labels: Mapping[str, str],
    level: str,
    breach_started: datetime,
    breach: int,
    kind: EventKind,
    fire_count: int,
    identity: str = "",
) -> str:
    """32 hex digits naming one call: a rule's series level, its breach, the kind of call
    and how many fires and repeats of the breach succeeded before it.

    Every try of a call has the same key: a retry after a failure or a timeout, and after a
    restart with ``STATE_FILE``, which keeps the breach and its counts. Any other call has
    another: the next repeat (one more success), the resolve, the fire of a later breach.
    The breach is its number (``Action.breach``) and the second it started, so that a
    series forgotten, whose breaches are counted from 1 again, does not meet its old keys;
    ``identity`` names the rule's identity (a digest of it), so that the rule a reload
    made in place of one of another identity does not meet them either, however soon it
    fires, while a rule a reload kept (an annotation edited) keeps its keys. The
    second is read on the wall clock, so a clock set to another time between two tries of a
    call may change its key.
    """
    material = [
        rule,
        sorted(labels.items()),
        level,
        math.floor(breach_started.timestamp()),
        breach,
        kind,
        fire_count,
        identity,
    ]
    text = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
