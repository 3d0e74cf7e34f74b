"""Prometheus' series descriptions, the ``input_series`` of rule unit tests: a metric
(``name{label="value"}``, or ``{__name__="name"}``) and its values in the expanding notation
(``1 2 3``, ``1+1x10``, ``-2-1x3``, ``5x4``, ``_``, ``_x3``, ``stale``).

Read as the PromQL lexer and grammar of Prometheus 2.42 read them (``ParseSeriesDesc``):

- ``a+bxn`` and ``a-bxn`` are ``n + 1`` values, ``a``, ``a+b``, ... summed one step at a
  time as Go sums them; ``axn`` is ``n + 1`` copies of ``a``;
- ``_`` is one missing step, ``_xn`` is ``n`` of them (not ``n + 1``);
- ``stale`` is a staleness marker; ``stale+0x2`` is a marker then two plain NaNs (a marker
  plus anything is a NaN, no longer a marker); ``stalex2`` is an error;
- numbers are Go's: ``010`` is octal (8), ``1e3``, ``.5``, ``5.``, ``Inf``, ``NaN`` (any
  case), a sign only in front; no hexadecimal, as in Prometheus' lexer for series
  (``0x2`` is ``0`` three times, ``0x10000000`` is ``0`` ten million and one times,
  ``0X1F`` is an error);
- label values are PromQL strings (double or single quotes with escapes, or backticks).
"""

from __future__ import annotations

import math
from typing import Final

from ..._core import read_string_literal

__all__ = ["STALE", "SeriesDescError", "SeriesValue", "Stale", "parse_series_description"]


class Stale:
    """Prometheus' staleness marker: the series ends here (a special NaN in Prometheus)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "STALE"


STALE: Final = Stale()

SeriesValue = float | Stale | None
"""One step of a series: a value, a staleness marker, or None for a missing sample."""

MAX_VALUES = 1_000_000
"""Values the input series of one test group hold at most, all together (and so one series
too): each costs about 100 bytes once read, and ``1x1000000000`` would take gigabytes
(promtool tries)."""

_SPACE = " \t\r\n"
_DIGITS = "0123456789"
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_ALNUM = _LETTERS | frozenset(_DIGITS)
_KEYWORDS_NOT_NAMES = frozenset(
    # PromQL keywords the grammar does not take as a metric name (``sum`` or ``by`` it does).
    {"atan2", "on", "ignoring", "group_left", "group_right", "bool", "inf", "nan"}
)
_INT64_LIMIT = 1 << 63
_UINT64_LIMIT = 1 << 64


class SeriesDescError(ValueError):
    """A series description Prometheus would refuse; ``offset`` is 0-based in its text."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(f"at character {offset + 1}: {message}")
        self.offset = offset
        self.message = message


def parse_series_description(text: str) -> tuple[dict[str, str], list[SeriesValue]]:
    """The labels (``__name__`` included when there is a name) and the values, one per step
    from time 0, of ``series values`` as promtool joins them; ``SeriesDescError`` otherwise."""
    return _Reader(text).read()


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _peek(self, ahead: int = 0) -> str:
        at = self.pos + ahead
        return self.text[at] if at < len(self.text) else ""

    def _fail(self, message: str, at: int | None = None) -> SeriesDescError:
        return SeriesDescError(self.pos if at is None else at, message)

    def _skip_space(self) -> None:
        while self._peek() and self._peek() in _SPACE:
            self.pos += 1

    def read(self) -> tuple[dict[str, str], list[SeriesValue]]:
        self._skip_space()
        labels: dict[str, str] = {}
        name = None
        if self._peek() and (self._peek() in _LETTERS or self._peek() == ":"):
            start = self.pos
            name = self._word()
            if name.lower() in _KEYWORDS_NOT_NAMES:
                raise self._fail(f"{name!r} cannot be a metric name", start)
        if self._peek() == "{":
            labels = self._label_set()
        elif name is None and self._peek():
            raise self._fail(f"expected a metric name or '{{', found {self._peek()!r}")
        if name is not None:
            labels["__name__"] = name
        return labels, self._values()

    def _word(self) -> str:
        """A PromQL identifier or keyword: letters, digits, ``_`` and ``:``."""
        start = self.pos
        while self._peek() and (self._peek() in _ALNUM or self._peek() == ":"):
            self.pos += 1
        return self.text[start : self.pos]

    def _label_set(self) -> dict[str, str]:
        self.pos += 1  # the "{"
        labels: dict[str, str] = {}
        while True:
            self._skip_space()
            if self._peek() == "}":
                self.pos += 1
                return labels
            name_at = self.pos
            name = self._label_name()
            self._skip_space()
            if self._peek() != "=" or self._peek(1) == "~":
                found = repr(self.text[self.pos : self.pos + 2]) if self._peek() else "the end"
                raise self._fail(f"expected '=' after label name {name!r}, found {found}")
            self.pos += 1
            self._skip_space()
            if not self._peek() or self._peek() not in "\"'`":
                raise self._fail(f"expected a quoted value for label {name!r}")
            try:
                value, self.pos = read_string_literal(self.text, self.pos)
            except ValueError as exc:
                raise self._fail(f"label {name!r}: {exc}") from None
            if name in labels:
                raise self._fail(f"label {name!r} is given twice", name_at)
            labels[name] = value
            self._skip_space()
            if self._peek() == ",":
                self.pos += 1
            elif self._peek() != "}":
                found = repr(self._peek()) if self._peek() else "the end"
                raise self._fail(f"expected ',' or '}}' in the label set, found {found}")

    def _label_name(self) -> str:
        start = self.pos
        if not self._peek() or self._peek() not in _LETTERS:
            found = repr(self._peek()) if self._peek() else "the end"
            raise self._fail(f"expected a label name or '}}', found {found}")
        while self._peek() and self._peek() in _ALNUM:
            self.pos += 1
        return self.text[start : self.pos]

    def _values(self) -> list[SeriesValue]:
        values: list[SeriesValue] = []
        while self.pos < len(self.text):
            if self._peek() not in _SPACE:
                raise self._fail(f"expected a space before the values, found {self._peek()!r}")
            self._skip_space()
            if self.pos < len(self.text):
                values.extend(self._item())
                if len(values) > MAX_VALUES:
                    raise self._fail(f"more than {MAX_VALUES:,} values in one series")
                if self._peek() and self._peek() not in _SPACE:
                    raise self._fail(f"unexpected {self._peek()!r} in series values")
        return values

    def _item(self) -> list[SeriesValue]:
        if self._peek() == "_":
            self.pos += 1
            if self._peek() != "x":
                return [None]
            self.pos += 1
            return [None] * self._repetitions()
        start = self._value()
        if self._peek() == "x":
            self.pos += 1
            return [start] * (self._repetitions() + 1)
        if self._peek() in ("+", "-") and self._peek():
            step = self._signed_number()
            if self._peek() != "x":
                found = repr(self._peek()) if self._peek() else "the end"
                raise self._fail(f"expected 'x' and a count after the increment, found {found}")
            self.pos += 1
            return _expanded(start, step, self._repetitions())
        return [start]

    def _value(self) -> float | Stale:
        char = self._peek()
        if char in ("+", "-") and char:
            return self._signed_number()
        if char and char in _LETTERS and char != "x":
            start = self.pos
            word = self._word()
            if word == "stale":
                return STALE
            if word.lower() in ("inf", "nan"):
                return _go_number(word, start)
            raise self._fail(
                f'unexpected {word!r} in series values: expected a number or "stale"', start
            )
        return self._number()

    def _signed_number(self) -> float:
        negative = self._peek() == "-"
        self.pos += 1
        char = self._peek()
        if char and char in _LETTERS and char != "x":
            start = self.pos
            word = self._word()
            if word.lower() not in ("inf", "nan"):
                raise self._fail(f"expected a number after the sign, found {word!r}", start)
            number = _go_number(word, start)
        else:
            number = self._number()
        return -number if negative else number

    def _number_token(self) -> str:
        """A number as the lexer's ``scanNumber`` reads one in a series description."""
        start = self.pos
        if not (self._peek() and (self._peek() in _DIGITS or self._peek() == ".")):
            found = repr(self._peek()) if self._peek() else "the end"
            raise self._fail(f"expected a number, found {found}")
        self._digits()
        if self._peek() == ".":
            self.pos += 1
            self._digits()
        if self._peek() and self._peek() in "eE":
            self.pos += 1
            if self._peek() and self._peek() in "+-":
                self.pos += 1
            self._digits()
        following = self._peek()
        if following and following != "x" and following in _ALNUM:
            self.pos += 1
            raise self._fail(f"bad number syntax: {self.text[start : self.pos]!r}", start)
        return self.text[start : self.pos]

    def _digits(self) -> None:
        while self._peek() and self._peek() in _DIGITS:
            self.pos += 1

    def _number(self) -> float:
        start = self.pos
        return _go_number(self._number_token(), start)

    def _repetitions(self) -> int:
        start = self.pos
        token = self._number_token()
        if not token.isdigit() or int(token) >= _UINT64_LIMIT:
            raise self._fail(f"invalid repetition in series values: {token!r}", start)
        count = int(token)
        if count > MAX_VALUES:
            raise self._fail(
                f"more than {MAX_VALUES:,} values in one series{self._not_hex(start)}", start
            )
        return count

    def _not_hex(self, start: int) -> str:
        """What a count that looks hexadecimal (``0x10000000``) is to Prometheus: ``0``
        repeated, the count being decimal (its lexer reads no hexadecimal in series)."""
        before = self.text[: start - 2].rstrip("+-")
        if self.text[start - 2 : start] != "0x" or (before and before[-1] not in _SPACE):
            return ""
        written = self.text[start - 2 : self.pos]
        return f" ({written} is not hexadecimal: 0 repeated {int(written[2:]) + 1:,} times)"


def _expanded(start: float | Stale, step: float, count: int) -> list[SeriesValue]:
    """``start``, then ``count`` more, each the one before plus ``step`` (as Go adds)."""
    values: list[SeriesValue] = [start]
    current = math.nan if isinstance(start, Stale) else start
    for _ in range(count):
        current += step
        values.append(current)
    return values


def _go_number(token: str, at: int) -> float:
    """The lexer's number as ``strconv.ParseInt(token, 0, 64)`` reads it, else as
    ``strconv.ParseFloat``: so a leading 0 makes an octal integer."""
    if token.isdigit():
        octal = len(token) > 1 and token[0] == "0"
        if not octal or all(char in "01234567" for char in token):
            whole = int(token, 8 if octal else 10)
            if whole < _INT64_LIMIT:
                return float(whole)
    lower = token.lower()
    if lower in ("inf", "nan"):
        return math.inf if lower == "inf" else math.nan
    try:
        number = float(token)
    except ValueError:
        raise SeriesDescError(at, f"error parsing number {token!r}: invalid syntax") from None
    if math.isinf(number):
        raise SeriesDescError(at, f"error parsing number {token!r}: value out of range")
    return number
