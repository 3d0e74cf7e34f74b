"""Thresholds: an operator and a number, ``>80``, ``<= -3``, ``!=0``.

The number is what Go's ``strconv.ParseFloat`` reads in decimal, ASCII digits only: Python's
``float`` would also take the digits of other scripts, ``1_0`` and ``nan``. ``Inf`` is allowed
(Go allows it); a number too large for a float (``1e999``) is refused, as Go refuses it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable

from ._record import record, record_field

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
# Longest operators first so ">=" is not read as ">" followed by "=80".
_SPACE = " \t\r\n"
_SYNTAX = re.compile(r"[ \t\r\n]*(>=|<=|==|!=|>|<)[ \t\r\n]*([^ \t\r\n]+)[ \t\r\n]*")
_INFINITY = re.compile(r"[+-]?inf(?:inity)?", re.IGNORECASE)
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
ALLOWED = "an operator (>, <, >=, <=, ==, !=) followed by a number, e.g. >80, <=0.5, !=0, >1e3"


@record(frozen=True, slots=True)
class Threshold:
    """A parsed threshold; ``text`` is kept exactly as configured, for plugins and logs."""

    text: str
    op: str
    number: float
    _compare: Callable[[float, float], bool] = record_field(repr=False, compare=False)

    def breached(self, value: float) -> bool:
        """Whether ``value`` crosses the threshold. NaN never does, but for ``ANY``."""
        if self.op == ANY:
            return True
        return not math.isnan(value) and self._compare(value, self.number)

    def __str__(self) -> str:
        return self.text


ANY = "any"
"""The operator of ``any_value``: every value holds, NaN included."""


def any_value(text: str) -> Threshold:
    """A threshold every value crosses, NaN included, shown as ``text``: an alert of a
    Prometheus rule file, where being in the result is the condition."""
    return Threshold(text=text, op=ANY, number=math.nan, _compare=lambda value, _: True)


def parse_threshold(text: str) -> Threshold:
    """Parse ``text``; raise ``ValueError`` saying what is allowed."""
    match = _SYNTAX.fullmatch(text)
    if match is None:
        raise ValueError(f"expected {ALLOWED}")
    op, written = match.group(1), match.group(2)
    if _INFINITY.fullmatch(written):
        number = float(written)
    elif _NUMBER.fullmatch(written):
        number = float(written)
        if math.isinf(number):
            raise ValueError(f"{written} is too large for a number; expected {ALLOWED}")
    else:
        raise ValueError(f"expected {ALLOWED}")
    return Threshold(text=text.strip(_SPACE), op=op, number=number, _compare=_OPERATORS[op])


def parse_value(text: str) -> float:
    """A metric value as Go's ParseFloat reads one: ASCII digits, ``NaN``, ``Inf``; raise
    ``ValueError`` saying what is allowed (``float`` would take ``١٢`` or ``1_0``)."""
    written = text.strip(_SPACE)
    if _INFINITY.fullmatch(written) or written.lower() == "nan" or _NUMBER.fullmatch(written):
        return float(written)
    raise ValueError("expected a number such as 12.5, -3 or 1e3, or NaN, Inf, -Inf")
