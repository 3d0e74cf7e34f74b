"""``metric-reader backtest``: each rule replayed over its history in Prometheus.

A rule's read becomes a ``query_range`` over the window (its selector, its ``QUERY``, or
its alert's expression), at the rule's polling interval or ``--step``; the replay then runs
the service's own steps over what each step returned. A rule that reads a ``/metrics``
page directly is read from a Prometheus that scrapes the page (``--prometheus``), or
skipped with the reason. How a rule's history is read is its source kind's answer
(``_sources._kinds``).

The rules backtested together decide as the service's governor (``_engine._governor``),
configured from the settings, decides: a storm, a mute window (the replayed times are
wall-clock times), shadow mode and the budgets hold calls back as in the service. When a
budget is shared by rules (``[limits]``, a plugin's), the rules share one governor and are
replayed in step, in time order, once every history is read (so those histories are held
together until then); else each rule is replayed as soon as its history is read. A replay
of the past has no silences and no pause, and its calls succeed, so no breaker opens.

What a backtest holds is bounded: at most ``MAX_EVALUATIONS`` evaluations a rule (refused
before anything is read) and ``MAX_HELD_POINTS`` points of a rule's history (a rule whose
answers hold more is skipped, saying so); the reads are replayed one step at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
import httpx

from .._config import PrometheusQuery, Route, RuleConfig, ScrapePage, Settings, parse_moment
from .._core import ConfigError, FetchError, Sample, format_duration
from .._engine import Governor, Observation, Replay, Replayer, replay
from .._http import make_client
from .._sources import (
    History,
    HistoryUnavailable,
    RangeSeries,
    evaluation_count,
    evaluation_times,
    kind_of,
    samples_at,
)

READ_TIMEOUT = 60.0
"""Seconds for one ``query_range`` request: a week of a busy rule is a large answer."""
MAX_EVALUATIONS = 1_000_000
"""Evaluations of one rule a backtest makes at most: a year at 30 s, a week at 1 s. Each
costs memory for as long as the report is made (its times, its reads, the states of the
rule's series at it), and 365 days at 1 s ran out of it."""
SHORTEST_STEP = 0.001
"""``--step`` below 1ms is refused, as every duration of the configuration is."""


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float


@dataclass(slots=True)
class RuleBacktest:
    config: RuleConfig
    step: float
    expression: str
    """The query sent, and where."""
    replayed: Replay | None = None
    skipped: str | None = None
    """Why the rule was not backtested (set when ``replayed`` is None)."""
    unread: bool = False
    """Skipped because its history could not be read: Prometheus down or refusing the
    query, or the ``--prometheus`` given does not scrape the rule's page. This, not the
    text of ``skipped``, makes ``backtest`` exit 1; a rule skipped by design (no threshold,
    no ``--prometheus`` for a page, a window without a step) does not."""
    history: History | None = None
    """How its history is read (its source kind's answer)."""
    answer: list[RangeSeries] = field(default_factory=list)
    """What its query returned, until it is replayed (with the other rules')."""
    times: list[float] = field(default_factory=list)
    """Its evaluation times."""
    verify: dict[str, list[RangeSeries]] = field(default_factory=dict)
    """What each ``verify_query`` it may need returned over the window, by its text."""


def parse_time(text: str, now: float, flag: str) -> float:
    """``7d``, ``2h``: that long before ``now``; or an RFC 3339 time. Seconds since the
    epoch; ``ConfigError`` naming the flag otherwise."""
    try:
        return parse_moment(text, now)
    except ValueError as exc:
        raise ConfigError(f"{flag} {exc}") from None


def window(start: str, end: str | None, now: float) -> Window:
    first = parse_time(start, now, "--from")
    last = now if end is None else parse_time(end, now, "--to")
    if last <= first:
        raise ConfigError(f"--from {start!r} is not before --to {end or 'now'!r}")
    return Window(first, last)


def check_evaluations(rules: Sequence[RuleConfig], span: Window, step: float | None) -> None:
    """``ConfigError`` (one line) when a rule would be evaluated more than
    ``MAX_EVALUATIONS`` times over ``span``: said before anything is read."""
    counts = [
        (evaluation_count(span.start, span.end, step or rule.polling_interval), rule)
        for rule in rules
    ]
    over = [(count, rule) for count, rule in counts if count > MAX_EVALUATIONS]
    if not over:
        return
    count, rule = max(over, key=lambda item: item[0])
    others = f" (and {len(over) - 1} more rules)" if len(over) > 1 else ""
    raise ConfigError(
        f"the window takes {count:,} evaluations of rule {rule.name!r}, one every "
        f"{format_duration(step or rule.polling_interval)}{others}; a backtest makes at most "
        f"{MAX_EVALUATIONS:,} a rule: give a larger --step or a shorter window"
    )


def select_rules(settings: Settings, names: Sequence[str]) -> list[RuleConfig]:
    """The rules named (all without names); ``ConfigError`` for a name no rule has."""
    if not names:
        return list(settings.rules)
    by_name = {rule.name: rule for rule in settings.rules}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise ConfigError(f"--rule {unknown[0]!r}: no rule of that name; the rules: {known}")
    return [by_name[name] for name in dict.fromkeys(names)]


async def backtest(
    settings: Settings,
    rules: Sequence[RuleConfig],
    span: Window,
    step: float | None = None,
    prometheus: str | None = None,
) -> list[RuleBacktest]:
    """Every rule of ``rules`` replayed over ``span``; a rule that cannot be read is
    skipped with the reason, the others go on. The histories are read concurrently, then
    the rules read are replayed together (``replay_histories``)."""
    results = [_plan(rule, step, prometheus) for rule in rules]
    slots = anyio.CapacityLimiter(max(1, settings.max_concurrent_queries))
    together = shares_budgets(settings)
    async with make_client(settings.client) as client, anyio.create_task_group() as group:
        for result in results:
            if result.skipped is None:
                group.start_soon(_run, client, settings, result, span, slots, together)
    read = [result for result in results if result.skipped is None and result.replayed is None]
    replays = replay_histories(
        settings,
        [(result.config, result.answer, result.times) for result in read],
        [result.verify for result in read],
    )
    for result, replayed in zip(read, replays, strict=True):
        result.replayed, result.answer, result.verify = replayed, [], {}
    return results


def verify_queries(rule: RuleConfig, routes: Sequence[Route]) -> list[str]:
    """The ``verify_query`` texts a rule's fixes may be judged by: its own, and for an
    alert of a rule file those of the routes (which route takes an alert is known only
    at each evaluation)."""
    queries = [rule.verify.query] if rule.verify.query else []
    if rule.alert is not None:
        queries += [route.verify.query for route in routes if route.verify.query]
    return list(dict.fromkeys(queries))


def verify_history(rule: RuleConfig, query: str) -> History:
    """How ``query`` is read over a window: as the rule's own expression, on its endpoint
    (a rule with a ``verify_query`` reads a Prometheus: a scrape cannot, see the loader)."""
    source = rule.source
    assert not isinstance(source, ScrapePage), "refused at load"
    query_source = PrometheusQuery(source.endpoint, query, source.endpoint_defaulted)
    return kind_of(query_source).history(query_source, None)


def _plan(rule: RuleConfig, step: float | None, prometheus: str | None) -> RuleBacktest:
    every = step or rule.polling_interval
    # An alert's expr is its rule's query (its source's expression), as for the service.
    history = kind_of(rule.source).history(rule.source, prometheus)
    result = RuleBacktest(
        rule, every, history.description, skipped=history.skipped, history=history
    )
    if result.skipped is None and rule.base is None:
        result.skipped = "no threshold: the rule only logs what it reads, it never acts"
    return result


async def _run(
    client: httpx.AsyncClient,
    settings: Settings,
    result: RuleBacktest,
    span: Window,
    slots: anyio.CapacityLimiter,
    together: bool,
) -> None:
    times = evaluation_times(span.start, span.end, result.step)
    if not times:
        result.skipped = f"the window holds no step of {result.step:g}s"
        return
    assert result.history is not None and result.history.read is not None
    try:
        async with slots:
            series = await result.history.read(
                client, times, result.step, READ_TIMEOUT, settings.max_response_bytes
            )
    except HistoryUnavailable as exc:
        result.skipped, result.unread = str(exc), True
        return
    except FetchError as exc:
        result.skipped, result.unread = f"could not read its history: {exc}", True
        return
    for query in verify_queries(result.config, settings.routes):
        history = verify_history(result.config, query)
        assert history.read is not None
        try:
            async with slots:
                result.verify[query] = await history.read(
                    client, times, result.step, READ_TIMEOUT, settings.max_response_bytes
                )
        except (HistoryUnavailable, FetchError) as exc:
            result.skipped = f"could not read its verify_query {query}: {exc}"
            result.unread = True
            return
    if together:
        result.answer, result.times = series, times  # replayed with the others
    else:
        [result.replayed] = replay_histories(
            settings, [(result.config, series, times)], [result.verify]
        )


def shares_budgets(settings: Settings) -> bool:
    """Whether a budget counts the calls of several rules (``[limits]``, a plugin's): then
    the rules are replayed in step, sharing one governor."""
    return settings.limits is not None or any(
        guard.budget is not None for guard in settings.plugin_guards.values()
    )


def replay_history(
    config: RuleConfig,
    series: list[RangeSeries],
    times: list[float],
    routes: tuple[Route, ...] = (),
) -> Replay:
    """``config``'s rule replayed over what its query returned at each of ``times``: each
    step is a read holding exactly the series the answer has a point for at that step.
    Prometheus has applied its lookback already, so a series absent from a step is absent
    from that read, and the rule does what its missing-value behaviour says (a rule file's
    alert ends, as in the service), not what it did at the last step it was present."""
    observations = (
        Observation(at, samples)
        for at, samples in zip(times, samples_at(series, times), strict=True)
    )
    return replay(config, observations, routes)


RuleHistory = tuple[RuleConfig, list[RangeSeries], list[float]]
"""A rule, what its query returned and its evaluation times."""


def replay_histories(
    settings: Settings,
    histories: Sequence[RuleHistory],
    verify: Sequence[Mapping[str, list[RangeSeries]]] = (),
) -> list[Replay]:
    """Each rule replayed over what its query returned (as ``replay_history``), the rules
    in step with each other (their evaluations in time order; at one time, in the order
    given) and sharing one governor configured from ``settings``, as the service's: its
    budgets count the calls of every rule. ``verify``: for each rule (by position), what
    each of its ``verify_query`` texts returned over the window: each evaluation is given
    their answers at its time, as the service reads them at its ticks."""
    governor = Governor(quiet=True)
    replayers = [Replayer(config, settings.routes, governor=governor) for config, _, _ in histories]
    governor.configure(
        settings.limits,
        settings.plugin_guards,
        [replayer.rule for replayer in replayers],
        settings.time_intervals,
        settings.inhibit_rules,
    )
    streams = [
        _reads(index, series, times, verify[index] if index < len(verify) else {})
        for index, (_, series, times) in enumerate(histories)
    ]
    for at, index, samples, answers in heapq.merge(*streams, key=lambda read: read[:2]):
        replayers[index].step(Observation(at, samples, answers))
    return [replayer.result for replayer in replayers]


def _reads(
    index: int,
    series: list[RangeSeries],
    times: list[float],
    verify: Mapping[str, list[RangeSeries]],
) -> Iterator[tuple[float, int, list[Sample], dict[str, list[Sample] | None]]]:
    queries = [(query, samples_at(answer, times)) for query, answer in verify.items()]
    for at, samples in zip(times, samples_at(series, times), strict=True):
        answers: dict[str, list[Sample] | None] = {q: next(at_t) for q, at_t in queries}
        yield at, index, samples, answers


def utc(seconds: float) -> str:
    """``2026-11-20T08:00:15Z``: a time in reports (milliseconds only when there are)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.isoformat(timespec="milliseconds" if seconds % 1 else "seconds")
    return text.replace("+00:00", "Z")
