"""A moment given on a command line or in a query: ``2h``, ``7d`` (that long ago) or an RFC
3339 time, as ``backtest --from`` reads it; ``history --since`` and ``/api/actions?since=``
read it the same way."""

from __future__ import annotations

from datetime import datetime

from ._prom_duration import parse_prometheus_duration

MOMENT_HELP = "a duration back from now (30m, 2h, 7d) or an RFC 3339 time (2026-11-20T08:00:00Z)"


def parse_moment(text: str, now: float) -> float:
    """``text`` as seconds since the epoch: a Prometheus duration before ``now``, or an RFC
    3339 time with its zone; ``ValueError`` saying what is expected otherwise."""
    text = text.strip()
    try:
        return now - parse_prometheus_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}: expected {MOMENT_HELP}") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r}: give the time zone (Z or +01:00)")
    return moment.timestamp()
