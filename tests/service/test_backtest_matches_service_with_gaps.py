"""A backtest tells the state changes the live service went through, series that come and
go included (issue 23, point 3).

Hypothesis draws a rule (a rule file's alert, or a ``QUERY`` rule with any missing-value
behaviour, clear threshold and hard level) and, step after step, which series its query
returned and their values. The live service runs over those reads on a virtual clock; the
state of each series after each evaluation is what it went through. ``backtest`` reads the
same steps from a Prometheus on loopback that answers ``query_range`` as Prometheus does
(a series has a point only at the steps it was in the result), through its real reading
and conversion, and its JSON report's changes must give the same state at every step.

``tests/service/test_replay_matches_service.py`` compares the calls of the replay with the
service's, given the same observations. It could not see that the backtest's report held
a series' last state across the steps it was absent: the calls were right, the steps the
report is made from were not.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from _virtual_clock import VirtualClockLoop
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from metric_reader._actions import discover_plugins
from metric_reader._config import Settings, load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._core._samples import Sample
from metric_reader._engine import Rule
from metric_reader._replay._backtest import Window, backtest
from metric_reader._replay._report import json_report
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch, Fetched
from metric_reader._sources._groups import Group

INTERVAL = 120.0
"""Two minutes: five steps reach the 10 minutes after which a series absent is forgotten
whatever the rule's missing-value behaviour."""
START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC, a multiple of the step
SERIES = [(("queue", "mail"),), (("queue", "sms"),)]

Held = dict[tuple[tuple[str, str], ...], dict[int, float]]


class _Prometheus(BaseHTTPRequestHandler):
    """Answers ``query_range`` from ``held`` as Prometheus does: each series with a point
    at each step of the request it has a value for, and no series without any."""

    held: ClassVar[Held] = {}

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        start, end, step = (float(form[key][0]) for key in ("start", "end", "step"))
        steps = {round((start + k * step) * 1000) for k in range(int((end - start) / step) + 1)}
        result = [
            {
                "metric": dict(labels),
                "values": [[ms / 1000, repr(v)] for ms, v in sorted(points.items()) if ms in steps],
            }
            for labels, points in type(self).held.items()
        ]
        data = {"resultType": "matrix", "result": [one for one in result if one["values"]]}
        body = json.dumps({"status": "success", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus() -> Iterator[tuple[str, type[_Prometheus]]]:
    handler = type("Handler", (_Prometheus,), {"held": {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


values = st.one_of(st.none(), st.sampled_from([5.0, 40.0, 60.0, 75.0, 120.0]))
"""A series' value at a step; None: the query's result did not hold it."""
steps = st.lists(
    st.lists(values, min_size=len(SERIES), max_size=len(SERIES)), min_size=3, max_size=16
)
durations = st.sampled_from(["0s", "2m", "4m", "6m"])
query_rules = st.fixed_dictionaries(
    {
        "THRESHOLD": st.just(">50"),
        "THRESHOLD_DURATION": durations,
        "KEEP_FIRING_FOR": st.sampled_from(["0s", "4m"]),
        "MISSING_VALUE_BEHAVIOR": st.sampled_from(
            ["skip", "last_value", "zero", "assume_breached", "resolve"]
        ),
    },
    optional={"CLEAR_THRESHOLD": st.just("<30")},
)
hard_levels = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"HARD_THRESHOLD": st.just(">100"), "HARD_THRESHOLD_DURATION": durations}
    ),
)
MAIL: list[float | None] = [60.0, None]
NOTHING: list[float | None] = [None, None]
ISSUE_23 = [MAIL] * 3 + [NOTHING] * 2 + [MAIL] * 3 + [NOTHING] * 2 + [MAIL] * 5
"""Issue 23's case: pending, the expression returns nothing for two stretches, then the
alert fires (the report said pending all along, never back to OK)."""
ALERTS = """
groups:
  - name: queues
    rules:
      - alert: QueueHigh
        expr: queue_depth > 50
        for: {duration}
        keep_firing_for: {keep}
"""


def _states(rule: Rule) -> list[tuple[str, str]]:
    """The state of each of ``SERIES`` (base level, hard level) in the live rule."""
    out = []
    for labels in SERIES:
        machine = rule.series.get(labels)
        if machine is None:
            out.append(("ok", "ok"))
        else:
            hard = machine.hard.state.value if machine.hard is not None else "ok"
            out.append((machine.base.state.value, hard))
    return out


class _Unthreaded(VirtualClockLoop):
    real_wait = 0.0  # the reads are the test's, no plugin runs: nothing comes from outside


def _live(configured: Settings, reads: list[list[Sample]]) -> list[list[tuple[str, str]]]:
    """The states after each read, in a service on a virtual clock."""
    service = Service(configured, discover_plugins(configured.plugin_dir))
    [rule] = service.rules
    done = 0
    seen: list[list[tuple[str, str]]] = []
    finished = anyio.Event()

    async def read(client: httpx.AsyncClient, timeout: float) -> Fetched:
        nonlocal done
        while service._in_flight:  # the calls of the last tick: logged, nothing to wait for
            await anyio.sleep(0)
        if done:
            seen.append(_states(service.rules[0]))
        if done >= len(reads):
            finished.set()
            raise FetchError("the test is over")
        done += 1
        return Fetched({rule.name: reads[done - 1]})

    group = Group("virtual", INTERVAL, [Fetch("virtual", INTERVAL, read, [rule.config])])
    group.offset = 0.0
    service.groups = [group]

    async def main() -> None:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(service.run)
            await finished.wait()
            tasks.cancel_scope.cancel()

    anyio.run(main, backend_options={"loop_factory": _Unthreaded})
    return seen


def _backtested(configured: Settings, count: int) -> list[list[tuple[str, str]]]:
    """The states at each step, as the backtest's JSON report tells them."""
    span = Window(START, START + (count - 1) * INTERVAL)
    results = anyio.run(backtest, configured, configured.rules, span, INTERVAL)
    [rule] = json_report(results, span)["rules"]
    assert "skipped" not in rule, rule
    changes = {tuple(sorted(one["labels"].items())): one["changes"] for one in rule["series"]}
    out = []
    for k in range(count):
        at = START + k * INTERVAL
        step = []
        for labels in SERIES:
            state = {"base": "ok", "hard": "ok"}
            for change in changes.get(labels, []):
                if change["time"] <= at:
                    state[change["level"]] = change["to"]
            step.append((state["base"], state["hard"]))
        out.append(step)
    return out


def _assert_same_states(configured: Settings, drawn: list[list[float | None]], held: Any) -> None:
    reads = [
        [Sample(labels, v) for labels, v in zip(SERIES, step, strict=True) if v is not None]
        for step in drawn
    ]
    held.held = {
        labels: {
            round((START + k * INTERVAL) * 1000): step[index]
            for k, step in enumerate(drawn)
            if step[index] is not None
        }
        for index, labels in enumerate(SERIES)
    }
    live = _live(configured, reads)
    backtested = _backtested(configured, len(drawn))
    assert len(live) == len(drawn)
    for k, (lived, told) in enumerate(zip(live, backtested, strict=True)):
        assert told == lived, (
            f"step {k}: read {drawn[: k + 1]}, live {live[: k + 1]}, backtest {backtested[: k + 1]}"
        )


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    duration=durations,
    keep=st.sampled_from(["0s", "4m"]),
    drawn=steps,
)
@example(duration="6m", keep="0s", drawn=ISSUE_23)
def test_a_backtest_of_an_alert_goes_through_the_states_the_service_went_through(
    prometheus: tuple[str, type[_Prometheus]],
    tmp_path_factory: pytest.TempPathFactory,
    duration: str,
    keep: str,
    drawn: list[list[float | None]],
) -> None:
    url, held = prometheus
    tmp = tmp_path_factory.mktemp("alert")
    (tmp / "alerts.yml").write_text(ALERTS.format(duration=duration, keep=keep))
    env = {
        "PROMETHEUS_ENDPOINT": url,
        "POLLING_INTERVAL": "2m",
        "RULE_FILES": str(tmp / "alerts.yml"),
    }
    _assert_same_states(load_settings(env), drawn, held)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rule=query_rules, hard=hard_levels, drawn=steps)
@example(  # pending, then absent: frozen (skip) until forgotten 10 minutes later
    rule={
        "THRESHOLD": ">50",
        "THRESHOLD_DURATION": "6m",
        "KEEP_FIRING_FOR": "0s",
        "MISSING_VALUE_BEHAVIOR": "skip",
    },
    hard={},
    drawn=[MAIL] * 2 + [NOTHING] * 7 + [MAIL] * 2,
)
def test_a_backtest_of_a_query_rule_goes_through_the_states_the_service_went_through(
    prometheus: tuple[str, type[_Prometheus]],
    rule: dict[str, str],
    hard: dict[str, str],
    drawn: list[list[float | None]],
) -> None:
    url, held = prometheus
    env = {
        "PROMETHEUS_ENDPOINT": url,
        "QUERY": "queue_depth",
        "POLLING_INTERVAL": "2m",
        **rule,
        **hard,
    }
    _assert_same_states(load_settings(env), drawn, held)
