"""Which series a status document lists, and the bounds on how many."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

DEFAULT_SERIES = 1000
"""Series listed in one document when the request does not say (``limit``)."""
MAX_SERIES = 10_000
"""The most series one document lists, whatever ``limit`` asks for."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Which series a document lists.

    ``rule``: only that rule. ``offset``: skip that many of each listed rule's series.
    ``limit``: list at most that many series in all (rules in order); ``per_rule``: and at
    most that many of each rule.
    ``by_severity``: firing first, then pending, then ok (the page); otherwise the order
    the series were first seen in (stable from one poll to the next, for paging).
    ``recent``: with each series' recent evaluations, where kept (the page's sparklines).
    """

    rule: str | None = None
    offset: int = 0
    limit: int = DEFAULT_SERIES
    by_severity: bool = False
    per_rule: int | None = None
    recent: bool = False

    def link(self, path: str, rule: str, offset: int) -> str:
        """The relative link to the next page of ``rule``."""
        query = urlencode({"rule": rule, "offset": offset, "limit": self.limit})
        return f"{path}?{query}"


EVERY_RULE = Selection()
"""Every rule, ``DEFAULT_SERIES`` series in all, in the order they were first seen."""
