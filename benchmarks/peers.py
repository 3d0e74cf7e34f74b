"""Peers: metric-reader, vmalert and Prometheus' own rule manager on the same rules, one
after another, against one real Prometheus in the same run.

Setup: Debian's ``prometheus`` on a loopback port scrapes, every second, a page (served by a
separate process) of 1,000 gauges with 2 series each; 1 % of the gauges are above 50 on
both series. Every contender watches every gauge with ``> 50 for 5s``. For scenario (d)
Prometheus also scrapes, every 10 s, a second page of 10,000 such gauges (added with a
configuration reload before the scenario starts). Prometheus notifies a local alert sink
(an Alertmanager stand-in), and so does vmalert.

Scenarios (rules named ``r0``, ``r1``, ...; rule ``ri`` reads gauge ``i``):

- (a) 1,000 selector rules at 1 s: metric-reader ``metric_name = "bench_gauge_i"``,
  ``threshold = ">50"``; the peers ``expr: bench_gauge_i > 50``.
- (b) 1,000 distinct QUERY rules at 1 s: metric-reader
  ``query = 'max without (shard) (bench_gauge_i)'``; the peers the same ``> 50``.
- (c) 1 selector rule at 1 s (a breaching gauge).
- (d) 10,000 selector rules at 10 s on the 10,000-gauge page (metric-reader only unless
  ``PEERS_FULL=1``, which adds vmalert and the rule manager and about two minutes).

For each contender, in this order: Prometheus' idle CPU is sampled for ``BASELINE`` seconds
(its utime + stime from ``/proc/PID/stat`` over wall time); the contender is started; once
one of its evaluation counters has moved, a warm-up (``WARM_UP``, or one interval + 1 s
at 10 s) passes; then over the scenario's window:

- CPU (cores): the contender's utime + stime delta over the window's wall time (10 ms clock
  ticks). For the rule manager it is Prometheus' CPU minus its idle baseline.
- Prometheus extra CPU: Prometheus' CPU over the window minus its idle baseline (for the
  rule manager this *is* its CPU, so the column says so).
- RSS: the contender's ``VmRSS`` at the end of the window (the rule manager: Prometheus'
  growth over its idle RSS).
- Evaluations per second: the counter delta over the window's wall time. metric-reader:
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
  counter delta (``metric_reader_evaluations_missed_total``, ``vmalert_iteration_missed_total``,
  ``prometheus_rule_group_iterations_missed_total``) when it has one.
- "Every evaluation done": evaluations per second at least the schedule (rules / interval)
  less one cycle over the window (a window does not start on a cycle boundary), and nothing
  counted as missed.
- Fired: each breaching series (rule, shard) must fire within 5 s + one interval of the
  breach's start. metric-reader: the recording plugin's wall time minus
  ``event.breach_started``; peers: the sink's first receipt minus the alert's ``activeAt``.
  vmalert stamps every rule of a group iteration with the iteration's start, so when an
  iteration of 1,000 queries takes most of a second, its later rules show that as delay.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ._page_server import serve_page
from ._peer_contenders import CONTENDERS, FOR_SECONDS, PROMETHEUS_QUERIES, Running, Scenario
from ._peer_stack import BIG_PREFIX, SMALL_PREFIX, Prometheus, alert_sink, page, prometheus
from ._proc import cpu_seconds, rss_kb, wait_until

BASELINE = 3.0
SETTLE = 0.5
WARM_UP = 3.0
ALL = ("metric-reader", "vmalert", "rule manager")
FULL = os.environ.get("PEERS_FULL") == "1"

SCENARIOS = (
    Scenario("a", 1_000, 1.0, "selector", SMALL_PREFIX, window=15.0, contenders=ALL),
    Scenario("b", 1_000, 1.0, "query", SMALL_PREFIX, window=15.0, contenders=ALL),
    # 30 s: a poll costs a few ms here, and /proc counts CPU in 10 ms ticks
    Scenario("c", 1, 1.0, "selector", SMALL_PREFIX, window=30.0, contenders=ALL),
    Scenario(
        "d",
        10_000,
        10.0,
        "selector",
        BIG_PREFIX,
        window=40.0,
        contenders=ALL if FULL else ("metric-reader",),
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
    fires: dict[tuple[str, str], float] = field(default_factory=dict)

    @property
    def schedule(self) -> float:
        return self.scenario.rules / self.scenario.interval

    @property
    def total_cpu(self) -> float:
        return self.cpu + (self.prometheus_extra or 0.0)

    @property
    def cpu_per_evaluation(self) -> float:
        return self.cpu / self.evaluations if self.evaluations else float("inf")

    @property
    def short_percent(self) -> float:
        return max(0.0, 1 - self.evaluations / self.schedule) * 100

    @property
    def all_done(self) -> bool:
        tolerance = self.scenario.interval / self.scenario.window * 100
        return self.short_percent <= tolerance and not self.missed

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


def measure(scenario: Scenario, prom: Prometheus, contender: str, tmp: Path) -> Measured:
    time.sleep(SETTLE)
    idle_cpu, started = cpu_seconds(prom.pid), time.monotonic()
    time.sleep(BASELINE)
    idle = (cpu_seconds(prom.pid) - idle_cpu) / (time.monotonic() - started)
    idle_rss = rss_kb(prom.pid)
    prom.sink.clear()
    label = f"{scenario.key}-{contender.replace(' ', '-')}-"
    workdir = Path(tempfile.mkdtemp(prefix=label, dir=tmp))
    with CONTENDERS[contender](scenario, prom, workdir) as running:
        first = running.counters()
        wait_until(lambda: _began(running, first), 60, f"{contender}'s first evaluations")
        time.sleep(WARM_UP if scenario.interval < 5 else scenario.interval + 1)
        cpu0, prom0, counts0 = cpu_seconds(running.pid), cpu_seconds(prom.pid), running.counters()
        started = time.monotonic()
        time.sleep(scenario.window)
        cpu1, prom1, counts1 = cpu_seconds(running.pid), cpu_seconds(prom.pid), running.counters()
        took = time.monotonic() - started
        rss = rss_kb(running.pid)
        fires = running.fires()
    deltas = _counter_deltas(counts0, counts1)
    present = [name for name in running.evaluations if counts0.get(name) is not None]
    source = present[0] if present else running.evaluations[0]
    extra = (prom1 - prom0) / took - idle
    return Measured(
        contender=contender,
        scenario=scenario,
        prometheus_idle=idle,
        cpu=extra if running.is_prometheus else (cpu1 - cpu0) / took,
        prometheus_extra=None if running.is_prometheus else extra,
        rss_mb=(rss - idle_rss if running.is_prometheus else rss) / 1024,
        evaluations=deltas.get(source, 0.0) / took,
        source=source,
        cross={n: deltas[n] / took for n in present[1:] if n in deltas},
        missed=deltas.get("missed"),
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


def _evaluations_cell(m: Measured) -> str:
    fallback = " (fallback: no own counter)" if m.uses_fallback else ""
    done = "" if m.all_done else " **short**"
    return f"{_fmt(m.evaluations)} of {_fmt(m.schedule)}{done} [{m.source}{fallback}]"


def markdown(results: list[Measured]) -> str:
    out = [
        "## Peers",
        "",
        "metric-reader, vmalert and Prometheus' rule manager on the same rules, one after "
        "another against one Prometheus scraping 1,000 gauges (2 series each, 1 % above the "
        "threshold) every second, and for (d) 10,000 more every 10 s; every rule is "
        "`> 50 for 5s`. How each column is measured: "
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
    tolerance = m.scenario.interval / m.scenario.window * 100
    missed = f", {m.missed:.0f} counted missed" if m.missed else ""
    missed_percent = (m.missed or 0.0) / (m.schedule * m.scenario.window) * 100
    return {
        "name": f"peers {m.scenario.title}: metric-reader evaluations short of schedule",
        "value": max(m.short_percent, missed_percent),
        "unit": "%",
        "target": tolerance,
        "note": f"{m.evaluations:,.0f}/s of {m.schedule:,.0f}/s [{m.source}"
        f"{', fallback: no own counter' if m.uses_fallback else ''}]{missed}; "
        "target: one cycle of the window",
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
        out.append(_schedule_row(ours_a))
        fired = ours_a.fired()
        out.append(
            {
                "name": f"peers {ours_a.scenario.title}: metric-reader breaching series not "
                f"fired within {FOR_SECONDS:g} s + {ours_a.scenario.interval:g} s",
                "value": float(fired.breaching - fired.in_time + fired.false),
                "unit": "series",
                "target": 0.0,
                "note": str(fired),
            }
        )
    if ours_a and theirs_a:
        out.append(
            {
                "name": f"peers {ours_a.scenario.title}: metric-reader (CPU + Prometheus "
                "extra) / vmalert's",
                "value": ours_a.total_cpu / theirs_a.total_cpu,
                "unit": "x",
                "target": 0.1,
                "note": f"{ours_a.total_cpu:.3f} vs {theirs_a.total_cpu:.3f} cores",
            }
        )
    ours_b, theirs_b = _find(results, "b", "metric-reader"), _find(results, "b", "vmalert")
    if ours_b:
        out.append(_schedule_row(ours_b))
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
                "target": 36.0,
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
