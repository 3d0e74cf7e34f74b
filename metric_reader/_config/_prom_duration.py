"""Prometheus' durations (``model.Duration`` of prometheus/common), as rule files write them:
``1h30m``, ``2w``, ``1y``, ``0``. Whole numbers only, units from the largest to the smallest,
each at most once, no sign. Go's durations (``1.5h``, ``-5m``, ``us``) are not this syntax.
"""

from __future__ import annotations

import json

_MS = 1_000_000
"""Nanoseconds in a millisecond: the sums are kept in Go's unit to find the same overflow."""

_UNITS: dict[str, tuple[int, int]] = {
    # unit: (its place, biggest first; nanoseconds)
    "y": (1, 365 * 24 * 3600 * 1000 * _MS),
    "w": (2, 7 * 24 * 3600 * 1000 * _MS),
    "d": (3, 24 * 3600 * 1000 * _MS),
    "h": (4, 3600 * 1000 * _MS),
    "m": (5, 60 * 1000 * _MS),
    "s": (6, 1000 * _MS),
    "ms": (7, _MS),
}
_LONGEST = (1 << 63) - 1
"""Go's time.Duration: about 292 years."""
_DIGITS = frozenset("0123456789")


def parse_prometheus_duration(text: str) -> float:
    """``text`` in seconds; ``ValueError`` with Prometheus' own message when it is not a
    duration."""
    if text == "0":
        return 0.0
    if text == "":
        raise ValueError("empty duration string")
    invalid = ValueError(f"not a valid duration string: {go_quoted(text)}")
    total = 0
    last_place = 0
    rest = text
    while rest:
        digits = _leading(rest, inside=True)
        if not digits:
            raise invalid
        rest = rest[len(digits) :]
        unit = _leading(rest, inside=False)
        if not unit:
            raise invalid
        rest = rest[len(unit) :]
        if unit not in _UNITS:
            raise ValueError(f"unknown unit {go_quoted(unit)} in duration {go_quoted(text)}")
        place, nanoseconds = _UNITS[unit]
        if place <= last_place:
            raise invalid
        last_place = place
        total += int(digits) * nanoseconds
        if total > _LONGEST:
            raise ValueError("duration out of range")
    return total / 1e9


def _leading(text: str, *, inside: bool) -> str:
    """The longest start of ``text`` made of ASCII digits (``inside``) or of anything else."""
    end = 0
    while end < len(text) and (text[end] in _DIGITS) == inside:
        end += 1
    return text[:end]


def go_quoted(text: str) -> str:
    """``text`` in double quotes, as Go's ``%q`` and so Prometheus' messages show it."""
    return json.dumps(text, ensure_ascii=False)


def format_prometheus_duration(seconds: float) -> str:
    """As Prometheus prints a duration (``model.Duration``): ``8m``, ``1h30m``, ``90d``,
    ``2w``; years and weeks only when nothing is left over."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, size, exact in (
        ("y", 365 * 86_400_000, True),
        ("w", 7 * 86_400_000, True),
        ("d", 86_400_000, False),
        ("h", 3_600_000, False),
        ("m", 60_000, False),
        ("s", 1000, False),
        ("ms", 1, False),
    ):
        if exact and ms % size:
            continue
        count = ms // size
        if count > 0:
            out += f"{count}{unit}"
            ms -= count * size
    return out
