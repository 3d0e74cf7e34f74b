"""Soak: 200 rules, flapping values, a flaky endpoint and a flaky plugin, then an audit.

The test drives every value from a schedule that is a pure function of the time on the
machine's monotonic clock (which the service and its plugin share), so afterwards it knows
exactly which breaches each rule saw: short blips that must not fire, and sustained breaches
that must get exactly the calls the README promises ("When an action runs"): one fire once
the breach has lasted ``threshold_duration``, a repeat ``backoff_delay`` after each
successful call while the breach lasts, a failed call retried after one polling interval,
doubling, and one resolve when a breach that had a successful call ends. The plugin's own
record of every call (attempts that failed included) is then walked rule by rule against
that schedule; every call must be one the schedule asks for, in the window the README
allows, and every call the schedule asks for must be there. The only tolerance is at a
boundary a poll interval makes: a call whose window straddles the end of its breach may or
may not happen.

The endpoint fails one request in about twelve (an HTTP 500 or an answer slower than the
fetch timeout), never two in a row; the plugin fails about one call in five (by a
deterministic hash of the rule and the call's number), never three in a row for a rule.

Resource use is sampled from ``/proc/PID/status`` (VmRSS) and ``/proc/PID/fd`` and must be
flat between the first and the last quarter of the run.

``SOAK_SECONDS`` sets the length of the schedule (default 20 s, as in ``make test``;
``make soak`` runs 600 s).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import random
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import EVENT_TIMEOUT, ServiceFactory

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "20"))
RULES = 200
POLL = 0.25
THRESHOLD = 50.0
SEED = 20261125
PLUGIN_FAIL_PERCENT = 20
MAX_PLUGIN_FAILURES_IN_A_ROW = 2
ENDPOINT_FAIL_PROBABILITY = 0.08

# Bounds on when a call can happen (seconds). A poll sees the value served at the moment of
# its request; the state machine and the plugin act a little later. Between an event and the
# poll that sees it: up to one interval to the next tick, one more for a failed poll, plus
# latency. ``U`` is that bound; ``EARLY`` is how much sooner than the nominal time the
# plugin's clock reading may be (the call is timed from the poll, the record after it).
U = 2 * POLL + 0.25
EARLY = 0.05
DISPATCH = POLL
"""How long after its poll a call may start: the plugin runs on a thread of its own. An
execute call records its poll (``tick``, from the event's breach start and duration), and
repeats and retries count from that poll; a resolve retry's poll is not in its event, so
its window starts up to this much sooner than its recorded time plus the delay."""
LATE_REQUEST = 0.3
"""How much older than the plugin's reading of the clock the value behind a call may be."""


# ---------------------------------------------------------------------------------------------
# The schedule


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    high: bool
    value: float


@dataclass
class RulePlan:
    name: str
    duration: float
    backoff: float
    segments: list[Segment]
    starts: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.starts = [s.start for s in self.segments]

    def value_at(self, t: float) -> float:
        index = bisect.bisect_right(self.starts, t) - 1
        return self.segments[max(index, 0)].value


def make_plan(index: int, length: float) -> RulePlan:
    rng = random.Random(SEED * 1000 + index)
    duration = rng.choice([1.0, 2.0])
    backoff = rng.choice([0.0, 3.0, 4.0])
    segments: list[Segment] = []
    t = 0.0
    low = rng.uniform(0.5, 3.0)
    segments.append(Segment(t, t + low, False, rng.uniform(0, 40)))
    t += low
    while t < length:
        if rng.random() < 0.3:  # a blip: ends before the duration (with room for latency)
            high = rng.uniform(0.3, max(0.3, duration - 0.4))
        elif backoff:  # sustained: fires, repeats 0-2 times, ends mid-way to the next repeat
            high = duration + rng.randint(0, 2) * backoff + backoff / 2 + 0.75
        else:  # sustained: fires once, resolves
            high = duration + rng.uniform(2.0, 4.0)
        segments.append(Segment(t, t + high, True, rng.uniform(60, 100)))
        t += high
        low = rng.uniform(3.0, 5.0)
        segments.append(Segment(t, t + low, False, rng.uniform(0, 40)))
        t += low
    segments.append(Segment(t, float("inf"), False, 1.0))
    return RulePlan(f"r{index:03d}", duration, backoff, segments)


# ---------------------------------------------------------------------------------------------
# The flaky endpoint


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False


class FlakyEndpoint:
    """``/metrics`` for every rule's series, from the plans; fails now and then."""

    def __init__(self, plans: list[RulePlan]) -> None:
        self.plans = plans
        self.origin: float | None = None  # monotonic time of schedule time 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.rng = random.Random(SEED)
        self.failed_last = False
        self.requests = self.failures = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.answer(self)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def page(self, now: float) -> bytes:
        lines = ["# TYPE soak_value gauge"]
        for plan in self.plans:
            value = 1.0 if self.origin is None else plan.value_at(now - self.origin)
            lines.append(f'soak_value{{rule="{plan.name}"}} {value!r}')
        return ("\n".join(lines) + "\n").encode()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        now = time.monotonic()
        with self.lock:
            self.requests += 1
            fail = not self.failed_last and self.rng.random() < ENDPOINT_FAIL_PROBABILITY
            slow = fail and self.rng.random() < 0.5
            self.failed_last = fail
            self.failures += fail
        try:
            if slow:  # longer than the service's fetch timeout (80 % of the interval)
                self.stopping.wait(POLL * 2)
                return
            body = b"unavailable (on purpose)\n" if fail else self.page(now)
            handler.send_response(500 if fail else 200)
            handler.send_header("Content-Type", "text/plain; version=0.0.4")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            pass

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------------------------
# The flaky plugin


def plugin_fails(rule: str, number: int) -> bool:
    """Whether the ``number``-th call (from 0) for ``rule`` is meant to fail (before the cap
    on failures in a row)."""
    digest = hashlib.sha256(f"{SEED}:{rule}:{number}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < PLUGIN_FAIL_PERCENT


_PLUGIN = f'''\
"""Soak test plugin: records every call; fails some, deterministically."""

import hashlib
import json
import os
import time

_calls = {{}}
_in_a_row = {{}}


def _fails(rule, number):
    digest = hashlib.sha256(f"{SEED}:{{rule}}:{{number}}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < {PLUGIN_FAIL_PERCENT}


def _call(method, event):
    t = time.monotonic()
    # The poll the call belongs to, on the same monotonic clock: the breach began at
    # breach_started and had lasted ``duration`` at that poll.
    tick = t - (time.time() - (event.breach_started.timestamp() + event.duration.total_seconds()))
    number = _calls.get(event.rule, 0)
    _calls[event.rule] = number + 1
    in_a_row = _in_a_row.get(event.rule, 0)
    fail = _fails(event.rule, number) and in_a_row < {MAX_PLUGIN_FAILURES_IN_A_ROW}
    _in_a_row[event.rule] = in_a_row + 1 if fail else 0
    line = {{"rule": event.rule, "method": method, "kind": event.kind,
             "fire_count": event.fire_count, "n": number, "ok": not fail, "t": t,
             "tick": tick}}
    with open(os.environ["SOAK_RECORD"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\\n")
    if fail:
        raise RuntimeError(f"flaky on purpose (call {{number}} of {{event.rule}})")


class Flaky:
    name = "flaky"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        _call("execute", event)

    async def resolve(self, metric_name, value, threshold, duration, event=None):
        _call("resolve", event)


Plugin = Flaky()
'''


# ---------------------------------------------------------------------------------------------
# The audit


@dataclass
class Audit:
    errors: list[str] = field(default_factory=list)
    sustained: int = 0
    fired: int = 0
    blips: int = 0
    calls: int = 0
    boundary: int = 0
    """Calls whose window straddled the end of their breach: allowed either way."""


def audit_rule(plan: RulePlan, origin: float, calls: list[dict[str, Any]], audit: Audit) -> None:
    position = 0
    in_a_row = 0
    number = 0

    def next_call(
        method: str, kind: str, lo: float, hi: float, end: float
    ) -> dict[str, Any] | None:
        """The call the schedule asks for next, in [lo, hi], if its poll can come before
        ``end``; None when it does not (or, at a boundary, did not) happen."""
        nonlocal position, in_a_row, number
        if lo > end + LATE_REQUEST:
            return None
        call = calls[position] if position < len(calls) else None
        # An execute call is placed by its poll; a resolve by when it ran.
        at = None if call is None else call["tick"] if method == "execute" else call["t"]
        matches = (
            call is not None
            and at is not None
            and call["method"] == method
            and call["kind"] == kind
            and lo - EARLY <= at <= hi
            and at <= end + LATE_REQUEST
            and (method != "execute" or 0 <= call["t"] - call["tick"] <= DISPATCH)
        )
        if not matches:
            if hi < end:
                got = "nothing" if call is None else json.dumps(call)
                audit.errors.append(
                    f"{plan.name}: expected {method} ({kind}) at {lo - origin:.2f}.."
                    f"{hi - origin:.2f} s (before {end - origin:.2f} s), got {got}"
                )
            else:
                audit.boundary += 1
            return None
        assert call is not None
        expected_ok = plugin_fails(plan.name, number) is False or (
            in_a_row >= MAX_PLUGIN_FAILURES_IN_A_ROW
        )
        if call["ok"] != expected_ok or call["n"] != number:
            audit.errors.append(f"{plan.name}: call {number} is not the plugin's: {call}")
        in_a_row = 0 if call["ok"] else in_a_row + 1
        number += 1
        position += 1
        audit.calls += 1
        if hi >= end:
            audit.boundary += 1
        return call

    highs = [i for i, s in enumerate(plan.segments) if s.high]
    for i in highs:
        segment = plan.segments[i]
        a, e = origin + segment.start, origin + segment.end
        following = plan.segments[i + 2].start if i + 2 < len(plan.segments) else None
        next_start = origin + following if following is not None else float("inf")
        if e - a < plan.duration:
            audit.blips += 1
        else:
            audit.sustained += 1
        # fire, retries, repeats
        successes = 0
        lo, hi = a + plan.duration, a + plan.duration + 2 * U
        failures = 0
        while True:
            kind = "fire" if successes == 0 else "repeat"
            call = next_call("execute", kind, lo, hi, e)
            if call is None:
                break
            if call["fire_count"] != successes:
                audit.errors.append(f"{plan.name}: fire_count {call['fire_count']}: {call}")
            if call["ok"]:
                successes += 1
                failures = 0
                if plan.backoff == 0:
                    break
                lo, hi = call["tick"] + plan.backoff, call["tick"] + plan.backoff + U
            else:
                failures += 1
                delay = POLL * 2 ** (failures - 1)
                lo, hi = call["tick"] + delay, call["tick"] + delay + U
        if successes:
            audit.fired += 1
        if not successes:
            continue
        # resolve, retried until it succeeds or the next breach begins
        lo, hi = e, e + U
        failures = 0
        while True:
            call = next_call("resolve", "resolve", lo, hi, next_start)
            if call is None or call["ok"]:
                break
            failures += 1
            delay = POLL * 2 ** (failures - 1)
            lo, hi = call["t"] + delay - DISPATCH, call["t"] + delay + U
    for extra in calls[position:]:
        audit.errors.append(f"{plan.name}: a call the schedule does not ask for: {extra}")


# ---------------------------------------------------------------------------------------------
# Resources


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int


def sample(pid: int) -> Sample | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    rss = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
    return Sample(time.monotonic(), rss, fds)


# ---------------------------------------------------------------------------------------------


# The schedule, then up to two minutes for the calls to stop, plus start-up and the audit.
@pytest.mark.timeout(SOAK_SECONDS + 240)
def test_soak_many_rules_flapping_with_a_flaky_endpoint_and_plugin(
    service: ServiceFactory, tmp_path: Path
) -> None:
    plans = [make_plan(i, SOAK_SECONDS) for i in range(RULES)]
    endpoint = FlakyEndpoint(plans)
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir(mode=0o755)
    (plugin_dir / "flaky.py").write_text(_PLUGIN)
    (plugin_dir / "flaky.py").chmod(0o644)
    record = tmp_path / "calls.jsonl"
    config = tmp_path / "rules.toml"
    lines = [
        f'polling_interval = "{int(POLL * 1000)}ms"',
        f'scrape_url = "{endpoint.url}"',
        f'plugin_dir = "{plugin_dir}"',
        'action_plugin = "flaky"',
        f'threshold = ">{THRESHOLD:g}"',
        "",
    ]
    for plan in plans:
        lines += [
            "[[rules]]",
            f'name = "{plan.name}"',
            'metric_name = "soak_value"',
            f"label_filters = 'rule=\"{plan.name}\"'",
            f'threshold_duration = "{plan.duration:g}s"',
            f'backoff_delay = "{plan.backoff:g}s"',
            "",
        ]
    config.write_text("\n".join(lines))
    svc = service(
        {
            "CONFIG_FILE": str(config),
            "SOAK_RECORD": str(record),
            "STATE_FILE": str(tmp_path / "state.json"),
            "LOG_LEVEL": "info",
        }
    )
    samples: list[Sample] = []
    stop_sampling = threading.Event()

    def sampler() -> None:
        while not stop_sampling.wait(0.5):
            found = sample(svc.proc.pid)
            if found is not None:
                samples.append(found)

    try:
        svc.wait_until(
            lambda: "polling every 250ms" in svc.stderr(), EVENT_TIMEOUT, "polling to start"
        )
        target = endpoint.requests + 4
        svc.wait_until(lambda: endpoint.requests >= target, EVENT_TIMEOUT, "the first polls")
        origin = time.monotonic() + 0.5
        endpoint.origin = origin
        thread = threading.Thread(target=sampler, daemon=True)
        thread.start()
        # The schedule runs; afterwards every value stays low. Wait for the last resolves
        # (a resolve failing twice takes at most 3 intervals of retries after its window).
        end = origin + max(p.segments[-1].start for p in plans)

        def quiet() -> bool:
            now = time.monotonic()
            if now < end + 4 * U:
                return False
            text = record.read_text() if record.exists() else ""
            last = json.loads(text.splitlines()[-1])["t"] if text.strip() else 0.0
            return now - last > 2.0

        svc.wait_until(quiet, SOAK_SECONDS + 120, "the schedule to end and calls to stop")
        stop_sampling.set()
        thread.join(timeout=5)
        assert svc.stop(signal.SIGTERM) == 0, svc.diagnostics()
    finally:
        stop_sampling.set()
        endpoint.close()

    calls = [json.loads(x) for x in record.read_text().splitlines() if x.strip()]
    by_rule: dict[str, list[dict[str, Any]]] = {p.name: [] for p in plans}
    for call in calls:
        by_rule[call["rule"]].append(call)
    audit = Audit()
    for plan in plans:
        audit_rule(plan, origin, sorted(by_rule[plan.name], key=lambda c: c["t"]), audit)
    summary = (
        f"{RULES} rules over {SOAK_SECONDS:g} s: {audit.sustained} sustained breaches "
        f"({audit.fired} fired), {audit.blips} blips, {audit.calls} plugin calls "
        f"({sum(not c['ok'] for c in calls)} failed on purpose), {audit.boundary} at a poll "
        f"boundary; endpoint {endpoint.requests} requests, {endpoint.failures} failed on purpose"
    )
    print(summary)
    assert not audit.errors, f"{len(audit.errors)} problem(s); {summary}\n" + "\n".join(
        audit.errors[:40]
    )
    assert audit.fired >= 0.9 * audit.sustained, summary
    assert audit.boundary <= 0.03 * audit.calls, f"too loose an audit: {summary}"
    stderr = svc.stderr()
    assert "Traceback" not in stderr, svc.diagnostics()
    assert "cannot write the state file" not in stderr, svc.diagnostics()

    # Resources: flat between the first and the last quarter.
    assert len(samples) >= 8, f"too few resource samples: {samples}"
    quarter = len(samples) // 4
    first, last = samples[:quarter], samples[-quarter:]
    rss_first = statistics.median(s.rss_kib for s in first)
    rss_last = statistics.median(s.rss_kib for s in last)
    fds_first, fds_last = max(s.fds for s in first), max(s.fds for s in last)
    resources = (
        f"RSS {rss_first / 1024:.1f} -> {rss_last / 1024:.1f} MiB, "
        f"open fds {fds_first} -> {fds_last} (first vs last quarter of {len(samples)} samples)"
    )
    print(resources)
    assert rss_last <= rss_first * 1.10 + 8 * 1024, f"memory grew: {resources}"
    assert fds_last <= fds_first + 4, f"file descriptors leak: {resources}"
