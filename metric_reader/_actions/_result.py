"""What comes out of plugin code: a job's outcome, a call's failure, a file's problem.

Kept in one module so that the loader, the callers, the catalog and the dispatch policy
agree on them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CallResult = Literal["success", "failure", "timeout", "dry_run"]
"""The ``result`` label of ``metric_reader_plugin_calls_total``."""


@dataclass(frozen=True)
class PluginProblem:
    """A plugin file that could not be loaded, and why; ``name`` when it was learnt."""

    path: Path
    reason: str
    name: str | None = None
    unconfigured: bool = False
    """The plugin loaded but its ``validate_config`` refused its settings."""

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a job (plugin code run elsewhere) ended with: its return value, or what it
    raised."""

    value: object = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Dispatched:
    """What became of one action handed to its plugin (see :func:`._dispatch.dispatch`).

    ``result`` is None when there was nothing to count (no plugin set, or a ``resolve``
    for a plugin without one); ``seconds`` is None when the plugin was not called.
    """

    ok: bool
    plugin: str | None
    method: str
    result: CallResult | None = None
    seconds: float | None = None


def describe(exc: BaseException) -> str:
    """``Type: message`` (or ``Type`` alone): how a plugin's exception is reported."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
