"""Thresholds: an operator and a number, ``>80``, ``<= -3``, ``!=0``."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
# Longest operators first so ">=" is not read as ">" followed by "=80".
_SYNTAX = re.compile(r"\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*")
_NUMBER = re.compile(r"[+-]?(?:inf(?:inity)?|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)", re.IGNORECASE)
ALLOWED = "an operator (>, <, >=, <=, ==, !=) followed by a number, e.g. >80, <=0.5, !=0, >1e3"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A parsed threshold; ``text`` is kept exactly as configured, for plugins and logs."""

    text: str
    op: str
    number: float
    _compare: Callable[[float, float], bool] = field(repr=False, compare=False)

    def breached(self, value: float) -> bool:
        """Whether ``value`` crosses the threshold. NaN never does."""
        return not math.isnan(value) and self._compare(value, self.number)

    def __str__(self) -> str:
        return self.text


def parse_threshold(text: str) -> Threshold:
    """Parse ``text``; raise ``ValueError`` saying what is allowed."""
    match = _SYNTAX.fullmatch(text)
    if match is None or _NUMBER.fullmatch(match.group(2)) is None:
        raise ValueError(f"expected {ALLOWED}")
    op, number = match.group(1), float(match.group(2))
    return Threshold(text=text.strip(), op=op, number=number, _compare=_OPERATORS[op])
