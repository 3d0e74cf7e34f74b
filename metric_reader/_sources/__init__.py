"""Where values come from: one module per kind of source (``_prometheus_kind``,
``_scrape_kind``; ``_kinds`` says which reads which rule), how rules are planned into
fetches and fetched, the groups they are evaluated in, range reads for backtests, and the
expression checks made at start.

What the other layers use of it is exported here; the modules behind it are private.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._fetches import Fetch, fetch_timeout
    from ._first_read import check_expressions, first_reads
    from ._groups import Group, build_groups
    from ._kind import History, HistoryUnavailable
    from ._kinds import kind_of
    from ._prometheus_kind import PROMETHEUS
    from ._range import (
        MAX_HELD_POINTS,
        RangeSeries,
        evaluation_count,
        evaluation_times,
        query_range,
        samples_at,
    )
    from ._read_errors import FailedRead, TickReads

__all__ = [
    "MAX_HELD_POINTS",
    "PROMETHEUS",
    "FailedRead",
    "Fetch",
    "Group",
    "History",
    "HistoryUnavailable",
    "RangeSeries",
    "TickReads",
    "build_groups",
    "check_expressions",
    "evaluation_count",
    "evaluation_times",
    "fetch_timeout",
    "first_reads",
    "kind_of",
    "query_range",
    "samples_at",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "FailedRead": "._read_errors",
            "Fetch": "._fetches",
            "Group": "._groups",
            "History": "._kind",
            "HistoryUnavailable": "._kind",
            "MAX_HELD_POINTS": "._range",
            "PROMETHEUS": "._prometheus_kind",
            "RangeSeries": "._range",
            "TickReads": "._read_errors",
            "build_groups": "._groups",
            "check_expressions": "._first_read",
            "evaluation_count": "._range",
            "evaluation_times": "._range",
            "fetch_timeout": "._fetches",
            "first_reads": "._first_read",
            "kind_of": "._kinds",
            "query_range": "._range",
            "samples_at": "._range",
        },
    )
