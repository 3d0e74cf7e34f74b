"""metric-reader plugin ``jsonl_events``: one JSON line per event, appended to a file.

Installed as a package, it is found through its entry point (see ``pyproject.toml``):

    [project.entry-points."metric_reader.plugins"]
    jsonl_events = "mr_example_plugin:JsonLinesPlugin"

Each line is the event as ``Event.as_dict()`` gives it (rule, metric name, labels, value,
threshold, level, kind, when the breach started, ...), plus ``written_at``. A value that
is NaN or infinite is written as ``null``, so every line is valid JSON.

Settings: the file, from the rule file's ``[plugins.jsonl_events]`` table (``path =
"/var/log/breaches.jsonl"``) or, failing that, the ``JSONL_EVENTS_FILE`` environment
variable. Its directory must exist: ``validate_config`` refuses to start otherwise.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiofiles

if TYPE_CHECKING:
    from metric_reader import Event

FILE_VARIABLE = "JSONL_EVENTS_FILE"


class JsonLinesPlugin:
    """The entry point names this class: metric-reader creates one at each load (start,
    reload), calls ``configure`` with its settings table if the rule file has one, then
    ``validate_config``. Its name is the entry point's, ``jsonl_events``."""

    def __init__(self) -> None:
        self._path: Path | None = None

    def configure(self, settings: dict[str, Any]) -> None:
        """Take ``[plugins.jsonl_events]``: only ``path``."""
        unknown = sorted(set(settings) - {"path"})
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}: the only one is path")
        path = settings.get("path")
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"path must be a file name, got {path!r}")
        self._path = Path(path)

    def validate_config(self) -> None:
        directory = self._file().parent
        if not directory.is_dir():
            raise ValueError(f"{directory} is not a directory: create it, or write elsewhere")

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        await self._append(_record(metric_name, value, threshold, duration, event))

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        await self._append(_record(metric_name, value, threshold, duration, event))

    def _file(self) -> Path:
        if self._path is not None:
            return self._path
        configured = os.environ.get(FILE_VARIABLE, "").strip()
        if not configured:
            raise ValueError(
                f"no file to write to: set {FILE_VARIABLE} or path in [plugins.jsonl_events]"
            )
        return Path(configured)

    async def _append(self, record: dict[str, object]) -> None:
        # One write per line, in append mode: lines of calls running at once never mix.
        line = json.dumps(record, allow_nan=False) + "\n"
        async with aiofiles.open(self._file(), "a", encoding="utf-8") as out:
            await out.write(line)


def _record(
    metric_name: str,
    value: float,
    threshold: str,
    duration: timedelta,
    event: Event | None,
) -> dict[str, object]:
    record: dict[str, object]
    if event is not None:
        record = event.as_dict()
    else:  # called the classic way, by a metric-reader that passes no event
        record = {
            "metric_name": metric_name,
            "value": value,
            "threshold": threshold,
            "duration_seconds": duration.total_seconds(),
        }
    number = record.get("value")
    if isinstance(number, float) and not math.isfinite(number):
        record["value"] = None
    record["written_at"] = datetime.now(UTC).isoformat()
    return record
