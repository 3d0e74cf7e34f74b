"""The scrape source kind: selector rules read from an application's metrics page
(``SCRAPE_URL``), without Prometheus.

A group is one page at one interval: it is fetched once a tick, and each rule takes the
series its selector matches. A backtest cannot fetch a page's past, so it reads it from a
Prometheus that scrapes the page (``--prometheus``): the series Prometheus took from that
page, with the labels the page gave them.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from .._config import MAX_RESPONSE_BYTES, RuleConfig, RuleSource, ScrapePage
from .._core import FetchError, Sample, format_duration, labels_of
from ._exposition import ExpositionError
from ._fetches import Fetch, Fetched
from ._kind import GroupPlan, History, HistoryUnavailable, PlanOptions
from ._range import RangeSeries, query_range, scrape_target_labels
from ._scrape import read_page

TARGET_LABELS = ("job", "instance")
"""What Prometheus adds to every series it scrapes; a page's own label of the same name
is kept by Prometheus as ``exported_<name>``."""


class ScrapeKind:
    """Plans, fetches and replays the rules whose source is a ``ScrapePage``."""

    def plan(
        self, where: str, interval: float, rules: list[RuleConfig], options: PlanOptions
    ) -> GroupPlan:
        fetches = [scrape_fetch(where, interval, rules, options.max_response_bytes)]
        return GroupPlan(fetches, f"raise its polling_interval (now {format_duration(interval)})")

    def history(self, source: RuleSource, prometheus: str | None) -> History:
        assert isinstance(source, ScrapePage)
        url, promql = source.url, source.expression
        if prometheus is None:
            return History(
                f"{promql} on {url}",
                None,
                skipped=f"reads {url} directly: give --prometheus URL, a Prometheus that "
                "scrapes that page, to backtest it from there",
            )

        async def read(
            client: httpx.AsyncClient,
            times: list[float],
            step: float,
            timeout: float,
            max_bytes: int,
        ) -> list[RangeSeries]:
            target = await scrape_target_labels(client, prometheus, url, timeout)
            if target is None:
                raise HistoryUnavailable(
                    f"the Prometheus at {prometheus} does not scrape {url} "
                    "(not among its active targets)"
                )
            series = await query_range(client, prometheus, promql, times, step, timeout, max_bytes)
            return [_as_on_the_page(one, target) for one in series if _from(one, target)]

        return History(f"{promql} at {prometheus}", read)


SCRAPE = ScrapeKind()


def scrape_fetch(
    url: str, interval: float, rules: list[RuleConfig], max_bytes: int = MAX_RESPONSE_BYTES
) -> Fetch:
    """A metrics page read directly; each rule gets the series its selector matches."""
    selectors = [(rule.name, _page_of(rule).selector) for rule in rules]
    names = sorted({selector.metric_name for _, selector in selectors})

    async def perform(client: httpx.AsyncClient, timeout: float) -> Fetched:
        try:
            found = await read_page(client, url, timeout, names, max_bytes)
        except ExpositionError as exc:
            raise FetchError(f"unparsable page: {exc} (GET {url})") from None
        out = {}
        for name, selector in selectors:
            out[name] = [
                Sample(labels_of(labels), value)
                for labels, value in found.get(selector.metric_name, ())
                if selector.matches(labels)
            ]
        return Fetched(out)

    return Fetch(f"scrape {url}", interval, perform, rules)


def _page_of(rule: RuleConfig) -> ScrapePage:
    source = rule.source
    assert isinstance(source, ScrapePage), "only the rules of a page are scraped"
    return source


def _from(series: RangeSeries, target: dict[str, str]) -> bool:
    """Whether Prometheus scraped ``series`` from the target: it has the target's
    ``instance``, or none (a page that sets an empty one, kept by ``honor_labels: true``,
    as a Pushgateway's)."""
    return series.labels.get("instance", target.get("instance")) == target.get("instance")


def _as_on_the_page(series: RangeSeries, target: dict[str, str]) -> RangeSeries:
    """A scraped series with the labels the page gave it: without what the target added
    (its ``job`` and ``instance``), and a page's own label that Prometheus renamed
    ``exported_x`` (``honor_labels: false``) named ``x`` again."""
    labels = {
        k: v for k, v in series.labels.items() if not (k in TARGET_LABELS and target.get(k) == v)
    }
    for name in TARGET_LABELS:
        exported = labels.pop(f"exported_{name}", None)
        if exported is not None:
            labels[name] = exported
    return replace(series, labels=labels)
