"""Configuration mistakes, collected: each value remembers where it came from, so an error
names it the way the user wrote it (``THRESHOLD='abc'`` for the environment,
``rules.toml:12: rules[3].threshold`` for the file), and all of them are reported together.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._core import ConfigError, record, without_url_credentials

__all__ = ["ConfigError", "Given", "Problems", "env_name"]


def env_name(key: str) -> str:
    """The environment variable of a setting's key: ``hard.threshold`` -> ``HARD_THRESHOLD``."""
    return key.upper().replace(".", "_")


@record(frozen=True, slots=True)
class Given:
    """A value as the user wrote it, and how to name where: ``THRESHOLD`` or
    ``rules.toml:12: rules[3].threshold``."""

    value: object
    at: str
    secret: bool = False
    """Never show ``value`` (a password, header values): errors name the setting only."""


class Problems:
    """Every mistake found so far, one line each."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def invalid(self, given: Given, reason: str) -> None:
        shown = "(value not shown)" if given.secret else repr(_without_password(given.value))
        self.lines.append(f"{given.at}={shown} is invalid: {reason}")

    def add(self, line: str) -> None:
        self.lines.append(line)

    def parse(self, parser: Callable[[object], Any], given: Given | None, default: Any) -> Any:
        """``given`` parsed, or ``default`` when it is absent or invalid (then noted)."""
        if given is None:
            return default
        try:
            return parser(given.value)
        except ValueError as exc:
            self.invalid(given, str(exc))
            return default


def _without_password(value: object) -> object:
    """A URL's password as ``***``, for messages."""
    return without_url_credentials(value) if isinstance(value, str) else value
