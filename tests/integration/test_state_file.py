"""STATE_FILE end to end: the service is killed with SIGKILL in each state and started again.

What a user sees is the plugin calls (the recording plugin notes each one, with the time on
the machine's monotonic clock), the service's log, and the state file itself.
"""

from __future__ import annotations

import json
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import (
    EVENT_TIMEOUT,
    STARTUP_TIMEOUT,
    RecordingPlugins,
    ScrapeServer,
    Service,
    ServiceFactory,
)

# Timing-sensitive: run on its own after the parallel part of make test (see Makefile).
pytestmark = pytest.mark.serial

POLL = "250ms"
EPS = 1e-3


def rule_env(
    server: ScrapeServer, plugins: RecordingPlugins, state: Path, **settings: str
) -> dict[str, str]:
    return {
        "SCRAPE_URL": server.url,
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "POLLING_INTERVAL": POLL,
        "ACTION_PLUGIN": "recorder",
        "STATE_FILE": str(state),
        **plugins.env,
        **settings,
    }


def saved_level(state: Path, labels: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The base level of a series as the state file holds it now (None: not there yet)."""
    try:
        doc = json.loads(state.read_text())
    except FileNotFoundError:
        return None
    want = sorted([k, v] for k, v in (labels or {}).items())
    for series in doc["rules"]["queue_depth"]["series"]:
        if series["labels"] == want:
            return dict(series["base"])
    return None


def wait_saved(svc: Service, state: Path, what: str, check: Any) -> dict[str, Any]:
    def saved() -> dict[str, Any] | None:
        level = saved_level(state)
        return level if level is not None and check(level) else None

    result: dict[str, Any] = svc.wait_until(
        saved, EVENT_TIMEOUT, lambda: f"the state file to show {what}: {saved_level(state)}"
    )
    return result


def wait_records(
    svc: Service, plugins: RecordingPlugins, count: int, timeout: float = EVENT_TIMEOUT
) -> list[dict[str, Any]]:
    svc.extra_diagnostics = [plugins.describe]
    svc.wait_until(
        lambda: len(plugins.records()) >= count,
        timeout,
        lambda: f"{count} plugin call(s), got {len(plugins.records())}",
    )
    return plugins.records()


def wait_polls(svc: Service, server: ScrapeServer, count: int) -> None:
    target = server.requests + count
    svc.wait_until(
        lambda: server.requests >= target,
        EVENT_TIMEOUT,
        lambda: f"{count} more scrapes by the service (have {server.requests}, want {target})",
    )


def kill(svc: Service) -> None:
    """SIGKILL: no grace, no final write. The fixture's teardown leaves a stopped service."""
    assert svc.alive(), f"the service died before it was killed\n{svc.diagnostics()}"
    assert svc.stop(signal.SIGKILL) == -signal.SIGKILL


def fire_and_save(
    server: ScrapeServer, plugins: RecordingPlugins, service: ServiceFactory, env: dict[str, str]
) -> tuple[Service, dict[str, Any]]:
    """A service that fired once and saved it; the fire's record."""
    server.set_value("queue_depth", 90)
    svc = service(env)
    [fire] = wait_records(svc, plugins, 1)
    wait_saved(svc, Path(env["STATE_FILE"]), "the successful fire", lambda x: x["fire_count"] == 1)
    return svc, fire


def check_repeats_only_after_the_backoff(
    svc: Service,
    server: ScrapeServer,
    plugins: RecordingPlugins,
    fire: dict[str, Any],
    backoff: float,
) -> None:
    """``svc``, started inside the backoff of ``fire``, repeats when that backoff ends."""
    wait_polls(svc, server, 4)
    assert len(plugins.records()) == 1, f"ran again right after the start\n{plugins.describe()}"
    repeat, detail = wait_records(svc, plugins, 2)[1], plugins.describe()
    assert (repeat["kind"], repeat["fire_count"]) == ("repeat", 1), detail
    # The backoff counts from the success saved before the stop (it began just before the
    # plugin noted the call), not from the start of ``svc``.
    assert repeat["t"] >= fire["t"] + backoff - 0.5, f"repeated inside the backoff\n{detail}"
    assert repeat["t"] <= fire["t"] + backoff + 3.0, f"the backoff restarted\n{detail}"
    assert repeat["duration_s"] >= backoff - 0.5, detail


# ---------------------------------------------------------------------------------------------


def test_killed_while_pending_fires_at_the_original_deadline(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, recording_plugin_dir, state, THRESHOLD_DURATION="6s")
    scrape_server.set_value("queue_depth", 30)
    first = service(env)
    wait_polls(first, scrape_server, 2)
    t_breach = time.monotonic()
    scrape_server.set_value("queue_depth", 90)
    wait_saved(first, state, "a pending breach", lambda level: level["state"] == "pending")
    first.wait_until(
        lambda: time.monotonic() >= t_breach + 2.5, EVENT_TIMEOUT, "2.5 s of the 6 s to pass"
    )
    kill(first)
    t_restart = time.monotonic()

    second = service(env)
    [fire] = wait_records(second, recording_plugin_dir, 1)
    detail = recording_plugin_dir.describe() + "\n" + second.diagnostics()
    assert fire["kind"] == "fire", detail
    assert fire["t"] >= t_breach + 6.0, f"fired before the duration\n{detail}"
    # Not a full duration after the restart: the breach kept its start.
    assert fire["t"] < t_restart + 6.0 - 1.0, f"the pending timer restarted\n{detail}"
    assert fire["duration_s"] >= 6.0 - EPS, detail
    assert fire["duration_s"] >= fire["t"] - t_restart + 2.0, detail
    assert "restored 1 series (1 pending, 0 firing)" in second.stderr(), detail
    wait_polls(second, scrape_server, 6)
    assert len(recording_plugin_dir.records()) == 1, recording_plugin_dir.describe()


def test_killed_while_firing_does_not_repeat_inside_the_backoff(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, recording_plugin_dir, state, BACKOFF_DELAY="6s")
    first, fire = fire_and_save(scrape_server, recording_plugin_dir, service, env)
    kill(first)
    second = service(env)
    check_repeats_only_after_the_backoff(second, scrape_server, recording_plugin_dir, fire, 6.0)


def test_a_saved_fire_is_not_run_again_after_a_kill(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, recording_plugin_dir, state)  # BACKOFF_DELAY 0: once only
    scrape_server.set_value("queue_depth", 90)
    first = service(env)
    wait_records(first, recording_plugin_dir, 1)
    wait_saved(first, state, "the successful fire", lambda level: level["fire_count"] == 1)
    kill(first)
    second = service(env)
    wait_polls(second, scrape_server, 8)
    assert len(recording_plugin_dir.records()) == 1, recording_plugin_dir.describe()
    # ... and the breach it fired for still resolves once it ends.
    scrape_server.set_value("queue_depth", 10)
    records = wait_records(second, recording_plugin_dir, 2)
    assert [r["kind"] for r in records] == ["fire", "resolve"], recording_plugin_dir.describe()


def test_killed_after_a_resolve_does_not_resolve_again(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, recording_plugin_dir, state)
    scrape_server.set_value("queue_depth", 90)
    first = service(env)
    wait_records(first, recording_plugin_dir, 1)
    scrape_server.set_value("queue_depth", 10)
    wait_records(first, recording_plugin_dir, 2)
    wait_saved(
        first,
        state,
        "the successful resolve",
        lambda level: (
            level["state"] == "ok"
            and level["due"] is None
            and (level["last_action"] or {}).get("kind") == "resolve"
            and (level["last_action"] or {}).get("ok") is True
        ),
    )
    kill(first)
    second = service(env)
    wait_polls(second, scrape_server, 8)
    records = recording_plugin_dir.records()
    assert [r["kind"] for r in records] == ["fire", "resolve"], recording_plugin_dir.describe()


def test_a_corrupt_state_file_is_reported_and_set_aside(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    state.write_text('{"format": "metric-reader-state", "version": 1, "rules": {')
    scrape_server.set_value("queue_depth", 10)
    svc = service(rule_env(scrape_server, recording_plugin_dir, state))
    line = svc.wait_until(
        lambda: next((x for x in svc.stderr().splitlines() if "set aside as" in x), None),
        EVENT_TIMEOUT,
        "a warning that the state file was set aside",
    )
    [aside] = tmp_path.glob("state.json.corrupt-*")
    assert "WARNING" in line and str(state) in line and "not valid JSON" in line, line
    assert aside.name in line, line
    assert aside.read_text().endswith('"rules": {')
    assert sum("state.json" in x and "WARNING" in x for x in svc.stderr().splitlines()) == 1
    # The service runs on, and keeps a new, valid state file.
    svc.wait_until(state.exists, EVENT_TIMEOUT, "a fresh state file")
    assert json.loads(state.read_text())["rules"]["queue_depth"]["series"] == []
    scrape_server.set_value("queue_depth", 90)
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    assert fire["kind"] == "fire"


def test_random_kills_while_rules_flap_always_leave_a_valid_file(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(
        scrape_server,
        recording_plugin_dir,
        state,
        POLLING_INTERVAL="100ms",
        THRESHOLD_DURATION="300ms",
        BACKOFF_DELAY="500ms",
    )
    rng = random.Random(20261125)
    stop = threading.Event()

    def flap() -> None:  # two series, each breached and not at random moments
        flapper = random.Random(7)
        while not stop.is_set():
            for queue in ("mail", "jobs"):
                value = flapper.choice([10, 90, 90])
                scrape_server.set_value("queue_depth", value, {"queue": queue})
            stop.wait(flapper.uniform(0.05, 0.4))

    flapper = threading.Thread(target=flap, daemon=True)
    flapper.start()
    started: list[Service] = []
    try:
        for _ in range(14):
            svc = service(env)
            started.append(svc)
            time.sleep(rng.uniform(0.2, 1.8))  # a random moment to kill it at, not a wait
            kill(svc)
            if state.exists():
                doc = json.loads(state.read_text())
                assert doc["format"] == "metric-reader-state" and doc["version"] == 1
        final = service(env)
        started.append(final)
        wait_polls(final, scrape_server, 5)
    finally:
        stop.set()
        flapper.join(timeout=5)
    assert final.stop(signal.SIGTERM) == 0, final.diagnostics()
    doc = json.loads(state.read_text())
    assert set(doc["rules"]["queue_depth"]) == {"identity", "fingerprint", "seen_any", "series"}
    # No temporary file is left once a service has started and stopped, nothing set aside
    # (the action history is beside the state file, its WAL folded in at the stop).
    assert sorted(p.name for p in tmp_path.glob("state.json*")) == [
        "state.json",
        "state.json.history.sqlite",
        "state.json.lock",
    ]
    assert not list(tmp_path.glob(".state.json.*"))
    for svc in started:
        output = svc.stderr()
        assert "Traceback" not in output, svc.diagnostics()
        assert "unusable" not in output and "cannot write" not in output, svc.diagnostics()
    restored = sum("restoring state saved at" in svc.stderr() for svc in started)
    assert restored >= 7, f"only {restored} of {len(started)} starts restored a state"
    assert recording_plugin_dir.records(), "the rules never fired: the flapping did not work"


# --- a dry run on the real state file --------------------------------------------------------


def test_a_dry_run_between_real_runs_changes_nothing_they_do(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, recording_plugin_dir, state, BACKOFF_DELAY="8s")
    first, fire = fire_and_save(scrape_server, recording_plugin_dir, service, env)
    assert first.stop(signal.SIGTERM) == 0, first.diagnostics()
    saved = state.read_bytes()
    history_before = (tmp_path / "state.json.history.sqlite").read_bytes()

    dry = service({**env, "DRY_RUN": "true"})
    dry.wait_until(
        lambda: "restored 1 series (0 pending, 1 firing)" in dry.stderr(),
        STARTUP_TIMEOUT,
        "the dry run to start from the real state",
    )
    wait_polls(dry, scrape_server, 4)
    assert dry.stop(signal.SIGTERM) == 0, dry.diagnostics()
    assert "would call" not in dry.stderr(), f"the dry run ignored the backoff\n{dry.diagnostics()}"
    assert state.read_bytes() == saved, "the dry run changed the state file"
    history = tmp_path / "state.json.history.sqlite"
    assert sorted(p.name for p in tmp_path.glob("state.json*")) == [
        "state.json",
        history.name,
        "state.json.lock",
    ]
    assert history.read_bytes() == history_before, "the dry run wrote the action history"

    second = service(env)
    check_repeats_only_after_the_backoff(second, scrape_server, recording_plugin_dir, fire, 8.0)


# --- one service per state file ----------------------------------------------------------------


def exit_code(svc: Service) -> int:
    """The exit code of a command or service that ends on its own."""
    svc.wait_until(lambda: not svc.alive(), STARTUP_TIMEOUT, "the exit", require_alive=False)
    return svc.stop()


def test_a_second_service_on_the_same_state_file_refuses_to_start(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, recording_plugin_dir, state)
    scrape_server.set_value("queue_depth", 10)
    first = service(env)
    first.wait_until(state.exists, STARTUP_TIMEOUT, "the first service's state file")

    second = service(env)
    assert exit_code(second) == 2, second.diagnostics()
    [line] = [x for x in second.stderr().splitlines() if "configuration error" in x]
    assert second.stderr().splitlines()[-1] == line, second.diagnostics()
    assert line.startswith("metric-reader: configuration error: STATE_FILE="), line
    assert f"in use by another metric-reader (pid {first.proc.pid} on host " in line, line
    assert "give each instance its own STATE_FILE" in line, line

    # check and a dry run write nothing: they run next to the holder, and check names it.
    check = service(env, args=["check"])
    assert exit_code(check) == 0, check.diagnostics()
    assert f"state file {state}: in use by pid {first.proc.pid} on host " in check.stdout()
    dry = service({**env, "DRY_RUN": "true"})
    dry.wait_until(lambda: dry.stderr().count(" polled ") >= 2, STARTUP_TIMEOUT, "2 dry polls")
    assert dry.stop(signal.SIGTERM) == 0, dry.diagnostics()

    kill(first)  # the kernel drops the lock with its holder: no stale lock
    third = service(env)
    wait_polls(third, scrape_server, 2)
    third.wait_until(lambda: "restoring state saved at" in third.stderr(), EVENT_TIMEOUT, "restore")
    scrape_server.set_value("queue_depth", 90)
    [fire] = wait_records(third, recording_plugin_dir, 1)
    assert fire["pid"] != first.proc.pid and fire["kind"] == "fire"
    check = service(env, args=["check"])
    assert exit_code(check) == 0, check.diagnostics()
    assert f"state file {state}: in use by pid {third.proc.pid} on host " in check.stdout()
