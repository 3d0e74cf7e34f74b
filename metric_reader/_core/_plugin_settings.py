"""Checking a plugin's ``[plugins.NAME]`` table: what every bundled plugin's ``configure``
does first, public (``from metric_reader import check_settings, toml_type``) so that a
plugin of your own refuses a slip with the same words.

A plugin is a plain file users copy and edit: these stay two small functions with no
state, and their texts do not change (the plugins' tests pin them).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


def check_settings(
    settings: Mapping[str, object],
    allowed: Iterable[str],
    variables: Mapping[str, str] | None = None,
) -> None:
    """Refuse every key of ``settings`` that is not in ``allowed``, in one ``ValueError``
    that suggests the closest allowed key for each:
    ``unknown key 'comand' (did you mean 'command'?); allowed: command, resolve_command``.

    ``variables`` maps environment variable names to the keys they stand for, so a table
    that says ``EXEC_ACTION_COMMAND = ...`` is told ``did you mean 'command'?``."""
    allowed = tuple(allowed)
    unknown = []
    for key in settings:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            guess = (variables or {}).get(str(key).upper()) or (close[0] if close else None)
            unknown.append(f"{key!r}" + (f" (did you mean {guess!r}?)" if guess else ""))
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        raise ValueError(f"unknown key{s} {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def toml_type(value: object) -> str:
    """What ``value``, read from a TOML table, is, as a message says it: ``a string``,
    ``an integer``, ``a float``, ``a boolean``, ``an array``, ``a table``, ``a date or
    time`` (``timeout is an integer, not a string``)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return "a date or time" if hasattr(value, "isoformat") else f"a {type(value).__name__}"
