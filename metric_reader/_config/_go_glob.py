"""Go's ``filepath.Glob``, which Prometheus expands ``rule_files`` with: ``*`` and ``?`` never
match ``/`` but do match a leading dot, classes are ``[a-z]`` and ``[^a-z]``, ``\\`` escapes,
and a pattern without any of ``*?[\\`` is a plain path, kept if it exists (even as a broken
symlink). Python's ``glob`` differs on dot files and ``[!...]``, so it is not used.
"""

from __future__ import annotations

import os
import posixpath
import re

_META = frozenset("*?[\\")


class BadPattern(ValueError):
    def __init__(self) -> None:
        super().__init__("syntax error in pattern")


def has_meta(path: str) -> bool:
    return any(char in _META for char in path)


def escape(path: str) -> str:
    """``path`` as a pattern that matches only itself."""
    return "".join("\\" + char if char in _META else char for char in path)


def go_join(directory: str, path: str) -> str:
    """``filepath.Join``: joined and cleaned lexically (``a/./b/../c`` is ``a/c``)."""
    return posixpath.normpath(posixpath.join(directory, path))


def glob(pattern: str) -> list[str]:
    """The paths ``pattern`` matches, each directory's in byte order; ``BadPattern`` when it
    is malformed (checked whole, before anything is read)."""
    for element in pattern.split("/"):
        if has_meta(element):  # a plain name is never malformed
            _element_regex(element)
    return _glob(pattern)


def _glob(pattern: str) -> list[str]:
    if not has_meta(pattern):
        return [pattern] if os.path.lexists(pattern) else []
    directory, element = pattern[: pattern.rfind("/") + 1], pattern[pattern.rfind("/") + 1 :]
    directory = directory[:-1] if directory not in ("", "/") else (directory or ".")
    if not has_meta(directory):
        return _matches_in(directory, element)
    if directory == pattern:
        raise BadPattern()
    return [found for parent in _glob(directory) for found in _matches_in(parent, element)]


def _matches_in(directory: str, element: str) -> list[str]:
    # Like Go, an unreadable or missing directory matches nothing: no error.
    try:
        names = sorted(os.listdir(directory)) if os.path.isdir(directory) else []
    except OSError:
        return []
    regex = _element_regex(element)
    return [go_join(directory, name) for name in names if regex.fullmatch(name)]


def _element_regex(element: str) -> re.Pattern[str]:
    """One path element of a pattern as a regex; ``BadPattern`` as ``filepath.Match`` has it."""
    parts: list[str] = []
    i = 0
    while i < len(element):
        char = element[i]
        if char == "*":
            parts.append("[^/]*")
            i += 1
        elif char == "?":
            parts.append("[^/]")
            i += 1
        elif char == "[":
            part, i = _class(element, i + 1)
            parts.append(part)
        elif char == "\\":
            if i + 1 == len(element):
                raise BadPattern()
            parts.append(re.escape(element[i + 1]))
            i += 2
        else:
            parts.append(re.escape(char))
            i += 1
    return re.compile("".join(parts), re.DOTALL)


def _class(element: str, i: int) -> tuple[str, int]:
    """The class starting at ``element[i]`` (after ``[``) and where it ends."""
    negated = i < len(element) and element[i] == "^"
    i += negated
    ranges: list[tuple[str, str]] = []
    while not (i < len(element) and element[i] == "]" and ranges):
        low, i = _class_char(element, i)
        high = low
        if element[i] == "-":
            high, i = _class_char(element, i + 1)
        ranges.append((low, high))
    # Go keeps a range whose ends are reversed; it simply matches nothing.
    spans = "".join(f"{re.escape(low)}-{re.escape(high)}" for low, high in ranges if low <= high)
    if not spans:
        return ("[^/]" if negated else "(?!)"), i + 1
    return f"[{'^' if negated else ''}{spans}]", i + 1


def _class_char(element: str, i: int) -> tuple[str, int]:
    if i >= len(element) or element[i] in "-]":
        raise BadPattern()
    if element[i] == "\\":
        i += 1
        if i >= len(element):
            raise BadPattern()
    # Go wants more of the pattern after any character of a class: at least its "]".
    if i + 1 >= len(element):
        raise BadPattern()
    return element[i], i + 1
