"""The event a plugin receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

EventKind = Literal["fire", "repeat", "resolve"]
Level = Literal["base", "hard"]


@dataclass(frozen=True, slots=True)
class Event:
    """Everything known about one action: passed to plugins that accept ``event=``.

    ``metric_name`` is the rule's metric name, or its PromQL text for a ``QUERY`` rule.
    ``breach_started`` is wall-clock time (UTC); ``duration`` is how long the breach has
    lasted when the event was made; ``fire_count`` counts the successful fire and repeat
    calls of this breach before this one. ``annotations`` are the rendered annotations of
    an alerting rule (empty for other rules).
    """

    rule: str
    metric_name: str
    labels: Mapping[str, str]
    value: float
    threshold: str
    level: Level
    kind: EventKind
    breach_started: datetime
    duration: timedelta
    fire_count: int
    plugin: str = ""
    annotations: Mapping[str, str] = field(default_factory=dict)

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
        }
