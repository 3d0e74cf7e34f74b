"""Which kind of source reads each type of ``RuleSource``: the one place kinds are registered.

Adding a kind of source (a VictoriaMetrics or an OTLP endpoint, say) takes its frozen type
in ``_config/_types.py`` (a member of ``RuleSource``, built by ``_config/_rule_builder.py``
from the rule's keys), its module in ``_sources`` (a ``SourceKind``: how its rules are
planned into fetches, fetched, described and read for a backtest, as ``_prometheus_kind``
and ``_scrape_kind``), and its case here; ``mypy --strict`` fails on this ``match`` until
the case is added. Types of one ``kind`` name share groups, so they belong to one kind.
"""

from __future__ import annotations

from typing import assert_never

from .._config import PrometheusQuery, PrometheusSelector, RuleSource, ScrapePage
from ._kind import SourceKind
from ._prometheus_kind import PROMETHEUS


def kind_of(source: RuleSource) -> SourceKind:
    match source:
        case PrometheusQuery() | PrometheusSelector():
            return PROMETHEUS
        case ScrapePage():
            from ._scrape_kind import SCRAPE  # the scrape source's code only for scrape pages

            return SCRAPE
        case _:
            assert_never(source)
