"""Bundled plugin ``log_action``: log each breach, with every field of its event.

The message reads like ``log_action: queue_depth{job="x"} = 95 (>80) for 30s [fire #1]``;
the fields (rule, labels, value, threshold, level, kind, breach start, duration, fire count)
are bound to the log record, so they show as ``key=value`` in text logs and as keys in
JSON logs. Fires and repeats are logged as warnings, the end of a breach as info.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from loguru import logger

from metric_reader import Event


class LogAction:
    name = "log_action"

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        _log("fire", metric_name, value, threshold, duration, event)

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        _log("resolve", metric_name, value, threshold, duration, event)


def _log(
    kind: str,
    metric_name: str,
    value: float,
    threshold: str,
    duration: timedelta,
    event: Event | None,
) -> None:
    fields: dict[str, object] = {
        "metric_name": metric_name,
        "value": value,
        "threshold": threshold,
        "duration_seconds": duration.total_seconds(),
    }
    series = metric_name
    if event is not None:
        kind = event.kind
        fields.update(event.as_dict())
        # "level" is the log record's own level in JSON logs: keep the breach level apart
        fields["breach_level"] = fields.pop("level")
        series += _labels(event.labels)
    tag = f"{kind} #{event.fire_count + 1}" if event and kind != "resolve" else kind
    if event is not None and event.level != "base":
        tag += f", {event.level}"
    message = (
        f"log_action: {series} = {_number(value)} ({threshold}) for {_duration(duration)} [{tag}]"
    )
    level = "INFO" if kind == "resolve" else "WARNING"
    logger.bind(**fields).log(level, "{}", message)


def _labels(labels: Mapping[str, str]) -> str:
    pairs = [f'{k}="{_escape(str(v))}"' for k, v in sorted(labels.items())]
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return f"{value:.15g}"


def _duration(duration: timedelta) -> str:
    """Go's style: ``30s``, ``1m30s``, ``250ms``."""
    total = duration.total_seconds()
    if total < 1:
        return f"{total * 1000:.6g}ms" if total > 0 else "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{int(hours)}h" if hours else ""
    if hours or minutes:
        text += f"{int(minutes)}m"
    return text + f"{seconds:.6g}s"


Plugin = LogAction()
