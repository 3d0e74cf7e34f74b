"""A plugin ``Event`` for tests: sensible defaults, any field overridden."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from metric_reader import Event

DEFAULTS: dict[str, Any] = {
    "rule": "queue",
    "metric_name": "queue_depth",
    "labels": {"job": "x"},
    "value": 95.0,
    "threshold": ">80",
    "level": "base",
    "kind": "fire",
    "breach_started": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    "duration": timedelta(seconds=30),
    "fire_count": 0,
}


def make_event(**changes: Any) -> Event:
    return Event(**{**DEFAULTS, **changes})
