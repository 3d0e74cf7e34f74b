"""PromQL's binary operators on two floats, with Go's float semantics: a division by zero is
an infinity or NaN, ``%`` is Go's ``math.Mod`` and ``^`` its ``math.Pow`` (never an
exception, as Python's ``/``, ``math.fmod`` and ``math.pow`` raise)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

ARITHMETIC: dict[str, Callable[[float, float], float]] = {}
COMPARISON: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
DROPS_NAME = frozenset(("+", "-", "*", "/", "%", "^"))
"""Prometheus' ``shouldDropMetricName``: ``atan2`` and comparisons keep the name."""


def divide(lhs: float, rhs: float) -> float:
    try:
        return lhs / rhs
    except ZeroDivisionError:
        if lhs == 0 or math.isnan(lhs):
            return math.nan
        return math.copysign(math.inf, lhs) * math.copysign(1.0, rhs)


def modulo(lhs: float, rhs: float) -> float:
    """Go's ``math.Mod``: the sign of ``lhs``; NaN for an infinite ``lhs`` or a zero ``rhs``."""
    if rhs == 0 or math.isinf(lhs) or math.isnan(lhs) or math.isnan(rhs):
        return math.nan
    if math.isinf(rhs):
        return lhs
    return math.fmod(lhs, rhs)


def power(lhs: float, rhs: float) -> float:
    """Go's ``math.Pow``."""
    try:
        return math.pow(lhs, rhs)
    except OverflowError:
        odd = rhs.is_integer() and rhs % 2 == 1
        return -math.inf if lhs < 0 and odd else math.inf
    except ValueError:
        if lhs == 0:  # a negative exponent of zero
            odd = rhs.is_integer() and abs(rhs) % 2 == 1
            return math.copysign(math.inf, lhs) if odd else math.inf
        return math.nan  # a negative base to a fractional exponent


ARITHMETIC.update(
    {
        "+": operator.add,
        "-": operator.sub,
        "*": operator.mul,
        "/": divide,
        "%": modulo,
        "^": power,
        "atan2": math.atan2,
    }
)
