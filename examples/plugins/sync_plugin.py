"""Example plugin ``sync_plugin``: append one line per breach to a file, with plain ``def``.

Shows a synchronous plugin. metric-reader runs a plain-``def`` ``execute`` or ``resolve``
in a worker thread, so ordinary blocking code (``open``, ``time.sleep``, ``requests``,
``subprocess.run``) is fine here and never slows down polling. Calls for different series
can run at the same time in different threads, hence the lock.

It takes the event through ``**kwargs`` (the other way to opt in besides a keyword named
``event``) to add the kind, level, rule and series labels to each line.

Settings (environment variables, read at every call):

- ``SYNC_PLUGIN_FILE``: the file to append to, created if missing, its directory too
  (default ``/tmp/metric-reader-breaches.log``)

A line looks like::

    2024-05-01T12:00:00+00:00 fire base rule=queue queue_depth{queue="orders"} = 95 (>80) for 30s

If a call runs past ``PLUGIN_TIMEOUT`` it is counted as failed and retried, but its thread
is not stopped: the line may still be written, and then written again by the retry.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_FILE = "/tmp/metric-reader-breaches.log"

_lock = threading.Lock()


class SyncPlugin:
    name = "sync_plugin"

    def validate_config(self) -> None:
        """Refuse to start when the file is a directory."""
        path = _file()
        if path.is_dir():
            raise ValueError(f"SYNC_PLUGIN_FILE={str(path)!r} is a directory, not a file")

    def execute(
        self, metric_name: str, value: float, threshold: str, duration: timedelta, **kwargs: Any
    ) -> None:
        _append("fire", metric_name, value, threshold, duration, kwargs.get("event"))

    def resolve(
        self, metric_name: str, value: float, threshold: str, duration: timedelta, **kwargs: Any
    ) -> None:
        _append("resolve", metric_name, value, threshold, duration, kwargs.get("event"))


def _file() -> Path:
    return Path(os.environ.get("SYNC_PLUGIN_FILE") or DEFAULT_FILE)


def _append(
    kind: str, metric_name: str, value: float, threshold: str, duration: timedelta, event: Any
) -> None:
    words = [datetime.now(UTC).isoformat(timespec="seconds")]
    series = metric_name
    if event is not None:
        words += [event.kind, event.level, f"rule={event.rule}"]
        pairs = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(event.labels.items()))
        series += f"{{{pairs}}}" if pairs else ""
    else:
        words.append(kind)
    seconds = duration.total_seconds()
    words.append(f"{series} = {value:g} ({threshold}) for {seconds:g}s")
    path = _file()
    with _lock:  # blocking I/O is fine: this runs in a worker thread
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(" ".join(words) + "\n")


def _escape(text: str) -> str:
    """Label values come from scraped data: keep each record on one line."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


Plugin = SyncPlugin()
