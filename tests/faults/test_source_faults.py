"""Fault injection on the sources: a target that misbehaves in every way we could think of.

For each fault, one in-process ``Service`` reads two rules from the faulty target (one
PENDING, one FIRING) and one rule from a healthy page, every 100 ms. While the fault lasts,
every failed poll is logged with its target and counted in ``poll_errors_total``, the healthy
target keeps its cadence (measured from the healthy server's own request times), and
neither rule on the faulty target changes in any way: no state, timer, counter or plugin
call. When the target answers well again the service says ``poll recovered`` and the state
machine goes on: the PENDING breach kept its start, the FIRING one resolves when the value
falls.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from integration.conftest import ServiceFactory

from metric_reader._actions import discover_plugins
from metric_reader._config import ConfigError, load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._engine import State
from metric_reader._http import make_client
from metric_reader._service import Service
from metric_reader._sources._fetches import Fetch
from metric_reader._sources._prometheus import instant_query
from metric_reader._sources._scrape import fetch_page

from .conftest import MALFORMED_LINES, METRIC, FaultServer, Logs

INTERVAL = 0.1
FAULT_POLLS = 6  # failed polls of each faulty target before the fault is lifted
DEADLINE = 15.0  # for any one wait: generous, a busy 2-core machine must not flake
TEST_LIMIT = 1024 * 1024  # MAX_RESPONSE_BYTES of the in-process runs

RECORDER = """
class Recorder:
    name = "recorder"

    def __init__(self):
        self.calls = []

    async def execute(self, metric_name, value, threshold, duration, event=None):
        self.calls.append(("execute", event.rule))

    async def resolve(self, metric_name, value, threshold, duration, event=None):
        self.calls.append(("resolve", event.rule))


Plugin = Recorder()
"""


@dataclass(frozen=True)
class Fault:
    name: str
    scrape: str | None
    """What the scrape error says (a regex), None when the fault does not apply."""
    query: str | None
    """Likewise for a Prometheus query."""
    busy: str | None = None
    """What some polls may say instead on a busy machine (the fault still says ``scrape`` or
    ``query`` at least once)."""


_GET = r" \(GET http://127\.0\.0\.1:\d+/"  # every source error names the URL requested
_SLOW = r"^no complete answer within 0\.08s" + _GET + ".*; the timeout is 80% of POLLING_INTERVAL"
FAULTS = [
    Fault(
        "refused",
        r"^cannot connect: connection refused by 127\.0\.0\.1:\d+" + _GET,
        r"^cannot connect: connection refused by 127\.0\.0\.1:\d+" + _GET,
    ),
    Fault("reset", r"RemoteProtocolError|ReadError", r"RemoteProtocolError|ReadError"),
    Fault("trickle", _SLOW, _SLOW),
    Fault("slow", _SLOW, _SLOW),
    Fault("http-500", r"^HTTP 500 Internal Server Error" + _GET, r"^HTTP 500, not JSON"),
    Fault("http-502", r"^HTTP 502 Bad Gateway" + _GET, r"^HTTP 502, not JSON"),
    Fault("http-503", r"^HTTP 503 Service Unavailable" + _GET, r"^HTTP 503, not JSON"),
    # Following 20 redirects can take longer than the 80 ms fetch budget on a busy machine.
    Fault("loop", r"^TooManyRedirects", r"^TooManyRedirects", busy=_SLOW),
    Fault("html", r"^the page is text/html, not a metrics page", r"^HTTP 200, not JSON"),
    Fault("badjson", None, r"^HTTP 200, not JSON"),
    Fault("shape", None, r"unexpected answer|the query returns a matrix"),
    Fault("error", None, r"^HTTP 422, query failed: execution: query processing would load"),
    Fault("huge", rf"larger than {TEST_LIMIT} bytes", rf"larger than {TEST_LIMIT} bytes"),
    Fault("huge-declared", rf"larger than {TEST_LIMIT} bytes", rf"larger than {TEST_LIMIT} bytes"),
    Fault("utf8", r"^unparsable page: line 1: invalid UTF-8", r"^HTTP 200, not JSON"),
    Fault("malformed", r"^unparsable page: line 3: ", None),
]


# --- helpers ----------------------------------------------------------------------------------


def make_service(tmp_path: Path, server: FaultServer, fault: Fault, **service_keys: str) -> Service:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "recorder.py").write_text(RECORDER)
    plugins.chmod(0o755)
    sources = []
    if fault.scrape is not None:
        sources.append(("scrape", f'scrape_url = "{server.scrape_url(fault.name)}"\n'))
    if fault.query is not None:
        sources.append(("query", f'prometheus_endpoint = "{server.endpoint(fault.name)}"\n'))
    text = f'polling_interval = "{INTERVAL * 1000:g}ms"\nplugin_dir = "plugins"\n'
    text += "".join(f'{key} = "{value}"\n' for key, value in service_keys.items())
    for kind, source in sources:
        text += (
            f'[[rules]]\nname = "{kind}-pending"\nmetric_name = "{METRIC}"\n{source}'
            'threshold = ">50"\nthreshold_duration = "1h"\naction_plugin = "recorder"\n'
            f'[[rules]]\nname = "{kind}-firing"\nmetric_name = "{METRIC}"\n{source}'
            'threshold = ">50"\nbackoff_delay = "1h"\naction_plugin = "recorder"\n'
        )
    text += (
        f'[[rules]]\nname = "healthy"\nmetric_name = "other_metric"\n'
        f'scrape_url = "{server.scrape_url("healthy")}"\nthreshold = ">1000"\n'
    )
    (tmp_path / "rules.toml").write_text(text)
    settings = load_settings({"CONFIG_FILE": str(tmp_path / "rules.toml")})
    return Service(settings, discover_plugins(settings.plugin_dir))


def series_state(service: Service, rule_name: str) -> tuple[State, float | None, int, int]:
    """(state, breach start, breach number, successful fires) of the rule's one series."""
    [rule] = [r for r in service.rules if r.name == rule_name]
    assert rule.machine is not None
    if not rule.machine.series:
        return State.OK, None, 0, 0
    [series] = rule.machine.series.values()
    base = series.base
    return base.state, base.active_at, base.breach, base.fire_count


def snapshot(service: Service) -> dict[str, tuple[int, str]]:
    """Everything the rules on the faulty target know: any change shows here."""
    return {
        rule.name: (rule.machine.revision, repr(rule.machine.series))
        for rule in service.rules
        if rule.machine is not None and rule.name != "healthy"
    }


def calls(service: Service) -> list[tuple[str, str]]:
    return list(service.catalog.plugins["recorder"].obj.calls)  # type: ignore[attr-defined]


def errors(service: Service, target: Fetch) -> float:
    value = service.metrics.registry.get_sample_value(
        "metric_reader_poll_errors_total", {"group": target.group}
    )
    return value or 0.0


async def until(predicate: Callable[[], object], what: str, logs: Logs) -> None:
    deadline = time.monotonic() + DEADLINE
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {DEADLINE}s waiting for {what}\n{logs.dump()}")
        await anyio.sleep(0.01)


def assert_cadence(times: list[float], start: float, end: float, interval: float) -> None:
    """The healthy target was polled every ``interval`` from ``start`` to ``end``."""
    during = [t for t in times if start <= t <= end]
    before = [t for t in times if t < start][-1:]
    points = before + during
    gaps = [b - a for a, b in itertools.pairwise(points)]
    assert len(gaps) >= 4, f"only {len(gaps)} healthy polls in {end - start:.2f}s"
    # A fault that held the healthy target up would show in every gap, so the median is
    # the test; the longest gap only rules out a stall longer than a single hiccup of the
    # whole process (a 2-core machine just after the parallel tests once paused 300 ms).
    assert max(gaps) < 4 * interval, f"healthy polling stalled {max(gaps):.3f}s; gaps {gaps}"
    median = statistics.median(gaps)
    assert 0.7 * interval < median < 1.3 * interval, f"median gap {median:.3f}s; gaps {gaps}"
    expected = (end - (points[0] if before else start)) / interval
    assert len(gaps) >= 0.75 * expected, f"{len(gaps)} healthy polls, expected ~{expected:.1f}"


# --- the faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_fault_is_logged_counted_changes_nothing_and_passes(
    fault: Fault,
    fault_server: FaultServer,
    logs: Logs,
    tmp_path: Path,
) -> None:
    service = make_service(tmp_path, fault_server, fault, max_response_bytes=f"{TEST_LIMIT}")
    kinds = [k for k in ("scrape", "query") if getattr(fault, k) is not None]
    faulty = [t for t in service.fetches if t.rules[0].name != "healthy"]
    assert len(faulty) == len(kinds)
    expected_error = {t.description: getattr(fault, t.rules[0].name.split("-")[0]) for t in faulty}

    async def scenario() -> None:
        # 1. Good answers (value 100 > 50): one breach pending for an hour, one firing.
        def settled() -> bool:
            return (
                all(
                    series_state(service, f"{kind}-pending")[0] is State.PENDING
                    and series_state(service, f"{kind}-firing")[0] is State.FIRING
                    and ("execute", f"{kind}-firing") in calls(service)
                    for kind in kinds
                )
                and not service._in_flight
            )

        await until(settled, "pending and firing breaches", logs)
        pending_before = {k: series_state(service, f"{k}-pending") for k in kinds}
        errors_before = {t.description: errors(service, t) for t in faulty}

        # 2. The fault: every poll of the faulty target fails, and nothing else happens. The
        # state is taken once each faulty target has failed once: a poll that was on its way
        # when the fault was armed may still bring a good answer before that.
        fault_server.arm(fault.name)
        armed_at = time.monotonic()

        def failed_polls(polls: int) -> bool:
            return all(errors(service, t) >= errors_before[t.description] + polls for t in faulty)

        await until(lambda: failed_polls(1), "a failed poll of each faulty target", logs)
        before, calls_before = snapshot(service), calls(service)
        await until(
            lambda: failed_polls(1 + FAULT_POLLS),
            f"{FAULT_POLLS} more failed polls of each faulty target",
            logs,
        )
        lifted_at = time.monotonic()
        assert snapshot(service) == before, "a failed poll changed the state"
        assert calls(service) == calls_before, "a failed poll ran the plugin"
        assert_cadence(fault_server.times("healthy"), armed_at, lifted_at, INTERVAL)
        for target in faulty:
            failed = logs.find("poll failed", level="ERROR", target=target.description)
            assert failed, f"no 'poll failed' logged for {target.description}\n{logs.dump()}"
            said = [line.extra["error"] for line in failed]
            expected = expected_error[target.description]
            assert any(re.search(expected, error) for error in said), (target.description, said)
            either = expected if fault.busy is None else f"{expected}|{fault.busy}"
            for error in said:
                assert re.search(either, error), f"{target.description}: {error!r}"
                assert re.search(_GET, error), error
            assert target.last_error is not None
            assert re.search(either, target.last_error)
        if fault.name.startswith("huge"):
            await until(lambda: fault_server.huge_bodies_sent, "a huge body to be cut", logs)
            # Each 1 GiB body was cut off after about the limit (plus socket buffers).
            assert max(fault_server.huge_bodies_sent) < 64 * 1024 * 1024

        # 3. Good answers again: "poll recovered", and the state machine goes on.
        fault_server.disarm(fault.name)
        for target in faulty:
            await until(
                lambda t=target: logs.find("poll recovered", target=t.description),  # type: ignore[misc]
                f"'poll recovered' for {target.description}",
                logs,
            )
            [recovered] = logs.find("poll recovered", target=target.description)
            assert recovered.extra["failed_polls"] >= FAULT_POLLS
            assert target.last_error is None
        for kind in kinds:
            assert series_state(service, f"{kind}-pending") == pending_before[kind]
            state, _, _, fires = series_state(service, f"{kind}-firing")
            assert (state, fires) == (State.FIRING, 1)
        assert calls(service) == calls_before, "a recovered poll repeated the action"

        fault_server.value = 0.0  # the breach ends: the firing rule resolves, the pending one
        await until(  # goes back to OK
            lambda: all(
                ("resolve", f"{kind}-firing") in calls(service)
                and series_state(service, f"{kind}-pending")[0] is State.OK
                for kind in kinds
            ),
            "the breaches to end",
            logs,
        )

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(service.run)
            with anyio.fail_after(4 * DEADLINE):
                await scenario()
            group.cancel_scope.cancel()

    anyio.run(main)


@pytest.mark.parametrize("index", range(len(MALFORMED_LINES)), ids=list(MALFORMED_LINES))
def test_each_kind_of_malformed_line_fails_the_read_and_changes_nothing(
    index: int,
    fault_server: FaultServer,
    logs: Logs,
    tmp_path: Path,
) -> None:
    fault = Fault(f"malformed-{index}", r"^unparsable page: line 3: ", None)
    service = make_service(tmp_path, fault_server, fault)
    target = next(t for t in service.fetches if t.rules[0].name != "healthy")

    async def main() -> None:
        async with make_client() as client, anyio.create_task_group() as group:
            await service.poll_once(client, target, 5.0, group)
            await until(lambda: not service._in_flight, "the fire call", logs)
            before = snapshot(service)
            fault_server.arm(fault.name)
            await service.poll_once(client, target, 5.0, group)
            assert errors(service, target) == 1
            [failed] = logs.find("poll failed", level="ERROR", target=target.description)
            assert re.search(fault.scrape or "", failed.extra["error"]), failed.extra["error"]
            assert snapshot(service) == before
            fault_server.disarm(fault.name)
            await service.poll_once(client, target, 5.0, group)
            assert logs.find("poll recovered", target=target.description, failed_polls=1)
            assert series_state(service, "scrape-pending")[0] is State.PENDING

    anyio.run(main)


# --- MAX_RESPONSE_BYTES -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1", 1),
        ("1048576", 1048576),
        ("64MiB", 64 << 20),
        ("512 KiB", 512 << 10),
        ("2gib", 2 << 30),
    ],
)
def test_max_response_bytes_takes_a_byte_count_or_a_binary_unit(given: str, expected: int) -> None:
    settings = load_settings({"METRIC_NAME": "m", "MAX_RESPONSE_BYTES": given})
    assert settings.max_response_bytes == expected


@pytest.mark.parametrize("given", ["0", "-1", "1.5MiB", "64MB", "lots", "MiB"])
def test_max_response_bytes_refuses_anything_else(given: str) -> None:
    with pytest.raises(ConfigError, match=rf"^MAX_RESPONSE_BYTES='{re.escape(given)}' is invalid"):
        load_settings({"METRIC_NAME": "m", "MAX_RESPONSE_BYTES": given})


def test_max_response_bytes_defaults_to_32_mib_and_is_a_rule_file_setting(tmp_path: Path) -> None:
    assert load_settings({"METRIC_NAME": "m"}).max_response_bytes == 32 << 20
    config = tmp_path / "rules.toml"
    config.write_text('max_response_bytes = 4096\n[[rules]]\nname = "a"\nmetric_name = "m"\n')
    assert load_settings({"CONFIG_FILE": str(config)}).max_response_bytes == 4096
    config.write_text('max_response_bytes = "8KiB"\n[[rules]]\nname = "a"\nmetric_name = "m"\n')
    assert load_settings({"CONFIG_FILE": str(config)}).max_response_bytes == 8192


@pytest.mark.parametrize("fault", ["huge", "huge-declared"])
def test_the_default_limit_cuts_a_1_gib_body_at_32_mib(
    fault: str, fault_server: FaultServer
) -> None:
    fault_server.arm(fault)

    async def main() -> None:
        async with make_client() as client:
            with pytest.raises(FetchError, match=r"^the page is larger than 33554432 bytes"):
                await fetch_page(client, fault_server.scrape_url(fault), 20.0)
            with pytest.raises(FetchError, match=r"^the answer is larger than 33554432 bytes"):
                await instant_query(client, fault_server.endpoint(fault), METRIC, 20.0)

    started = time.monotonic()
    anyio.run(main)
    assert time.monotonic() - started < 15.0
    deadline = time.monotonic() + DEADLINE
    while len(fault_server.huge_bodies_sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sent = fault_server.huge_bodies_sent
    assert len(sent) == 2
    assert max(sent) < 64 * 1024 * 1024, sent  # cut near 32 MiB, not read to 1 GiB


# --- a real process ---------------------------------------------------------------------------


def test_a_real_service_rides_out_faults_and_recovers(
    fault_server: FaultServer,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    """``python -m metric_reader`` through a series of faults: each logged with the target,
    the healthy target polled throughout, recovery logged, the process alive."""
    faults = ["refused", "trickle", "huge", "html", "malformed"]
    config = tmp_path / "rules.toml"
    text = 'polling_interval = "100ms"\nmax_response_bytes = "1MiB"\n'
    for fault in faults:
        text += (
            f'[[rules]]\nname = "{fault}"\nmetric_name = "{METRIC}"\n'
            f'scrape_url = "{fault_server.scrape_url(fault)}"\nthreshold = ">50"\n'
            'threshold_duration = "1h"\n'
        )
    text += (
        f'[[rules]]\nname = "healthy"\nmetric_name = "other_metric"\n'
        f'scrape_url = "{fault_server.scrape_url("healthy")}"\n'
    )
    config.write_text(text)
    svc = service({"CONFIG_FILE": str(config), "LOG_FORMAT": "json"})

    def logged(message: str, **fields: str) -> int:
        count = 0
        for line in svc.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("message", "").startswith(message) and all(
                record.get(k) == v for k, v in fields.items()
            ):
                count += 1
        return count

    for fault in faults:
        svc.wait_until(
            lambda f=fault: logged("breach started", rule=f), DEADLINE, f"a breach of rule {fault}"
        )
    for fault in faults:
        url = fault_server.scrape_url(fault)
        fault_server.arm(fault)
        armed_at = time.monotonic()
        target = f"scrape {url}"
        svc.wait_until(
            lambda t=target: logged("poll failed", target=t), DEADLINE, f"poll failed: {target}"
        )
        before = fault_server.count("healthy")
        svc.wait_until(
            lambda b=before: fault_server.count("healthy") >= b + 5, DEADLINE, "healthy polls"
        )
        assert_cadence(fault_server.times("healthy"), armed_at, time.monotonic(), 0.1)
        fault_server.disarm(fault)
        svc.wait_until(
            lambda t=target: logged("poll recovered", target=t), DEADLINE, f"recovered: {target}"
        )
    assert svc.alive()
    # One breach each, pending throughout: never ended, never started again by the faults.
    assert not logged("breach ended")
    for fault in faults:
        assert logged("breach started", rule=fault) == 1, fault
    assert svc.stop() == 0


def test_text_from_a_source_cannot_forge_a_log_line(
    fault_server: FaultServer, service: ServiceFactory, tmp_path: Path
) -> None:
    """A Prometheus error and a scraped label value holding a newline and a fake record:
    the text log shows them escaped on their own line, and no line starts with the fake."""
    fault_server.arm("forge")
    config = tmp_path / "rules.toml"
    config.write_text(
        'polling_interval = "100ms"\n'
        f'[[rules]]\nname = "query"\nmetric_name = "{METRIC}"\n'
        f'prometheus_endpoint = "{fault_server.endpoint("forge")}"\n'
        f'[[rules]]\nname = "scrape"\nmetric_name = "{METRIC}"\n'
        f'scrape_url = "{fault_server.scrape_url("forge")}"\n'
    )
    svc = service({"CONFIG_FILE": str(config), "LOG_FORMAT": "text"})

    def logged() -> bool:
        text = svc.output()
        # the scraped value's line, not the start's "watching" line, which names the rule too
        return "query failed: bad_data" in text and 'kind="a\\n2026-01-01' in text

    svc.wait_until(logged, DEADLINE, "the forged error and label value logged")
    assert svc.stop() == 0
    lines = svc.output().splitlines()
    assert not [line for line in lines if line.lstrip().startswith("2026-01-01")], lines
    [failed] = [line for line in lines if "query failed" in line]
    message = failed.partition("  target=")[0]
    assert (
        "poll failed: HTTP 400, query failed: bad_data: parse error"
        "\\n2026-01-01T00:00:00.000+00:00 ERROR   forged"
        "\\r\\n2026-01-01T00:00:00.000+00:00 ERROR   forged"
        "\\x1b[2K\\u2028\\n2026-01-01T00:00:00.000+00:00 ERROR   forged (GET http://"
    ) in message, message
    assert any('kind="a\\n2026-01-01' in line for line in lines if "rule=scrape" in line)
