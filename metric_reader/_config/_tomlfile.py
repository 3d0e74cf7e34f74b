"""Reading the TOML rule file with positions, so every error can say ``file:line``.

``tomllib`` gives values but no positions. The rule file's shape is simple (top-level
keys, ``[[rules]]``, ``[rules.hard]``, ``[plugins.NAME]``), so a line scan that follows
table headers finds the line of every key well enough to point a user at it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .._core import record, record_field
from ._regular_file import read_regular_file

# The name is words separated by spaces, matched atomically: a lazy run of name characters
# and spaces before ``\s*`` backtracked cubically on a long line of spaces.
_HEADER = re.compile(
    r"^\s*(\[\[?)\s*((?>[A-Za-z0-9_.\-\"']+(?: +[A-Za-z0-9_.\-\"']+)*))\s*(\]\]?)\s*(?:#.*)?$"
)
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")
_LINE_IN_ERROR = re.compile(r"\(at line (\d+), column \d+\)")
MAX_DEPTH = 32
"""Tables and arrays nested deeper are refused: a rule file needs four or five levels, and
tomllib (and whatever walks plugin settings) recurses once a level."""


class TomlFileError(Exception):
    """The file cannot be read or is not valid TOML: one line, with ``file:line``."""


@record(slots=True)
class TomlFile:
    path: Path
    data: dict[str, Any]
    lines: dict[str, int] = record_field(default_factory=dict)
    """``"rules[2].threshold"`` (and table paths like ``"rules[2]"``) to 1-based lines."""

    def where(self, key_path: str) -> str:
        """``file:line: key_path``, or ``file: key_path`` when the line is unknown."""
        line = self.lines.get(key_path)
        if line is None and "." in key_path:
            line = self.lines.get(key_path.rsplit(".", 1)[0])
        place = f"{self.path}:{line}" if line else str(self.path)
        return f"{place}: {key_path}"


def read_toml_file(path: Path) -> TomlFile:
    try:
        # newlines as a file opened in text mode reads them, as before
        text = read_regular_file(path).decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, ValueError) as exc:  # ValueError: invalid UTF-8, or a NUL in the path
        raise TomlFileError(f"{path}: cannot read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _LINE_IN_ERROR.search(message)
        place = f"{path}:{match.group(1)}" if match else str(path)
        reason = _LINE_IN_ERROR.sub("", message).strip()
        raise TomlFileError(f"{place}: not valid TOML: {reason}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        data = None
    if data is None or _deeper_than(data, MAX_DEPTH):
        raise TomlFileError(f"{path}: tables or arrays nested more than {MAX_DEPTH} levels deep")
    return TomlFile(path, data, _key_lines(text))


def _deeper_than(data: dict[str, Any], limit: int) -> bool:
    """Whether tables and arrays nest more than ``limit`` levels (counted without
    recursion: the limit must hold whatever the depth)."""
    pending: list[tuple[object, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            pending.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return False


def _key_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    counts: dict[str, int] = {}
    table = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header is not None and header.group(1) == header.group(3).replace("]", "["):
            name = ".".join(part.strip().strip("\"'") for part in header.group(2).split("."))
            if header.group(1) == "[[":
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = f"{name}[{index}]"
            else:
                parent, _, leaf = name.rpartition(".")
                # [rules.hard] belongs to the latest [[rules]] entry
                if parent and parent in counts:
                    table = f"{parent}[{counts[parent] - 1}].{leaf}"
                else:
                    table = name
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key is not None:
            name = key.group(1).strip('"')
            lines.setdefault(f"{table}.{name}" if table else name, number)
    return lines
