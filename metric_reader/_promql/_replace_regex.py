"""``label_replace``'s regex, as Prometheus 2.42 (built with Go 1.19) compiles and expands
it: ``^(?:regex)$`` in Go's ``regexp`` syntax, run on RE2 (the same engine, leftmost-first),
the replacement expanded as Go's ``Regexp.ExpandString``.

Where Go 1.19 and the C++ RE2 part: Go refuses ``(?<name>...)`` and group names that are not
ASCII letters, digits and ``_``; it accepts two groups of the same name (``$name`` is then
the first that took part in the match), which RE2 refuses. ``\\C`` and an unterminated ``\\Q``
are the core's ``label_regex_refusal`` to refuse.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

from metric_reader._core import label_regex_refusal

from .._core import record

_GO_GROUP_NAME = re.compile(r"[A-Za-z0-9_]+")


@record(frozen=True, slots=True)
class ReplaceRegex:
    compiled: Any
    names: tuple[str, ...]
    """Go's ``SubexpNames``: each group's name by number ("" for none), 0 the whole match."""

    def replace(self, template: str, source: str) -> str | None:
        """``template`` expanded with the groups of ``source``'s match, or None when the
        whole of ``source`` does not match."""
        match = self.compiled.search(source)
        if match is None:
            return None
        spans = [match.span(i) for i in range(len(self.names))]
        return expand(template, source, spans, self.names)


@lru_cache(maxsize=256)
def compile_replace_regex(regex: str) -> ReplaceRegex | None:
    """``regex`` compiled as label_replace compiles it, or None where Go's regexp refuses it
    (``.`` does not match a newline here: no ``(?s)``, unlike a label matcher)."""
    renamed = _renamed_for_re2(regex)
    if renamed is None or label_regex_refusal(renamed[0]) is not None:
        return None
    import re2  # type: ignore[import-untyped]  # RE2 is loaded only where needed

    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(f"^(?:{renamed[0]})$", options)
    except re2.error:
        return None
    names = [""] * (compiled.groups + 1)
    for unique, index in compiled.groupindex.items():
        names[index] = renamed[1][unique]
    return ReplaceRegex(compiled, tuple(names))


def _renamed_for_re2(regex: str) -> tuple[str, dict[str, str]] | None:
    """``regex`` with its repeated group names made unique (RE2 refuses them, Go does not),
    and the Go name of each unique one; None where Go refuses a group's name."""
    out: list[str] = []
    names: dict[str, str] = {}
    i, in_class = 0, False
    while i < len(regex):
        char = regex[i]
        if regex.startswith("\\Q", i):  # quoted text, to \E
            end = regex.find("\\E", i + 2)
            end = len(regex) if end < 0 else end + 2
            out.append(regex[i:end])
            i = end
            continue
        if char == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            start = i + 1 + (regex[i + 1 : i + 2] == "^")
            start += regex[start : start + 1] == "]"  # a ] first in a class is literal
            out.append(regex[i:start])
            i, in_class = start, True
            continue
        elif regex.startswith("(?<", i):
            return None  # Go 1.19: invalid or unsupported Perl syntax
        elif regex.startswith("(?P<", i):
            end = regex.find(">", i + 4)
            name = regex[i + 4 : end]
            if end < 0 or not _GO_GROUP_NAME.fullmatch(name):
                return None  # Go: invalid named capture
            unique = name
            while unique in names:
                unique += "_"
            names[unique] = name
            out.append(f"(?P<{unique}>")
            i = end + 1
            continue
        out.append(char)
        i += 1
    return "".join(out), names


def expand(template: str, source: str, spans: list[tuple[int, int]], names: Any) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``${name}`` replaced by
    the group's text (empty for a group that did not take part or does not exist), ``$$``
    by ``$``; a ``$`` not followed by a name stays as it is."""
    out: list[str] = []
    rest = template
    while True:
        before, dollar, after = rest.partition("$")
        out.append(before)
        if not dollar:
            return "".join(out)
        if after.startswith("$"):
            out.append("$")
            rest = after[1:]
            continue
        name, rest_after = _extract(after)
        if name is None:
            out.append("$")  # malformed: the $ is text
            rest = after
            continue
        rest = rest_after
        number = _group_number(name)
        if number is not None:
            if number < len(spans) and spans[number][0] >= 0:
                out.append(source[spans[number][0] : spans[number][1]])
            continue
        for index, group_name in enumerate(names):  # the first of that name that took part
            if group_name == name and spans[index][0] >= 0:
                out.append(source[spans[index][0] : spans[index][1]])
                break


def _extract(text: str) -> tuple[str | None, str]:
    """Go's ``extract``: the name after a ``$`` (letters, digits, ``_``; in braces or not),
    and what follows it."""
    brace = text.startswith("{")
    body = text[1:] if brace else text
    i = 0
    while i < len(body) and _name_char(body[i]):
        i += 1
    if i == 0:
        return None, text
    name = body[:i]
    if brace:
        if i >= len(body) or body[i] != "}":
            return None, text
        i += 1
    return name, body[i:]


def _name_char(char: str) -> bool:
    """Go's ``unicode.IsLetter``, ``unicode.IsDigit`` or ``_``."""
    return char == "_" or unicodedata.category(char) in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd")


def _group_number(name: str) -> int | None:
    """The group number a name spells (ASCII digits, no leading zero, below 10^8 as Go
    stops counting there), or None for a group name."""
    if not name.isascii() or not name.isdigit() or (name[0] == "0" and len(name) > 1):
        return None
    number = 0
    for digit in name:
        if number >= 100_000_000:
            return None
        number = number * 10 + int(digit)
    return number
