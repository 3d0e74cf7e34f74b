"""What comes out of plugin code: a job's outcome, a call's failure, a file's problem.

Kept in one module so that the loader, the callers, the catalog and the dispatch policy
agree on them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .._core import redact

CallResult = Literal["success", "failure", "timeout", "dry_run"]
"""The ``result`` label of ``metric_reader_plugin_calls_total``."""


@dataclass(frozen=True)
class EntryPointOrigin:
    """An installed package's plugin: one entry point of the ``metric_reader.plugins``
    group, ``name = value`` in ``distribution`` ``version``."""

    name: str
    value: str
    """Where the plugin object is: ``module:attribute``."""
    distribution: str
    version: str

    @property
    def package(self) -> str:
        """``mr-slack 1.2.0``."""
        return f"{self.distribution} {self.version}"

    def __str__(self) -> str:
        return f'entry point "{self.name} = {self.value}" of {self.package}'


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be loaded, and why: a file (``path``) or an installed
    package's ``entry_point`` (``path`` None); ``name`` when it was learnt."""

    path: Path | None
    reason: str
    name: str | None = None
    unconfigured: bool = False
    """The plugin loaded but its ``validate_config`` refused its settings."""
    entry_point: EntryPointOrigin | None = None
    code: bytes | None = field(default=None, compare=False, repr=False)
    """An unconfigured file's content, as it loaded: plugins made of it are made of this."""
    made_of: str | None = None
    """For a plugin made of another (``[plugins.NAME]`` with ``plugin = "BASE"``): BASE."""

    def __post_init__(self) -> None:
        # The reason quotes the plugin's own words (its exception), shown in the log,
        # /readyz and check: no secret the service knows may be among them.
        object.__setattr__(self, "reason", redact(self.reason))

    @property
    def key(self) -> str:
        """The plugin name it stands for: its name, or failing that its file's stem."""
        if self.name is not None:
            return self.name
        assert self.path is not None  # an entry point's problem always has its name
        return self.path.stem

    @property
    def source(self) -> str:
        """Where the plugin was to come from: the file, or the entry point and package; for
        a plugin to be made of another that is not there, its ``[plugins.NAME]`` table."""
        if self.entry_point is not None:
            return str(self.entry_point)
        return str(self.path) if self.path is not None else f"[plugins.{self.key}]"

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a job (plugin code run elsewhere) ended with: its return value, or what it
    raised."""

    value: object = None
    error: BaseException | None = None


def describe(exc: BaseException) -> str:
    """``Type: message`` (or ``Type`` alone): how a plugin's exception is reported."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
