"""PromQL label matchers: parse ``LABEL_FILTERS``, match label sets, format selectors.

``LABEL_FILTERS`` is what goes between the braces of a PromQL selector:
``job="node",mode!="idle",device=~"sd.*"``. Strings follow PromQL (double or single
quotes with Go escapes, or raw backticks) and Prometheus 3 also allows quoted label
names (``"my.label"="x"``). Regexes are matched as Prometheus matches them (see
``_regex``): RE2 syntax, fully anchored, ``.`` matches a newline, in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum

from ._record import record, record_field
from ._regex import compile_label_regex


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def is_label_name(name: str) -> bool:
    """A label name as Prometheus 2 takes one: ``[a-zA-Z_][a-zA-Z0-9_]*``."""
    return _LEGACY_LABEL.fullmatch(name) is not None


_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@record(frozen=True, slots=True)
class LabelMatcher:
    """One matcher; a label the series does not have counts as the empty string."""

    name: str
    op: MatchOp
    value: str
    _fullmatch: Callable[[str], bool] | None = record_field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        try:
            op = MatchOp(self.op)
        except ValueError:
            raise ValueError(f"unknown matcher operator {self.op!r}") from None
        object.__setattr__(self, "op", op)
        if op in (MatchOp.RE, MatchOp.NRE):
            try:
                fullmatch = compile_label_regex(self.value)
            except ValueError as err:
                raise ValueError(
                    f"invalid regex {self.value!r} for label {self.name!r}: {err}"
                ) from None
            object.__setattr__(self, "_fullmatch", fullmatch)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._fullmatch is None:
            return (actual == self.value) == (self.op is MatchOp.EQ)
        return self._fullmatch(actual) == (self.op is MatchOp.RE)

    def __str__(self) -> str:
        return f"{_format_label_name(self.name)}{self.op}{quote(self.value)}"


@record(frozen=True, slots=True)
class Selector:
    """``metric_name{matchers}``: which series of a scraped metric a rule reads."""

    metric_name: str
    matchers: tuple[LabelMatcher, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def __str__(self) -> str:
        return format_selector(self.metric_name, self.matchers)


def format_selector(metric_name: str, matchers: Iterable[LabelMatcher]) -> str:
    """The PromQL text of a selector, quoted so that Prometheus parses it back unchanged."""
    parts = [str(m) for m in matchers]
    if _LEGACY_METRIC.fullmatch(metric_name):
        return f"{metric_name}{{{','.join(parts)}}}" if parts else metric_name
    return "{" + ",".join([quote(metric_name), *parts]) + "}"


def _format_label_name(name: str) -> str:
    return name if _LEGACY_LABEL.fullmatch(name) else quote(name)


_QUOTE_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
}


def quote(text: str) -> str:
    """A double-quoted PromQL string literal of ``text`` (like Go's ``strconv.Quote``)."""
    out = ['"']
    for ch in text:
        escaped = _QUOTE_ESCAPES.get(ch)
        if escaped is not None:
            out.append(escaped)
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


# --- parsing ---------------------------------------------------------------------------

_SPACE = " \t\r\n"  # what the PromQL lexer skips between tokens
_OPS = ("=~", "!~", "!=", "=")  # longest first
_SIMPLE_ESCAPES = {
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "\\": 0x5C,
}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}  # how many hex digits each escape takes
_HEX = frozenset("0123456789abcdefABCDEF")


class _Error(Exception):
    def __init__(self, pos: int, message: str) -> None:
        self.pos = pos
        self.message = message


def parse_label_filters(text: str) -> tuple[LabelMatcher, ...]:
    """Parse ``job="node",mode!="idle",device=~"sd.*"``; ``""`` gives no matchers.

    Raise ``ValueError`` with one line that says what is wrong and at which position
    (counted in characters from 1).
    """
    try:
        return _Parser(text).parse()
    except _Error as err:
        raise ValueError(f"at position {err.pos + 1}: {err.message}") from None


def read_string_literal(text: str, pos: int) -> tuple[str, int]:
    """The PromQL string literal at ``text[pos]`` (its opening quote: ``"``, ``'`` or a
    backtick), decoded, and the position just after it. ``ValueError`` saying what is wrong
    and at which position (counted in characters from 1)."""
    parser = _Parser(text)
    parser.pos = pos
    try:
        value = parser._string()
    except _Error as err:
        raise ValueError(f"at position {err.pos + 1}: {err.message}") from None
    return value, parser.pos


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> tuple[LabelMatcher, ...]:
        matchers: list[LabelMatcher] = []
        self._skip_space()
        while self.pos < len(self.text):
            matchers.append(self._matcher())
            self._skip_space()
            if self.pos == len(self.text):
                break
            if self.text[self.pos] != ",":
                name = matchers[-1].name
                raise _Error(self.pos, f"expected ',' or the end after the matcher for {name!r}")
            self.pos += 1
            self._skip_space()
        return tuple(matchers)

    def _skip_space(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _SPACE:
            pos += 1
        self.pos = pos

    def _matcher(self) -> LabelMatcher:
        name = self._label_name()
        self._skip_space()
        op_pos = self.pos
        op = next((op for op in _OPS if self.text.startswith(op, op_pos)), None)
        if op is None:
            raise _Error(
                op_pos, f"expected an operator (=, !=, =~ or !~) after label name {name!r}"
            )
        self.pos += len(op)
        self._skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] not in "\"'`":
            raise _Error(self.pos, f"expected a quoted value after '{op}'")
        value_pos = self.pos
        value = self._string()
        try:
            return LabelMatcher(name, MatchOp(op), value)
        except ValueError as err:
            raise _Error(value_pos, str(err)) from None

    def _label_name(self) -> str:
        text, pos = self.text, self.pos
        match = _LEGACY_LABEL.match(text, pos)
        if match is not None:
            self.pos = match.end()
            return match.group()
        if text[pos] in "\"'`":
            name = self._string()
            if not name:
                raise _Error(pos, "a label name cannot be empty")
            return name
        found = text[pos]
        hint = " (write the matchers without braces)" if found in "{}" else ""
        raise _Error(pos, f"expected a label name, found {found!r}{hint}")

    def _string(self) -> str:
        """Read a PromQL string literal at ``self.pos`` (which holds its opening quote)."""
        text, start = self.text, self.pos
        quote_char = text[start]
        if quote_char == "`":
            end = text.find("`", start + 1)
            if end < 0:
                raise _Error(start, "unterminated raw string (missing closing '`')")
            self.pos = end + 1
            raw = text[start + 1 : end]
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:
                raise _Error(start, "this string is not valid UTF-8") from None
            return raw
        out = bytearray()
        pos = start + 1
        while True:
            if pos >= len(text):
                raise _Error(start, f"unterminated quoted string (missing closing {quote_char})")
            ch = text[pos]
            if ch == quote_char:
                break
            if ch == "\n":
                raise _Error(pos, "newline inside a quoted string (write it as \\n)")
            if ch == "\\":
                pos = self._escape(pos, quote_char, out)
                continue
            out += ch.encode("utf-8", "surrogatepass")
            pos += 1
        self.pos = pos + 1
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError:
            raise _Error(start, "this string is not valid UTF-8") from None

    def _escape(self, pos: int, quote_char: str, out: bytearray) -> int:
        """Decode the escape sequence at ``pos`` (a backslash) into ``out``; return its end."""
        text = self.text
        if pos + 1 >= len(text):
            raise _Error(pos, "escape sequence not terminated")
        kind = text[pos + 1]
        if kind in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[kind])
            return pos + 2
        if kind == quote_char:
            out += kind.encode()
            return pos + 2
        if kind in "01234567":
            digits = text[pos + 1 : pos + 4]
            if len(digits) < 3 or any(d not in "01234567" for d in digits):
                raise _Error(pos, "an octal escape needs three octal digits (\\000 to \\377)")
            code = int(digits, 8)
            if code > 0xFF:
                raise _Error(pos, f"octal escape \\{digits} is above \\377")
            out.append(code)
            return pos + 4
        if kind in _HEX_DIGITS:
            count = _HEX_DIGITS[kind]
            digits = text[pos + 2 : pos + 2 + count]
            if len(digits) < count or any(d not in _HEX for d in digits):
                raise _Error(pos, f"\\{kind} needs {count} hexadecimal digits")
            code = int(digits, 16)
            if kind == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise _Error(pos, f"\\{kind}{digits} is not a valid Unicode code point")
            else:
                out += chr(code).encode("utf-8")
            return pos + 2 + count
        raise _Error(pos, f"unknown escape sequence {text[pos : pos + 2]!r}")
