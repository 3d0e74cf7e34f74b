"""Where values come from: one module per kind of source (``_prometheus_kind``,
``_scrape_kind``; ``_kinds`` says which reads which rule), how rules are planned into
fetches and fetched, the groups they are evaluated in, range reads for backtests, and the
expression checks made at start.

What the other layers use of it is exported here; the modules behind it are private.
"""

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
