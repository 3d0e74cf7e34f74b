"""What the service knows right now, as plain data: for ``/api/status`` and the status page.

Times inside the service are monotonic; here they become wall-clock ISO 8601 (UTC), the
only kind a person or another program can use.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ._durations import format_duration
from ._rules import Rule
from ._state import LevelMachine, SeriesMachine


def _wall(mono: float | None, now_mono: float, now_wall: float) -> str | None:
    if mono is None:
        return None
    stamp = datetime.fromtimestamp(now_wall - (now_mono - mono), UTC)
    return stamp.isoformat(timespec="milliseconds")


def _number(value: float | None) -> float | str | None:
    if value is None:
        return None
    return value if math.isfinite(value) else str(value)  # JSON has no NaN or Inf


class StatusView:
    """Builds the snapshot; ``now_mono`` must be on the service's clock."""

    def __init__(self, now_mono: float, now_wall: float | None = None) -> None:
        self.now_mono = now_mono
        self.now_wall = time.time() if now_wall is None else now_wall

    def wall(self, mono: float | None) -> str | None:
        return _wall(mono, self.now_mono, self.now_wall)

    def level(self, machine: LevelMachine | None) -> dict[str, Any] | None:
        if machine is None:
            return None
        last = machine.last_action
        return {
            "state": machine.state.value,
            "since": self.wall(machine.active_at) if machine.state.value != "ok" else None,
            "fired_at": self.wall(machine.fired_at),
            "fire_count": machine.fire_count,
            "in_flight": machine.in_flight,
            "last_action": None
            if last is None
            else {
                "kind": last[0],
                "result": "success" if last[1] else "failure",
                "at": self.wall(last[2]),
            },
        }

    def series(self, series: SeriesMachine) -> dict[str, Any]:
        return {
            "labels": dict(series.labels),
            "value": _number(
                series.base.value if not math.isnan(series.base.value) else series.last_value
            ),
            "last_seen": self.wall(series.last_seen),
            "base": self.level(series.base),
            "hard": self.level(series.hard),
        }

    def rule(self, rule: Rule) -> dict[str, Any]:
        config = rule.config
        levels = {}
        for name, level in (("base", config.base), ("hard", config.hard)):
            levels[name] = (
                None
                if level is None
                else {
                    "threshold": level.threshold.text,
                    "duration": format_duration(level.duration),
                    "backoff": format_duration(level.backoff),
                    "plugin": level.plugin,
                }
            )
        machine = rule.machine
        return {
            "name": rule.name,
            "metric_name": config.metric_name,
            "reads": str(config.selector) if config.source == "scrape" else config.promql,
            "source": config.source,
            "target": config.target,
            "polling_interval": format_duration(config.polling_interval),
            "levels": levels,
            "series": []
            if machine is None
            else [self.series(series) for series in machine.series.values()],
        }


def status_snapshot(
    rules: Sequence[Rule],
    targets: Sequence[Any],
    now_mono: float,
    *,
    ready: bool,
    started_mono: float,
    version: str,
) -> dict[str, Any]:
    """Everything ``/api/status`` returns. ``targets`` are the service's ``Target``s."""
    view = StatusView(now_mono)
    return {
        "version": version,
        "time": view.wall(now_mono),
        "started_at": view.wall(started_mono),
        "ready": ready,
        "targets": [
            {
                "target": target.description,
                "polling_interval": format_duration(target.interval),
                "rules": len(target.rules),
                "last_success": view.wall(target.last_success),
                "last_error": target.last_error,
            }
            for target in targets
        ],
        "rules": [view.rule(rule) for rule in rules],
    }
