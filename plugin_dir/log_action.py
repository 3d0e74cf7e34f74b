"""Bundled plugin ``log_action``: log each breach, with every field of its event.

The message reads like ``log_action: queue_depth{job="x"} = 95 (>80) for 30s [fire #1]``;
the fields (rule, labels, value, threshold, level, kind, breach start, duration, fire count)
are bound to the log record, so they show as ``key=value`` in text logs and as keys in
JSON logs. Fires and repeats are logged as warnings, the end of a breach as info.

Settings, from the rule file's ``[plugins.log_action]`` table (there is no environment
variable; an unknown key is refused, with a suggestion):

- ``level``: the log level of fires and repeats, ``"warning"`` (the default) or ``"info"``.
  The end of a breach is always logged as info.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from loguru import logger

from metric_reader import Event, check_settings

_KEYS = ("level",)
_LEVELS = {"warning": "WARNING", "info": "INFO"}


class LogAction:
    name = "log_action"

    def __init__(self) -> None:
        self._fire_level = "WARNING"

    def configure(self, settings: dict[str, Any]) -> None:
        """Take the ``[plugins.log_action]`` table: ``level`` only (see the module doc)."""
        check_settings(settings, _KEYS)
        level = settings.get("level", "warning")
        if not isinstance(level, str) or level.strip().lower() not in _LEVELS:
            raise ValueError(f'level={level!r} is not a log level; expected "warning" or "info"')
        self._fire_level = _LEVELS[level.strip().lower()]

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        _log("fire", metric_name, value, threshold, duration, event, self._fire_level)

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        _log("resolve", metric_name, value, threshold, duration, event, "INFO")


def _log(
    kind: str,
    metric_name: str,
    value: float,
    threshold: str,
    duration: timedelta,
    event: Event | None,
    fire_level: str,
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
        for key in ("annotations", "external_labels", "generator_url"):
            if not fields[key]:  # only alerting rules, and EXTERNAL_LABELS/_URL, give them
                del fields[key]
        series += _labels(event.labels)
    tag = f"{kind} #{event.fire_count + 1}" if event and kind != "resolve" else kind
    if event is not None and event.level != "base":
        tag += f", {event.level}"
    message = (
        f"log_action: {series} = {_number(value)} ({threshold}) for {_duration(duration)} [{tag}]"
    )
    level = "INFO" if kind == "resolve" else fire_level
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
