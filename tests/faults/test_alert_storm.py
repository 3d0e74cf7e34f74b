"""An alert storm against a slow plain-``def`` plugin, in a real ``python -m metric_reader``.

More alerts fire at once than there are plugin threads, and each call takes more than half
of ``PLUGIN_TIMEOUT``: calls wait for a thread in turn, and the wait is not part of their
timeout, so every alert is executed exactly once. And a call that times out while it runs
is never run again while it still runs: a retry waits until it has returned or is
declared lost (``PLUGIN_TIMEOUT`` after its timeout).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from integration.conftest import ScrapeServer, Service, ServiceFactory, _http_get, free_port

PLUGIN_THREADS = 32
"""Plain-``def`` plugin calls that run at once (``_actions._callers``)."""
ALERTS = PLUGIN_THREADS + 48
DEADLINE = 30.0

SLOW_PLUGIN = """
import json, os, time


class Slow:
    name = "slow"

    def execute(self, metric_name, value, threshold, duration, event=None):
        started = time.monotonic()
        time.sleep(float(os.environ["SLOW_SECONDS"]))
        line = {
            "alert": event.labels["alert"],
            "kind": event.kind,
            "key": getattr(event, "idempotency_key", None),
            "started": started,
            "ended": time.monotonic(),
        }
        with open(os.environ["SLOW_RECORD"], "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\\n")


Plugin = Slow()
"""

LATE_PLUGIN = '''
import json, os, time


def _record(phase, event):
    line = {"phase": phase, "key": getattr(event, "idempotency_key", None), "t": time.monotonic()}
    with open(os.environ["LATE_RECORD"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\\n")


class Late:
    """Each call outlasts PLUGIN_TIMEOUT (but not twice it), then succeeds or raises."""

    name = "late"

    def execute(self, metric_name, value, threshold, duration, event=None):
        _record("start", event)
        time.sleep(float(os.environ["LATE_SECONDS"]))
        _record("end", event)
        if os.environ["LATE_RAISES"] == "1":
            raise RuntimeError("failed after its timeout")


Plugin = Late()
'''


@pytest.fixture
def scrape() -> Iterator[ScrapeServer]:
    server = ScrapeServer()
    try:
        yield server
    finally:
        server.close()


def _plugin_dir(tmp_path: Path, name: str, source: str) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / f"{name}.py").write_text(source)
    (plugins / f"{name}.py").chmod(0o644)
    return plugins


def _records(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def _log(svc: Service) -> list[dict[str, Any]]:
    """The service's JSON log lines (``LOG_FORMAT=json``), in order."""
    out = []
    for line in svc.output().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def _messages(svc: Service, text: str) -> list[dict[str, Any]]:
    return [entry for entry in _log(svc) if text in entry.get("message", "")]


def _metric(page: str, name: str, **labels: str) -> float:
    """The value of one sample of a text-format page (0 when it is not there)."""
    for line in page.splitlines():
        if not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        if series.partition("{")[0] != name:
            continue
        if all(f'{key}="{want}"' in series for key, want in labels.items()):
            return float(value)
    return 0.0


def test_an_alert_storm_runs_every_alert_exactly_once(
    tmp_path: Path, scrape: ScrapeServer, service: ServiceFactory
) -> None:
    """80 alerts at once, 32 plugin threads, each call 0.6 s against a 1 s PLUGIN_TIMEOUT:
    the last calls wait twice their run for a thread, and none of them fails."""
    record = tmp_path / "calls.jsonl"
    for number in range(ALERTS):
        scrape.set_value("storm_value", 100, {"alert": str(number)})
    port = free_port()
    svc = service(
        {
            "SCRAPE_URL": scrape.url,
            "METRIC_NAME": "storm_value",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "250ms",
            "PLUGIN_TIMEOUT": "1s",
            "PLUGIN_DIR": str(_plugin_dir(tmp_path, "slow", SLOW_PLUGIN)),
            "ACTION_PLUGIN": "slow",
            "SLOW_SECONDS": "0.6",
            "SLOW_RECORD": str(record),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
        }
    )
    base = f"http://127.0.0.1:{port}"
    queued_seen = 0.0

    def page() -> str:
        nonlocal queued_seen
        try:
            status, body = _http_get(f"{base}/metrics", timeout=2)
        except OSError:
            return ""
        text = body.decode() if status == 200 else ""
        queued_seen = max(queued_seen, _metric(text, "metric_reader_plugin_calls_queued"))
        return text

    def settled() -> bool:
        text = page()
        return (
            len(_records(record)) >= ALERTS
            and _metric(text, "metric_reader_plugin_calls_total", result="success") >= ALERTS
            and _metric(text, "metric_reader_plugin_calls_in_flight") == 0
        )

    svc.wait_until(settled, DEADLINE, f"{ALERTS} calls settled", interval=0.02)
    # Any retry would be handed out at the next poll: let a few pass.
    scrape.wait_requests(4, diagnostics=svc.diagnostics)

    calls = _records(record)
    executed = Counter(call["alert"] for call in calls)
    twice = sorted((alert for alert, count in executed.items() if count > 1), key=int)
    assert not twice, f"{len(twice)} alerts executed more than once: {twice}"
    assert sorted(executed, key=int) == [str(number) for number in range(ALERTS)]
    text = page()
    for result in ("timeout", "failure"):
        assert _metric(text, "metric_reader_plugin_calls_total", result=result) == 0, result
    assert "timed out" not in svc.output() and "not started" not in svc.output()
    # The calls beyond the threads waited their turn, and it showed.
    assert queued_seen > 0, "the queue never showed on /metrics"
    starts = sorted(call["started"] for call in calls)
    assert starts[-1] - starts[0] >= 0.6, "they did not wait for a thread"
    status, body = _http_get(f"{base}/api/status")
    assert status == 200
    assert json.loads(body)["plugin_calls"] == {
        "in_flight": 0,
        "queued": 0,
        "queue_limit": 10_000,
        "threads": PLUGIN_THREADS,
    }
    keys = {call["key"] for call in calls}
    assert len(keys) == ALERTS and all(isinstance(key, str) and key for key in keys)


@pytest.mark.parametrize("raises", [False, True], ids=["returns late", "raises late"])
def test_a_call_that_times_out_while_running_is_not_run_again_while_it_runs(
    tmp_path: Path, scrape: ScrapeServer, service: ServiceFactory, raises: bool
) -> None:
    """Each call takes 1.5 s against a 1 s PLUGIN_TIMEOUT, polls every 100 ms: the retry
    (due 100 ms after the timeout) waits until the first call has ended. One that returned
    after its timeout did the action: it is not run again at all."""
    record = tmp_path / "calls.jsonl"
    scrape.set_value("late_value", 100)
    svc = service(
        {
            "SCRAPE_URL": scrape.url,
            "METRIC_NAME": "late_value",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_TIMEOUT": "1s",
            "PLUGIN_DIR": str(_plugin_dir(tmp_path, "late", LATE_PLUGIN)),
            "ACTION_PLUGIN": "late",
            "LATE_SECONDS": "1.5",
            "LATE_RECORD": str(record),
            "LATE_RAISES": "1" if raises else "0",
            "LOG_FORMAT": "json",
        }
    )

    def phases(phase: str) -> list[dict[str, Any]]:
        return [line for line in _records(record) if line["phase"] == phase]

    svc.wait_until(lambda: phases("end"), DEADLINE, "the first call to end")
    if raises:  # the retry, once the first has ended, and its end
        svc.wait_until(lambda: len(phases("end")) >= 2, DEADLINE, "the retry to end")
    # Any other retry would be handed out at the next poll: let a few pass.
    scrape.wait_requests(5, diagnostics=svc.diagnostics)

    starts, ends = phases("start"), phases("end")
    assert _messages(svc, "execute timed out"), svc.diagnostics()
    if not raises:
        assert len(starts) == 1, f"run again: {starts}"
        assert _messages(svc, "after its timeout: done, not run again"), svc.diagnostics()
        return
    assert starts[1]["t"] >= ends[0]["t"], f"ran concurrently: {starts} {ends}"
    late = _messages(svc, "after its timeout: RuntimeError: failed after its timeout")
    assert late and late[0]["message"].startswith("execute failed "), svc.diagnostics()
    # A retry of the same call carries the same key.
    assert starts[0]["key"] == starts[1]["key"] and starts[0]["key"]


def test_a_call_still_running_after_twice_its_timeout_is_declared_lost_and_retried(
    tmp_path: Path, scrape: ScrapeServer, service: ServiceFactory
) -> None:
    """A call that hangs is waited for until PLUGIN_TIMEOUT after its timeout, then declared
    lost: the retry comes no earlier than that."""
    record = tmp_path / "calls.jsonl"
    scrape.set_value("late_value", 100)
    svc = service(
        {
            "SCRAPE_URL": scrape.url,
            "METRIC_NAME": "late_value",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_TIMEOUT": "500ms",
            "PLUGIN_DIR": str(_plugin_dir(tmp_path, "late", LATE_PLUGIN)),
            "ACTION_PLUGIN": "late",
            "LATE_SECONDS": "5",
            "LATE_RECORD": str(record),
            "LATE_RAISES": "0",
            "LOG_FORMAT": "json",
        }
    )

    svc.wait_until(lambda: len(_messages(svc, "declared lost")) >= 2, DEADLINE, "2 lost")
    timeouts = _messages(svc, "execute timed out")
    lost = _messages(svc, "declared lost")
    assert len(timeouts) >= 2, svc.diagnostics()
    assert "declared lost: still running 500ms after its timeout" in lost[0]["message"]
    # The retry starts after the first is declared lost: its own timeout comes later still.
    first, declared, second = timeouts[0]["time"], lost[0]["time"], timeouts[1]["time"]
    assert _seconds_between(first, declared) >= 0.5 - 0.01, (first, declared)
    assert _seconds_between(declared, second) >= 0.5 - 0.01, (declared, second)


def _seconds_between(first: str, second: str) -> float:
    return (datetime.fromisoformat(second) - datetime.fromisoformat(first)).total_seconds()
