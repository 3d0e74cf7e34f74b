"""Peers: metric-reader, vmalert and Prometheus' own rule manager on the same rules, one
after another, against one real Prometheus in the same run.

Setup: Debian's ``prometheus`` on a loopback port scrapes, every second, a page (served by a
separate process) of 1,000 gauges with 2 series each; 1 % of the gauges are above 50 on
both series. Every contender watches every gauge with ``> 50 for 5s``. For scenarios (d)
and (e) Prometheus also scrapes, every 10 s, a second page of 10,000 such gauges (added with a
configuration reload before the scenario starts). Prometheus notifies a local alert sink
(an Alertmanager stand-in), and so does vmalert.

Scenarios (rules named ``r0``, ``r1``, ...; rule ``ri`` reads gauge ``i``):

- (a) 1,000 selector rules at 1 s: metric-reader ``metric_name = "bench_gauge_i"``,
  ``threshold = ">50"``; the peers ``expr: bench_gauge_i > 50``.
- (b) 1,000 distinct QUERY rules at 1 s: metric-reader
  ``query = 'max without (shard) (bench_gauge_i)'``; the peers the same ``> 50``.
- (c) 1 selector rule at 50 ms (a breaching gauge): CPU per poll and RSS.
- (d) 10,000 selector rules at 10 s on the 10,000-gauge page (metric-reader only unless
  ``PEERS_FULL=1``, which adds vmalert and the rule manager and about two minutes).
- (e) 10,000 distinct QUERY rules at 10 s on the 10,000-gauge page, ``query =
  'max without (shard) (bench_big_i)'`` (metric-reader and vmalert; the rule manager only
  with ``PEERS_FULL=1``).

For each contender, in this order: Prometheus' idle CPU is sampled for ``BASELINE`` seconds
(its utime + stime from ``/proc/PID/stat`` over wall time); the contender is started; once
one of its evaluation counters has moved, a warm-up (``WARM_UP``; 1 s at 10 s, where finding
the cycle below takes one or two cycles) passes. Then the window is placed on cycle
boundaries (``whole_cycles``, every scenario but (c)): the counters are read every few tens
of ms over one cycle to find the still time between two cycles (``find_gap``: from the
reading that shows the cycle settled, see ``_peer_contenders``, to one interval after the
last reading before it began), and the window's two readings are taken in the middle of
that still time, ``round(window / interval)`` intervals apart, so the window holds exactly
that many whole cycles. Each reading must show the contender settled; if it does not (a
cycle as long as the interval leaves no still time), the window is read at any phase and
said so. (c), at 50 ms, is read at any phase: reading the counters every few ms would cost
the contender more than its polls, and only its CPU per poll and RSS are judged. Over the
window:

- CPU (cores): the contender's utime + stime delta over the window's wall time (10 ms clock
  ticks). For the rule manager it is Prometheus' CPU minus its idle baseline.
- Prometheus extra CPU: Prometheus' CPU over the window minus its idle baseline (for the
  rule manager this *is* its CPU, so the column says so).
- RSS: the contender's ``VmRSS`` at the end of the window (the rule manager: Prometheus'
  growth over its idle RSS).
- Evaluations: the counter delta over the window, per second of its wall time and as a
  count against the scheduled count (whole cycles x rules). metric-reader:
  its own ``metric_reader_evaluations_total`` when the build has it, otherwise Prometheus'
  ``prometheus_http_requests_total{handler="/api/v1/query"}`` (marked "fallback"), cross-
  checked against the other and its successful polls (``metric_reader_polls_total`` less
  ``metric_reader_poll_errors_total``). With batched selector reads (``BATCH_SELECTORS``,
  the default) and expression reads (``BATCH_EXPRESSIONS``, the default) a few queries serve a
  whole group, so those two count reads, not rules: they equal the evaluations only with
  batching off. vmalert: Prometheus' query
  counter, cross-checked against ``vmalert_execution_total`` and ``vmalert_iteration_total``
  x rules. Rule manager: ``prometheus_rule_evaluations_total``, cross-checked against
  ``prometheus_rule_group_iterations_total`` x rules. Missed: the contender's own missed
  counter delta when it has one: ``metric_reader_evaluations_missed_total`` (evaluations),
  ``vmalert_iteration_missed_total`` (skips: one a late tick, however many ticks it
  skipped), ``prometheus_rule_group_iterations_missed_total`` x rules (evaluations).
- "Every evaluation done": at most ``SHORT_TARGET`` (1 %) of the scheduled evaluations
  short, by the count over whole cycles and by the missed counter (the larger of the two
  is the figure). Read at any phase a window may hold one cycle less than its wall time, so there
  the shortfall reported is at most that: one cycle of the window is added to it.
- Fired: each breaching series (rule, shard) must fire within 5 s + one interval of the
  breach's start. metric-reader: the recording plugin's wall time minus
  ``event.breach_started``; peers: the sink's first receipt minus the alert's ``activeAt``.
  vmalert stamps every rule of a group iteration with the iteration's start, so when an
  iteration of 1,000 queries takes most of a second, its later rules show that as delay.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._page_server import serve_page
from ._peer_contenders import (
    CONTENDERS,
    CYCLES,
    FOR_SECONDS,
    PROMETHEUS_QUERIES,
    Running,
    Scenario,
)
from ._peer_stack import BIG_PREFIX, SMALL_PREFIX, Prometheus, alert_sink, page, prometheus
from ._proc import cpu_seconds, rss_kb, wait_until

BASELINE = 3.0
SETTLE = 0.5
WARM_UP = 3.0
SHORT_TARGET = 1.0
"""% of the scheduled evaluations that may be short: "every evaluation" is >= 99 % done."""
ALL = ("metric-reader", "vmalert", "rule manager")
FULL = os.environ.get("PEERS_FULL") == "1"

SCENARIOS = (
    Scenario("a", 1_000, 1.0, "selector", SMALL_PREFIX, window=15.0, contenders=ALL),
    Scenario("b", 1_000, 1.0, "query", SMALL_PREFIX, window=15.0, contenders=ALL),
    # 600 polls in 30 s: /proc counts CPU in 10 ms ticks. Cycles of 50 ms are not aligned:
    # reading the counters that often would cost the contender more than its polls.
    Scenario(
        "c", 1, 0.05, "selector", SMALL_PREFIX, window=30.0, contenders=ALL, whole_cycles=False
    ),
    Scenario(
        "d",
        10_000,
        10.0,
        "selector",
        BIG_PREFIX,
        window=40.0,
        contenders=ALL if FULL else ("metric-reader",),
    ),
    Scenario(
        "e",
        10_000,
        10.0,
        "query",
        BIG_PREFIX,
        window=40.0,
        contenders=ALL if FULL else ("metric-reader", "vmalert"),
    ),
)


@dataclass(frozen=True)
class Fired:
    """Breaching series that fired within for + one interval, that fired at all, that there
    are; series that fired without breaching; the longest breach-to-fire delay."""

    in_time: int
    fired: int
    breaching: int
    false: int
    worst: float | None

    def __str__(self) -> str:
        worst = f", worst {self.worst:.1f} s" if self.worst is not None else ""
        false = f", {self.false} false" if self.false else ""
        late = self.fired - self.in_time
        return (
            f"{self.in_time}/{self.breaching} in time"
            + (f", {late} late" if late else "")
            + (f", {self.breaching - self.fired} never" if self.fired < self.breaching else "")
            + worst
            + false
        )


@dataclass
class Measured:
    contender: str
    scenario: Scenario
    prometheus_idle: float
    cpu: float
    prometheus_extra: float | None
    rss_mb: float
    evaluations: float
    source: str
    cross: dict[str, float]
    missed: float | None
    done: float
    """Evaluations counted over the window."""
    cycles: int | None
    """Whole cycles the window holds; None when it could not be read at cycle boundaries."""
    counted_cycles: float | None
    """The cycles the contender counted as started over the window (cross-check)."""
    window: float
    fires: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def schedule(self) -> float:
        return self.scenario.rules / self.scenario.interval

    @property
    def scheduled(self) -> float:
        """Evaluations scheduled in the window: whole cycles x rules, else its wall time x
        the schedule."""
        if self.cycles is not None:
            return float(self.cycles * self.scenario.rules)
        return self.window * self.schedule

    @property
    def total_cpu(self) -> float:
        return self.cpu + (self.prometheus_extra or 0.0)

    @property
    def cpu_per_evaluation(self) -> float:
        return self.cpu / self.evaluations if self.evaluations else float("inf")

    @property
    def short_percent(self) -> float:
        return max(0.0, 1 - self.done / self.scheduled) * 100

    @property
    def missed_percent(self) -> float:
        """The contender's own missed evaluations over the window, of those scheduled (vmalert
        counts a skip, not the ticks it skipped: a lower bound)."""
        missed = (self.missed or 0.0) * (self.scenario.rules if self.contender == "vmalert" else 1)
        return missed / self.scheduled * 100

    @property
    def all_done(self) -> bool:
        return self.cycles is not None and max(self.short_percent, self.missed_percent) <= (
            SHORT_TARGET
        )

    def fired(self) -> Fired:
        limit = FOR_SECONDS + self.scenario.interval
        expected = self.scenario.breaching_series()
        delays = [self.fires[key] for key in expected if key in self.fires]
        return Fired(
            in_time=sum(1 for delay in delays if delay <= limit),
            fired=len(delays),
            breaching=len(expected),
            false=sum(1 for key in self.fires if key not in expected),
            worst=max(delays) if delays else None,
        )

    @property
    def uses_fallback(self) -> bool:
        return self.contender == "metric-reader" and self.source == PROMETHEUS_QUERIES


def _counter_deltas(
    before: dict[str, float | None], after: dict[str, float | None]
) -> dict[str, float]:
    return {
        name: (after[name] or 0.0) - (before[name] or 0.0)
        for name in after
        if after[name] is not None
    }


def _began(running: Running, first: dict[str, float | None]) -> bool:
    now = running.counters()
    return any((now[n] or 0) > (first[n] or 0) for n in running.evaluations)


def _figure(running: Running, counters: dict[str, float | None]) -> float:
    present = [counters[n] for n in running.evaluations if counters.get(n) is not None]
    return (present[0] or 0.0) if present else 0.0


def find_gap(running: Running, interval: float) -> float | None:
    """A moment (monotonic) in the middle of the contender's still time between two cycles,
    None when it shows none within three intervals (a cycle as long as the interval).

    The counters are read over one cycle: ``p`` the last reading before the evaluations
    moved, ``e`` the first reading that shows the cycle settled again. The next cycle starts
    no sooner than its first answer, after ``p`` + interval, so nothing is counted between
    ``e`` and ``p`` + interval: its middle is the moment."""
    step = min(max(interval / 50, 0.01), 0.05)
    deadline = time.monotonic() + 3 * interval + 5
    phase = "settle"
    last = running.counters()
    last_at = time.monotonic()
    moved_after = 0.0
    while time.monotonic() < deadline:
        time.sleep(step)
        now = running.counters()
        at = time.monotonic()
        settled = running.settled(now)
        if phase == "settle" and settled:
            phase = "move"
        elif phase == "move" and _figure(running, now) != _figure(running, last):
            moved_after, phase = last_at, "finish"
            if settled:  # the whole cycle fell between two readings
                return (at + moved_after + interval) / 2
        elif phase == "finish" and settled:
            return (at + moved_after + interval) / 2 if at < moved_after + interval else None
        last, last_at = now, at
    return None


@dataclass
class Reading:
    at: float
    cpu: float
    prometheus: float
    counters: dict[str, float | None]
    settled: bool


def _read(running: Running, prom: Prometheus) -> Reading:
    at, cpu, prom_cpu = time.monotonic(), cpu_seconds(running.pid), cpu_seconds(prom.pid)
    counters = running.counters()
    return Reading(at, cpu, prom_cpu, counters, running.settled(counters))


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def measure(scenario: Scenario, prom: Prometheus, contender: str, tmp: Path) -> Measured:
    time.sleep(SETTLE)
    idle_cpu, started = cpu_seconds(prom.pid), time.monotonic()
    time.sleep(BASELINE)
    idle = (cpu_seconds(prom.pid) - idle_cpu) / (time.monotonic() - started)
    idle_rss = rss_kb(prom.pid)
    prom.sink.clear()
    label = f"{scenario.key}-{contender.replace(' ', '-')}-"
    workdir = Path(tempfile.mkdtemp(prefix=label, dir=tmp))
    launched = time.monotonic()
    with CONTENDERS[contender](scenario, prom, workdir) as running:
        first = running.counters()
        wait_until(lambda: _began(running, first), 180, f"{contender}'s first evaluations")
        print(
            f"    first evaluations {time.monotonic() - launched:.1f} s after the start",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(WARM_UP if scenario.interval < 5 else 1.0)
        cycles = round(scenario.window / scenario.interval)
        gap = find_gap(running, scenario.interval) if scenario.whole_cycles else None
        if gap is None:
            start = _read(running, prom)
            _sleep_until(start.at + scenario.window)
        else:
            gap += math.ceil((time.monotonic() + 0.1 - gap) / scenario.interval) * scenario.interval
            _sleep_until(gap)
            start = _read(running, prom)
            _sleep_until(gap + cycles * scenario.interval)
        end = _read(running, prom)
        rss = rss_kb(running.pid)
        fires = running.fires()
    took = end.at - start.at
    deltas = _counter_deltas(start.counters, end.counters)
    present = [name for name in running.evaluations if start.counters.get(name) is not None]
    source = present[0] if present else running.evaluations[0]
    extra = (end.prometheus - start.prometheus) / took - idle
    whole = gap is not None and start.settled and end.settled
    return Measured(
        contender=contender,
        scenario=scenario,
        prometheus_idle=idle,
        cpu=extra if running.is_prometheus else (end.cpu - start.cpu) / took,
        prometheus_extra=None if running.is_prometheus else extra,
        rss_mb=(rss - idle_rss if running.is_prometheus else rss) / 1024,
        evaluations=deltas.get(source, 0.0) / took,
        source=source,
        cross={n: deltas[n] / took for n in present[1:] if n in deltas},
        missed=deltas.get("missed"),
        done=deltas.get(source, 0.0),
        cycles=cycles if whole else None,
        counted_cycles=deltas.get(CYCLES),
        window=took,
        fires=fires,
    )


def run_scenarios() -> list[Measured]:
    results: list[Measured] = []
    small, big = page(SMALL_PREFIX, 1_000), page(BIG_PREFIX, 10_000)
    with (
        tempfile.TemporaryDirectory() as tmp,
        serve_page(small) as small_url,
        serve_page(big) as big_url,
        alert_sink() as sink,
        prometheus(Path(tmp), small_url, big_url, sink) as prom,
    ):
        wait_until(lambda: prom.series(SMALL_PREFIX) == 2_000, 60, "the 1,000-gauge page")
        for scenario in SCENARIOS:
            if scenario.prefix == BIG_PREFIX:
                prom.reload(big=True)
                wait_until(lambda: prom.series(BIG_PREFIX) == 20_000, 60, "the big page")
            for contender in scenario.contenders:
                print(f"  {scenario.title}: {contender} ...", file=sys.stderr, flush=True)
                results.append(measure(scenario, prom, contender, Path(tmp)))
    return results


# ------------------------------------------------------------------------------------------
# Reporting


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}f}"


def _fired_cell(m: Measured) -> str:
    fired = m.fired()
    verdict = "yes" if fired.in_time == fired.breaching and not fired.false else "**no**"
    return f"{verdict}: {fired}"


def _cycles(m: Measured) -> str:
    if m.cycles is None:
        return f"in {m.window:.1f} s, not on cycle boundaries"
    return f"in {m.cycles} whole cycles"


def _evaluations_cell(m: Measured) -> str:
    fallback = " (fallback: no own counter)" if m.uses_fallback else ""
    done = "" if m.all_done else " **short**"
    return (
        f"{_fmt(m.evaluations)} of {_fmt(m.schedule)}; {m.done:,.0f} of {m.scheduled:,.0f} "
        f"{_cycles(m)}{done} [{m.source}{fallback}]"
    )


def markdown(results: list[Measured]) -> str:
    out = [
        "## Peers",
        "",
        "metric-reader, vmalert and Prometheus' rule manager on the same rules, one after "
        "another against one Prometheus scraping 1,000 gauges (2 series each, 1 % above the "
        "threshold) every second, and for (d) and (e) 10,000 more every 10 s; every rule is "
        "`> 50 for 5s`. Evaluations: per second over the window, then the count over the "
        "window against the scheduled (whole cycles x rules). How each column is measured: "
        "the docstring of `benchmarks/peers.py`. CPU in cores (1.0 = one core busy).",
    ]
    for scenario in SCENARIOS:
        rows = [m for m in results if m.scenario is scenario]
        if not rows:
            continue
        out += [
            "",
            f"### {scenario.title}",
            "",
            "| contender | CPU | Prometheus extra CPU | sum | Prometheus idle | RSS MB "
            "| evaluations/s | cross-check /s | missed | breaching fired |",
            "|---|---:|---:|---:|---:|---:|---|---|---:|---|",
        ]
        for m in rows:
            extra = "(is Prometheus)" if m.prometheus_extra is None else _fmt(m.prometheus_extra)
            rss = f"{m.rss_mb:+.1f}" if m.prometheus_extra is None else f"{m.rss_mb:.1f}"
            cross = "; ".join(f"{name}: {_fmt(v)}" for name, v in m.cross.items()) or "-"
            out.append(
                f"| {m.contender} | {_fmt(m.cpu)} | {extra} | {_fmt(m.total_cpu)} "
                f"| {_fmt(m.prometheus_idle)} | {rss} | {_evaluations_cell(m)} | {cross} "
                f"| {_fmt(m.missed, 0)} | {_fired_cell(m)} |"
            )
    return "\n".join(out) + "\n"


def _find(results: list[Measured], key: str, contender: str) -> Measured | None:
    for m in results:
        if m.scenario.key == key and m.contender == contender:
            return m
    return None


def _schedule_row(m: Measured) -> dict[str, object]:
    missed = f", {m.missed:.0f} counted missed" if m.missed else ""
    counted = f", {m.counted_cycles:g} counted by it" if m.counted_cycles is not None else ""
    short = max(m.short_percent, m.missed_percent)
    if m.cycles is None:  # a window of any phase: it may hold one cycle less
        short += m.scenario.interval / m.window * 100
    return {
        "name": f"peers {m.scenario.title}: metric-reader evaluations short of schedule",
        "value": short,
        "unit": "%",
        "target": SHORT_TARGET,
        "note": f"{m.done:,.0f} of {m.scheduled:,.0f} {_cycles(m)}{counted} "
        f"[{m.source}{', fallback: no own counter' if m.uses_fallback else ''}]{missed}"
        + ("" if m.cycles is not None else "; at most: one cycle added"),
    }


def _fired_row(m: Measured) -> dict[str, object]:
    fired = m.fired()
    return {
        "name": f"peers {m.scenario.title}: metric-reader breaching series not fired within "
        f"{FOR_SECONDS:g} s + {m.scenario.interval:g} s",
        "value": float(fired.breaching - fired.in_time + fired.false),
        "unit": "series",
        "target": 0.0,
        "note": str(fired),
    }


def _sum_ratio_row(ours: Measured, theirs: Measured, target: float) -> dict[str, object]:
    return {
        "name": f"peers {ours.scenario.title}: metric-reader (CPU + Prometheus extra) / vmalert's",
        "value": ours.total_cpu / theirs.total_cpu,
        "unit": "x",
        "target": target,
        "note": f"{ours.cpu:.3f} + {ours.prometheus_extra or 0:.3f} vs "
        f"{theirs.cpu:.3f} + {theirs.prometheus_extra or 0:.3f} cores",
    }


def rows(results: list[Measured]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for m in results:
        out.append(
            {
                "name": f"peers {m.scenario.title}: {m.contender} CPU + Prometheus extra",
                "value": m.total_cpu,
                "unit": "cores",
                "note": f"{m.evaluations:,.0f} evaluations/s, "
                f"{m.cpu_per_evaluation * 1e6:,.0f} us CPU each, RSS {m.rss_mb:.1f} MB",
            }
        )
    ours_a, theirs_a = _find(results, "a", "metric-reader"), _find(results, "a", "vmalert")
    if ours_a:
        out += [_schedule_row(ours_a), _fired_row(ours_a)]
    if ours_a and theirs_a:
        out.append(_sum_ratio_row(ours_a, theirs_a, 0.1))
    ours_b, theirs_b = _find(results, "b", "metric-reader"), _find(results, "b", "vmalert")
    if ours_b:
        out += [_schedule_row(ours_b), _fired_row(ours_b)]
    if ours_b and theirs_b:
        out.append(_per_evaluation_row(ours_b, theirs_b, "evaluation"))
    ours_c, theirs_c = _find(results, "c", "metric-reader"), _find(results, "c", "vmalert")
    if ours_c and theirs_c:
        out.append(_per_evaluation_row(ours_c, theirs_c, "poll"))
    if ours_c:
        out.append(
            {
                "name": f"peers {ours_c.scenario.title}: metric-reader RSS",
                "value": ours_c.rss_mb,
                "unit": "MB",
                "target": 30.0,
            }
        )
    ours_d = _find(results, "d", "metric-reader")
    if ours_d:
        out.append(_schedule_row(ours_d))
        out.append(
            {
                "name": f"peers {ours_d.scenario.title}: metric-reader CPU + Prometheus extra",
                "value": ours_d.total_cpu,
                "unit": "cores",
                "target": 0.5,
                "note": f"{ours_d.cpu:.3f} + {ours_d.prometheus_extra or 0:.3f}",
            }
        )
    ours_e, theirs_e = _find(results, "e", "metric-reader"), _find(results, "e", "vmalert")
    if ours_e:
        out += [_schedule_row(ours_e), _fired_row(ours_e)]
    if ours_e and theirs_e:
        out.append(_sum_ratio_row(ours_e, theirs_e, 1.0))
    return out


def _per_evaluation_row(ours: Measured, theirs: Measured, what: str) -> dict[str, object]:
    return {
        "name": f"peers {ours.scenario.title}: metric-reader CPU per {what} / vmalert's",
        "value": ours.cpu_per_evaluation / theirs.cpu_per_evaluation,
        "unit": "x",
        "target": 1.0,
        "note": f"{ours.cpu_per_evaluation * 1e6:,.0f} vs "
        f"{theirs.cpu_per_evaluation * 1e6:,.0f} us",
    }


@dataclass
class PeerRun:
    rows: list[dict[str, object]]
    markdown: str


def run_all() -> PeerRun:
    results = run_scenarios()
    return PeerRun(rows(results), markdown(results))


def run() -> list[dict[str, object]]:
    return run_all().rows


if __name__ == "__main__":
    from .__main__ import table

    started = time.monotonic()
    peer_run = run_all()
    print(table(peer_run.rows))
    print()
    print(peer_run.markdown)
    print(f"(took {time.monotonic() - started:.0f} s)")
