"""Example plugin ``resolve_plugin``: open an incident on a breach, close it when it ends.

``execute`` opens an incident for the breached series, ``resolve`` closes it. Each
incident is one JSON file in ``RESOLVE_PLUGIN_DIR``, named after the rule, level and
series labels, so every series has its own, and the base and hard levels of a rule are
separate incidents.

- ``execute`` on a series without an open incident writes ``incident-<key>.json`` with
  ``"status": "open"``. Called again while it is open (a repeat, or a retry after a call
  that timed out but did finish), it only updates ``last_value``, ``fire_count`` (the
  successful calls of this breach, from the event) and ``updated_at``: opening is
  idempotent, an incident is never opened twice.
- ``resolve`` sets ``"status": "resolved"`` and ``resolved_at``. For an incident it does
  not know (say the directory was emptied) it logs and does nothing: raising would only
  make metric-reader retry a close that can never succeed.
- Files are replaced atomically (written aside, then renamed), so a reader never sees
  half a file. All file work runs in a worker thread: the event loop is never blocked.

List the open incidents with ``grep -l '"status": "open"' "$RESOLVE_PLUGIN_DIR"/*.json``.

Settings (environment variables, read at every call):

- ``RESOLVE_PLUGIN_DIR``: where the incident files are kept, created if missing
  (default ``/tmp/metric-reader-incidents``)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
from loguru import logger

from metric_reader import Event

DEFAULT_DIR = "/tmp/metric-reader-incidents"


class ResolvePlugin:
    name = "resolve_plugin"

    def validate_config(self) -> None:
        """Refuse to start when the directory is a file."""
        directory = _directory()
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"RESOLVE_PLUGIN_DIR={str(directory)!r} is not a directory")

    async def execute(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        path = _incident_file(metric_name, event)
        opened = await anyio.to_thread.run_sync(_open_incident, path, metric_name, value, event)
        logger.bind(plugin=self.name, incident=path.name).info(
            "resolve_plugin: {} {} ({} = {:g}, threshold {})",
            "opened" if opened else "updated",
            path.stem,
            metric_name,
            value,
            threshold,
        )

    async def resolve(
        self,
        metric_name: str,
        value: float,
        threshold: str,
        duration: timedelta,
        event: Event | None = None,
    ) -> None:
        path = _incident_file(metric_name, event)
        closed = await anyio.to_thread.run_sync(_close_incident, path, value)
        bound = logger.bind(plugin=self.name, incident=path.name)
        if closed:
            bound.info("resolve_plugin: resolved {}", path.stem)
        else:
            bound.info("resolve_plugin: no open incident {} to resolve", path.stem)


def _directory() -> Path:
    return Path(os.environ.get("RESOLVE_PLUGIN_DIR") or DEFAULT_DIR)


def _incident_file(metric_name: str, event: Event | None) -> Path:
    """One file per rule, level and series (label set): the incident's identity."""
    if event is None:
        identity: list[Any] = ["", "base", metric_name, []]
    else:
        identity = [event.rule, event.level, metric_name, sorted(event.labels.items())]
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    return _directory() / f"incident-{key}.json"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        with path.open(encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
    except FileNotFoundError:
        return None
    return data


def _write(path: Path, incident: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incident-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(incident, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _open_incident(path: Path, metric_name: str, value: float, event: Event | None) -> bool:
    """Open the incident, or update the open one; True when it was opened now."""
    incident = _read(path)
    opened = incident is None or incident.get("status") != "open"
    if incident is None or opened:
        incident = {
            "status": "open",
            "opened_at": _now(),
            "metric_name": metric_name,
            "rule": event.rule if event is not None else "",
            "level": event.level if event is not None else "base",
            "labels": dict(event.labels) if event is not None else {},
            "threshold": event.threshold if event is not None else "",
            "breach_started": event.breach_started.isoformat() if event is not None else None,
            "first_value": _number(value),
        }
    # successful calls of this breach, this one included: a retried call counts once
    incident["fire_count"] = event.fire_count + 1 if event is not None else 1
    incident["last_value"] = _number(value)
    incident["updated_at"] = _now()
    _write(path, incident)
    return opened


def _close_incident(path: Path, value: float) -> bool:
    incident = _read(path)
    if incident is None or incident.get("status") != "open":
        return False
    incident.update(status="resolved", resolved_at=_now(), last_value=_number(value))
    _write(path, incident)
    return True


Plugin = ResolvePlugin()
