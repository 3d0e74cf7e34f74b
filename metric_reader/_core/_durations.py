"""Go's duration syntax (``300ms``, ``1m30s``, ``2h``), as the original service used.

Only ASCII digits, as in Go: Python's ``float`` would also take other scripts' digits (and
``\\d`` in a ``str`` regex matches them), so the syntax is spelled ``[0-9]``.
"""

from __future__ import annotations

import re

_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts both micro signs
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
ALLOWED = "a Go duration such as 300ms, 5s, 1m30s or 2h (units ns, us, ms, s, m, h)"
_MAX_SECONDS = (2**63 - 1) / 1e9  # Go's longest time.Duration, about 292 years
_SPACE = " \t\r\n"


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ``ValueError`` naming what is allowed.

    Negative durations are refused: no setting of this service can use one.
    """
    s = text.strip(_SPACE)
    negative = s.startswith("-")
    if s[:1] in ("+", "-"):
        s = s[1:]
    if not s:
        raise ValueError(f"empty; expected {ALLOWED}")
    if s == "0":
        return 0.0
    total = 0.0
    pos = 0
    while pos < len(s):
        match = _PART.match(s, pos)
        if match is None:
            raise ValueError(f"not a duration; expected {ALLOWED}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if negative and total:
        raise ValueError(f"negative durations are not allowed; expected {ALLOWED}")
    if total > _MAX_SECONDS:  # also infinity, from hundreds of digits: Go refuses these too
        raise ValueError(f"too long, at most 2562047h (about 292 years); expected {ALLOWED}")
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way Go prints a ``time.Duration`` (``1m30s``, ``250ms``, ``0s``)."""
    if seconds == 0:
        return "0s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        for unit, scale in (("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            if seconds >= scale:
                return f"{sign}{_trim(seconds / scale)}{unit}"
        return f"{sign}{_trim(seconds / 1e-9)}ns"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    out = sign
    if hours:
        out += f"{int(hours)}h"
    if hours or minutes:
        out += f"{int(minutes)}m"
    return out + f"{_trim(secs)}s"


def round_duration(seconds: float) -> float:
    """``seconds`` rounded for people to read, as the log lines round them: to the
    millisecond from a second up (``2.040785915`` -> ``2.041``), to three significant
    digits below (``0.000123456`` -> ``0.000123``). Format it with ``format_duration``."""
    if seconds >= 1 or seconds <= 0:
        return round(seconds, 3)
    return float(f"{seconds:.3g}")


def _trim(number: float) -> str:
    text = f"{number:.9f}".rstrip("0").rstrip(".")
    return text or "0"
