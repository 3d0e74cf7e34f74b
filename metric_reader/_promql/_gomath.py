"""Go's ``math`` and ``strconv.ParseFloat`` as Prometheus' functions see them.

Python's ``math`` raises where Go returns a number (``math.log(0)``, ``math.sqrt(-1)``,
``math.exp(1000)``, ``math.sin(inf)``), its ``floor`` returns an int, its ``min``/``max``
treat NaN as they find it, and its ``log10``/``log2`` round differently from Go's (which
are ``Log(x) * (1/Ln10)`` and a ``Frexp`` split). These functions return what Go does.
``float('1_0')``, ``float(' 1')`` and ``float('0x1p3')`` differ from ``strconv.ParseFloat``
too: ``parse_float`` follows Go's reader.

Go's transcendental functions (``Log``, ``Exp``, ``Sin``...) are its own implementations;
the platform's libm may differ from them in the last bit for some arguments.
"""

from __future__ import annotations

import math
from collections.abc import Callable

INV_LN2 = 1.442695040888963407359924681001892137426645954152985934135449407
"""Go's ``1/Ln2``: the exact constant, rounded once."""
INV_LN10 = 0.4342944819032518276511289189166050822943970058036665661144537832
_INT64_MIN = -(2**63)
MathFunction = Callable[[float], float]


def go_log(x: float) -> float:
    if x > 0:
        return math.log(x)  # +Inf included
    if x == 0:
        return -math.inf
    return math.nan  # negative, NaN


def go_log2(x: float) -> float:
    frac, exp = math.frexp(x)
    if frac == 0.5:  # an exact power of two
        return float(exp - 1)
    return go_log(frac) * INV_LN2 + exp


def go_log10(x: float) -> float:
    return go_log(x) * INV_LN10


def go_exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def go_sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 or math.isnan(x) else math.nan


def go_floor(x: float) -> float:
    if math.isinf(x) or math.isnan(x):
        return x
    result = float(math.floor(x))
    return math.copysign(0.0, x) if result == 0 else result  # Floor(-0) is -0


def go_ceil(x: float) -> float:
    if math.isinf(x) or math.isnan(x):
        return x
    result = float(math.ceil(x))
    return math.copysign(0.0, x) if result == 0 else result  # Ceil(-0.5) is -0


def go_max(x: float, y: float) -> float:
    """``math.Max``: +Inf wins over NaN, NaN over numbers, 0 over -0."""
    if (math.isinf(x) and x > 0) or (math.isinf(y) and y > 0):
        return math.inf
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == 0 and x == y:
        return y if math.copysign(1.0, x) < 0 else x
    return x if x > y else y


def go_min(x: float, y: float) -> float:
    """``math.Min``: -Inf wins over NaN, NaN over numbers, -0 over 0."""
    if (math.isinf(x) and x < 0) or (math.isinf(y) and y < 0):
        return -math.inf
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x == 0 and x == y:
        return x if math.copysign(1.0, x) < 0 else y
    return x if x < y else y


def _domain(function: MathFunction, low: float, high: float) -> MathFunction:
    """``function`` returning NaN outside [low, high] (and for NaN), as Go's does."""

    def go(x: float) -> float:
        return function(x) if low <= x <= high else math.nan

    return go


def _overflowing(function: MathFunction, odd: bool) -> MathFunction:
    """``function`` returning an infinity where Python's overflows (with x's sign if odd)."""

    def go(x: float) -> float:
        try:
            return function(x)
        except OverflowError:
            return math.copysign(math.inf, x) if odd else math.inf

    return go


def go_atanh(x: float) -> float:
    if x == 1:
        return math.inf
    if x == -1:
        return -math.inf
    return math.atanh(x) if -1 < x < 1 else math.nan


_FINITE = 1.7976931348623157e308
go_sin = _domain(math.sin, -_FINITE, _FINITE)  # Sin(±Inf) is NaN
go_cos = _domain(math.cos, -_FINITE, _FINITE)
go_tan = _domain(math.tan, -_FINITE, _FINITE)
go_asin = _domain(math.asin, -1, 1)
go_acos = _domain(math.acos, -1, 1)
go_acosh = _domain(math.acosh, 1, math.inf)
go_sinh = _overflowing(math.sinh, odd=True)
go_cosh = _overflowing(math.cosh, odd=False)


def to_int64(x: float) -> int:
    """``int64(x)`` as Go compiles it on amd64: truncated toward zero; NaN and values out of
    range give the smallest int64 (the CPU's "integer indefinite")."""
    if math.isnan(x) or not -(2.0**63) <= x < 2.0**63:
        return _INT64_MIN
    return int(x)


def format_f(x: float) -> str:
    """Go's ``%f``: six decimals, ``NaN``, ``+Inf``, ``-Inf``."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:f}"


def parse_float(text: str) -> float | None:
    """``strconv.ParseFloat(text, 64)``, or None where it returns an error (bad syntax, or a
    number too large for a float64)."""
    special = _special(text)
    if special is not None:
        return special
    if not _well_formed(text):
        return None
    body = text.replace("_", "")
    try:
        number = float.fromhex(body) if _is_hex(body) else float(body)
    except (ValueError, OverflowError):
        return None
    return None if math.isinf(number) else number  # out of range: Go's ErrRange


def _special(text: str) -> float | None:
    """Go's ``special``: ``[+-]inf``, ``[+-]infinity``, ``nan``, any case."""
    lowered = text.lower()
    unsigned = lowered[1:] if lowered[:1] in ("+", "-") else lowered
    if unsigned in ("inf", "infinity"):
        return -math.inf if lowered[0] == "-" else math.inf
    if lowered == "nan":
        return math.nan
    return None


def _is_hex(body: str) -> bool:
    unsigned = body[1:] if body[:1] in ("+", "-") else body
    return unsigned[:2].lower() == "0x"


def _well_formed(text: str) -> bool:
    """Go's ``readFloat`` syntax: a sign, ``0x`` and hex digits with a required ``p``
    exponent or decimal digits with an optional ``e`` one, ``_`` between digits."""
    i, n = 0, len(text)
    if i < n and text[i] in "+-":
        i += 1
    hexadecimal = i + 2 < n and text[i] == "0" and text[i + 1] in "xX"
    if hexadecimal:
        i += 2
    digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
    saw_digits = saw_dot = False
    while i < n:
        char = text[i]
        if char == ".":
            if saw_dot:
                break
            saw_dot = True
        elif char in digits:
            saw_digits = True
        elif char != "_":
            break
        i += 1
    if not saw_digits:
        return False
    if i < n and text[i] in ("pP" if hexadecimal else "eE"):
        i += 1
        if i < n and text[i] in "+-":
            i += 1
        if i >= n or not text[i].isascii() or not text[i].isdigit():
            return False
        while i < n and (text[i] in "0123456789_"):
            i += 1
    elif hexadecimal:
        return False
    return i == n and ("_" not in text or _underscores_ok(text))


def _underscores_ok(text: str) -> bool:
    """Go's ``underscoreOK``: each ``_`` between digits (a base prefix counts as one)."""
    if text[:1] in ("+", "-"):
        text = text[1:]
    saw = "^"
    i = 0
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for char in text[i:]:
        if char in "0123456789" or (hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def go_divide(x: float, y: float) -> float:
    """``x / y`` as IEEE floats (and Go) divide: by zero gives ±Inf or NaN."""
    if y != 0:
        return x / y
    if x == 0 or math.isnan(x):
        return math.nan
    return math.copysign(math.inf, x) * math.copysign(1.0, y)
