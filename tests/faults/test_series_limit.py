"""``SERIES_LIMIT``: an application whose label values churn cannot grow the service.

A real scrape server on 127.0.0.1 serves ``churn_value`` with new label values on every
request, next to a steady ``steady_value`` that breaches. Over the limit, the read fails for
the churning rule alone (logged, counted, its state untouched) while the steady rule on the
same page goes on and fires; under the limit, the series the churning rule remembers stay
within it as old ones are forgotten.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from integration.conftest import ServiceFactory

from metric_reader._actions import discover_plugins
from metric_reader._config import ConfigError, load_settings
from metric_reader._engine import State
from metric_reader._service import Service

from .conftest import Logs


class ChurnServer:
    """``/metrics``: ``churn_value{id="<request>-<i>"} <value>`` for ``i < count``, then
    ``steady_value 100``."""

    def __init__(self) -> None:
        self.count = 0
        self.value = 1.0
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                n = owner.requests
                lines = [f'churn_value{{id="{n}-{i}"}} {owner.value}' for i in range(owner.count)]
                body = ("\n".join([*lines, "steady_value 100", ""])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def churn() -> Iterator[ChurnServer]:
    server = ChurnServer()
    try:
        yield server
    finally:
        server.close()


def rule_file(tmp_path: Path, url: str, extra: str = "") -> Path:
    config = tmp_path / "rules.toml"
    config.write_text(
        f'scrape_url = "{url}"\nthreshold = ">50"\n{extra}'
        '[[rules]]\nname = "churn"\nmetric_name = "churn_value"\nseries_limit = 1000\n'
        'threshold_duration = "1h"\n'
        '[[rules]]\nname = "steady"\nmetric_name = "steady_value"\n'
    )
    return config


def in_process(tmp_path: Path, url: str) -> Service:
    settings = load_settings({"CONFIG_FILE": str(rule_file(tmp_path, url))})
    return Service(settings, discover_plugins(None))


def tracked(service: Service, name: str) -> dict[Any, Any]:
    [rule] = [r for r in service.rules if r.name == name]
    assert rule.machine is not None
    return rule.machine.series


def exceeded(service: Service, rule: str) -> float:
    value = service.metrics.registry.get_sample_value(
        "metric_reader_series_limit_exceeded_total", {"rule": rule}
    )
    return value or 0.0


def test_series_that_churn_under_the_limit_are_forgotten_to_stay_within_it(
    churn: ChurnServer, tmp_path: Path, logs: Logs
) -> None:
    service = in_process(tmp_path, churn.url)
    [target] = service.fetches
    churn.count = 400  # 400 new series on every read, none breached

    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            for _ in range(10):
                await service.poll_once(client, target, 5.0, calls)
                assert len(tracked(service, "churn")) <= 1000
            calls.cancel_scope.cancel()

    anyio.run(main)
    # The newest reads are what is kept: 400 from the last read, 600 from the two before.
    series = tracked(service, "churn")
    assert len(series) == 1000
    assert {labels[0][1].split("-")[0] for labels in series} == {"8", "9", "10"}
    assert exceeded(service, "churn") == 0
    assert not logs.find("series limit exceeded")
    assert tracked(service, "steady")[()].base.state is State.FIRING


def test_a_read_over_the_limit_fails_for_that_rule_alone(
    churn: ChurnServer, tmp_path: Path, logs: Logs
) -> None:
    service = in_process(tmp_path, churn.url)
    [target] = service.fetches
    churn.value = 100.0  # every churn series breaches: pending for an hour

    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            churn.count = 600
            await service.poll_once(client, target, 5.0, calls)
            [rule] = [r for r in service.rules if r.name == "churn"]
            assert rule.machine is not None
            before = (rule.machine.revision, repr(rule.machine.series))

            churn.count = 1500  # more than the limit in one read
            await service.poll_once(client, target, 5.0, calls)
            assert (rule.machine.revision, repr(rule.machine.series)) == before
            assert exceeded(service, "churn") == 1

            churn.count = 600  # under the limit, but 600 pending series cannot be forgotten
            await service.poll_once(client, target, 5.0, calls)
            assert (rule.machine.revision, repr(rule.machine.series)) == before
            assert exceeded(service, "churn") == 2
            calls.cancel_scope.cancel()

    anyio.run(main)
    over, full = logs.find("series limit exceeded", level="ERROR", target=target.description)
    assert over.message == (
        "series limit exceeded: rule 'churn': the read returned 1500 series, more than "
        "SERIES_LIMIT=1000; nothing was evaluated: narrow the query or label_filters, or "
        "raise SERIES_LIMIT"
    )
    assert full.message == (
        "series limit exceeded: rule 'churn': 600 new series would make 1200 tracked, more "
        "than SERIES_LIMIT=1000 (the others are read now, breached or acting); nothing was "
        "evaluated: narrow the query or label_filters, or raise SERIES_LIMIT"
    )
    assert tracked(service, "steady")[()].base.state is State.FIRING
    assert exceeded(service, "steady") == 0


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_a_real_service_stays_small_while_an_app_churns_labels(
    churn: ChurnServer, service: ServiceFactory, tmp_path: Path
) -> None:
    """``python -m metric_reader`` against 20,000 new label values a read (the default
    limit is 10,000): one error a minute at most, the other rule fires, memory stays flat."""
    churn.count = 20_000
    config = tmp_path / "rules.toml"
    config.write_text(
        f'scrape_url = "{churn.url}"\nthreshold = ">50"\npolling_interval = "500ms"\n'
        '[[rules]]\nname = "churn"\nmetric_name = "churn_value"\n'
        '[[rules]]\nname = "steady"\nmetric_name = "steady_value"\n'
    )
    svc = service({"CONFIG_FILE": str(config), "LOG_FORMAT": "json"})

    def records() -> list[dict[str, Any]]:
        found = []
        for line in svc.output().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    svc.wait_until(lambda: churn.requests >= 2, 30.0, "two reads")
    start = _peak_rss(svc.proc.pid)
    deadline = time.monotonic() + 60.0
    while churn.requests < 14 and time.monotonic() < deadline:
        time.sleep(0.1)
    grown = _peak_rss(svc.proc.pid) - start
    # 12 reads of 20,000 new series: kept, they would be 240,000 state machines (~250 MiB).
    assert grown < 48 * 1024 * 1024, f"peak RSS grew {grown / 2**20:.0f} MiB"
    logged = records()
    errors = [r for r in logged if r["message"].startswith("series limit exceeded")]
    assert len(errors) == 1, errors  # throttled: the same error again is not repeated
    assert errors[0]["message"] == (
        "series limit exceeded: rule 'churn': the read returned 20000 series, more than "
        "SERIES_LIMIT=10000; nothing was evaluated: narrow the query or label_filters, or "
        "raise SERIES_LIMIT"
    )
    assert [r for r in logged if r["message"].startswith("firing") and r["rule"] == "steady"]
    assert svc.stop() == 0


def test_series_limit_is_set_by_environment_rule_file_default_or_rule(tmp_path: Path) -> None:
    assert load_settings({"METRIC_NAME": "m"}).rules[0].series_limit == 10_000
    assert load_settings({"METRIC_NAME": "m", "SERIES_LIMIT": "50"}).rules[0].series_limit == 50
    config = rule_file(tmp_path, "http://127.0.0.1:1/metrics", "series_limit = 70\n")
    limits = {r.name: r.series_limit for r in load_settings({"CONFIG_FILE": str(config)}).rules}
    assert limits == {"churn": 1000, "steady": 70}
    settings = load_settings({"CONFIG_FILE": str(config), "SERIES_LIMIT": "90"})
    assert {r.name: r.series_limit for r in settings.rules} == {"churn": 1000, "steady": 90}


@pytest.mark.parametrize("given", ["0", "-5", "many", "1.5"])
def test_series_limit_refuses_anything_but_a_positive_whole_number(given: str) -> None:
    with pytest.raises(ConfigError, match=rf"^SERIES_LIMIT='{given}' is invalid: expected a whole"):
        load_settings({"METRIC_NAME": "m", "SERIES_LIMIT": given})


def test_a_first_read_of_exactly_the_limit_passes_under_assume_breached(
    churn: ChurnServer, tmp_path: Path
) -> None:
    """The placeholder series of a rule that has seen nothing (breached, under
    assume_breached) does not take a place: real series replace it."""
    config = rule_file(tmp_path, churn.url, 'missing_value_behavior = "assume_breached"\n')
    service = Service(load_settings({"CONFIG_FILE": str(config)}), discover_plugins(None))
    [target] = service.fetches

    async def main() -> None:
        async with httpx.AsyncClient() as client, anyio.create_task_group() as calls:
            churn.count = 0
            await service.poll_once(client, target, 5.0, calls)
            assert tracked(service, "churn")[()].base.state is State.PENDING
            churn.count = 1000
            await service.poll_once(client, target, 5.0, calls)
            calls.cancel_scope.cancel()

    anyio.run(main)
    assert exceeded(service, "churn") == 0
    assert len(tracked(service, "churn")) == 1000
