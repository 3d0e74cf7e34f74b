"""Lifecycle faults: signals during a plugin call, a full disk, wall-clock jumps.

Each test runs the real service (``python -m metric_reader``) as a subprocess against a
scrape endpoint on 127.0.0.1 and judges it by what a user sees: the plugin's own record of
its calls (with the time of each on the machine's monotonic clock, which every process
shares), the log, the exit code and the state file.

SIGKILL at random moments is covered by
``tests/integration/test_state_file.py::test_random_kills_while_rules_flap_always_leave_a_valid_file``
(twenty kills while two series flap; the state file is valid after each). Here, SIGKILL is
aimed at one moment that loop cannot pick on purpose: while a plugin call is running.

- The full disk is a 256 KiB tmpfs mounted over an empty directory in a private mount
  namespace (``unshare -m``), so nothing outside the service sees it. The test reaches the
  mount through ``/proc/<pid>/root``, which resolves paths in the process's namespace, to
  fill the disk and to free it again. Skipped (with the reason) where unshare or mount is
  not permitted.
- Wall-clock jumps use Debian's libfaketime (package ``faketime``) with
  ``FAKETIME_DONT_FAKE_MONOTONIC=1``: only ``CLOCK_REALTIME`` moves; the offset is read
  from a file at every call (``FAKETIME_NO_CACHE=1``), so the test moves the clock of the
  running service by rewriting that file. (libfaketime 0.9.10 breaks Python 3.11's
  ``time.sleep`` in this mode, wolfcw/libfaketime#426; the service and the plugins used here
  never call it.)
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from integration import conftest as integration
from integration.conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    RecordingPlugins,
    ScrapeServer,
    Service,
    ServiceFactory,
    base_env,
)

# The integration tests' fixtures, used here by name.
scrape_server = integration.scrape_server
recording_plugin_dir = integration.recording_plugin_dir

POLL = 0.25
"""The polling interval of every service here, in seconds."""
SLOW_SECONDS = 2.0

# ---------------------------------------------------------------------------------------------
# Helpers


def rule_env(
    server: ScrapeServer, plugin_env: Mapping[str, str], **settings: str
) -> dict[str, str]:
    return {
        "SCRAPE_URL": server.url,
        "METRIC_NAME": "queue_depth",
        "THRESHOLD": ">80",
        "POLLING_INTERVAL": f"{int(POLL * 1000)}ms",
        "ACTION_PLUGIN": "recorder",
        **plugin_env,
        **settings,
    }


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(x) for x in text.splitlines(keepends=True) if x.endswith("\n") and x.strip()]


def saved_base(state: Path) -> dict[str, Any] | None:
    """The base level of the one series of rule ``queue_depth`` in the state file."""
    try:
        doc = json.loads(state.read_text())
    except (FileNotFoundError, ValueError):
        return None
    series = doc["rules"]["queue_depth"]["series"]
    return dict(series[0]["base"]) if series else None


def wait_polls(svc: Service, server: ScrapeServer, count: int) -> None:
    target = server.requests + count
    svc.wait_until(
        lambda: server.requests >= target,
        EVENT_TIMEOUT,
        lambda: f"{count} more scrapes (have {server.requests}, want {target})",
    )


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


def lines_with(svc: Service, text: str) -> list[str]:
    return [line for line in svc.stderr().splitlines() if text in line]


# ---------------------------------------------------------------------------------------------
# A plugin whose call takes a while, noting when it starts and when it finishes

_SLOW_PLUGIN = '''\
"""Test plugin slow_action: notes the start of a call, waits $SLOW_SECONDS, notes the end."""

import asyncio
import json
import os
import time


def _note(what, event):
    line = {"what": what, "kind": event.kind, "fire_count": event.fire_count,
            "t": time.monotonic()}
    with open(os.environ["SLOW_RECORD"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\\n")


class SlowAction:
    name = "slow_action"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        _note("start", event)
        await asyncio.sleep(float(os.environ["SLOW_SECONDS"]))
        _note("done", event)


Plugin = SlowAction()
'''


class SlowPlugin:
    def __init__(self, directory: Path) -> None:
        self.plugin_dir = directory / "slow_plugins"
        self.plugin_dir.mkdir(mode=0o755)
        path = self.plugin_dir / "slow_action.py"
        path.write_text(_SLOW_PLUGIN)
        path.chmod(0o644)
        self.record = directory / "slow_record.jsonl"

    @property
    def env(self) -> dict[str, str]:
        return {
            "PLUGIN_DIR": str(self.plugin_dir),
            "SLOW_RECORD": str(self.record),
            "SLOW_SECONDS": str(SLOW_SECONDS),
            "ACTION_PLUGIN": "slow_action",
        }

    def notes(self) -> list[dict[str, Any]]:
        return read_json_lines(self.record)

    def describe(self) -> str:
        return "--- slow_action notes ---\n" + "\n".join(json.dumps(n) for n in self.notes())

    def wait(self, svc: Service, what: str, count: int = 1) -> list[dict[str, Any]]:
        svc.extra_diagnostics = [self.describe]
        svc.wait_until(
            lambda: sum(n["what"] == what for n in self.notes()) >= count,
            EVENT_TIMEOUT,
            f"{count} {what!r} note(s) from slow_action",
        )
        return [n for n in self.notes() if n["what"] == what]


@pytest.fixture
def slow_plugin(tmp_path: Path) -> SlowPlugin:
    return SlowPlugin(tmp_path)


def stop_and_wait(svc: Service, timeout: float) -> tuple[int, float]:
    """SIGTERM; return the exit code and how long the exit took."""
    sent = time.monotonic()
    code = svc.stop(signal.SIGTERM, timeout=timeout)
    return code, time.monotonic() - sent


# ---------------------------------------------------------------------------------------------
# Signals during a plugin call


def test_sigterm_during_a_plugin_call_lets_it_finish_and_records_it_as_done(
    scrape_server: ScrapeServer, slow_plugin: SlowPlugin, service: ServiceFactory, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, slow_plugin.env, STATE_FILE=str(state))
    scrape_server.set_value("queue_depth", 90)
    first = service(env)
    [start] = slow_plugin.wait(first, "start")
    code, took = stop_and_wait(first, timeout=SLOW_SECONDS + 10)
    detail = slow_plugin.describe() + "\n" + first.diagnostics()
    assert code == 0, detail
    [done] = [n for n in slow_plugin.notes() if n["what"] == "done"] or [None]
    assert done is not None, f"the call was not let finish\n{detail}"
    assert done["t"] - start["t"] >= SLOW_SECONDS - 0.05, detail
    assert took < SLOW_SECONDS + 3.0, f"the stop waited longer than the call\n{detail}"
    assert lines_with(first, "waiting up to 10s for running plugin calls"), detail
    assert lines_with(first, "execute succeeded"), detail
    assert not lines_with(first, "abandoning"), detail
    # The state file says the call is done: a fire that succeeded, nothing owed.
    level = saved_base(state)
    assert level is not None, detail
    assert level["state"] == "firing" and level["fire_count"] == 1, level
    assert level["due"] is None, level
    assert level["last_action"]["kind"] == "fire" and level["last_action"]["ok"] is True, level
    # So a restart does not run it again (BACKOFF_DELAY 0: once per breach).
    second = service(env)
    second.wait_until(
        lambda: lines_with(second, "restored 1 series (0 pending, 1 firing)"),
        EVENT_TIMEOUT,
        "the firing breach to be restored",
    )
    wait_polls(second, scrape_server, 8)
    assert [n["what"] for n in slow_plugin.notes()] == ["start", "done"], slow_plugin.describe()


@pytest.mark.parametrize("how", ["second SIGTERM", "SIGKILL"])
def test_a_call_cut_short_by_the_stop_runs_again_after_the_restart(
    how: str,
    scrape_server: ScrapeServer,
    slow_plugin: SlowPlugin,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    """The at-least-once edge: a call that never finished is still owed after a restart."""
    state = tmp_path / "state.json"
    env = rule_env(scrape_server, slow_plugin.env, STATE_FILE=str(state))
    scrape_server.set_value("queue_depth", 90)
    first = service(env)
    slow_plugin.wait(first, "start")
    # The call in flight is saved as owed once it is handed out.
    first.wait_until(
        lambda: (saved_base(state) or {}).get("due") == "fire",
        EVENT_TIMEOUT,
        "the state file to show the fire as owed",
    )
    if how == "SIGKILL":
        assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    else:
        first.proc.send_signal(signal.SIGTERM)
        first.wait_until(
            lambda: lines_with(first, "waiting up to"), EVENT_TIMEOUT, "the grace period"
        )
        code, took = stop_and_wait(first, timeout=5)
        assert code == 0, first.diagnostics()
        assert took < SLOW_SECONDS, f"the second signal did not stop at once\n{first.diagnostics()}"
        assert lines_with(first, "stopping now, abandoning plugin calls"), first.diagnostics()
    assert [n["what"] for n in slow_plugin.notes()] == ["start"], slow_plugin.describe()
    level = saved_base(state)
    assert level is not None and level["due"] == "fire" and level["fire_count"] == 0, level

    second = service(env)
    second.wait_until(
        lambda: lines_with(second, "1 action(s) owed"), EVENT_TIMEOUT, "the owed fire restored"
    )
    notes = slow_plugin.wait(second, "done")
    assert [n["what"] for n in slow_plugin.notes()] == ["start", "start", "done"], notes
    assert slow_plugin.notes()[1]["kind"] == "fire", slow_plugin.describe()
    second.wait_until(
        lambda: (saved_base(state) or {}).get("fire_count") == 1,
        EVENT_TIMEOUT,
        "the state file to record the fire as done",
    )
    wait_polls(second, scrape_server, 6)
    assert len(slow_plugin.notes()) == 3, slow_plugin.describe()


# ---------------------------------------------------------------------------------------------
# A full disk: a small tmpfs in a private mount namespace

TMPFS_SIZE = "256k"


def _namespaces_allowed() -> str | None:
    """None if ``unshare -m`` + ``mount -t tmpfs`` work here; otherwise why not."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare or mount is not installed"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        return f"a private mount namespace with a tmpfs is not permitted: {probe.stderr.strip()}"
    return None


@pytest.fixture(scope="module")
def namespaces() -> None:
    reason = _namespaces_allowed()
    if reason is not None:
        pytest.skip(f"disk-full tests need unshare -m and mount (as root): {reason}")


class SmallDisk:
    """A service running in its own mount namespace with a small tmpfs over ``directory``."""

    def __init__(self, directory: Path, svc: Service) -> None:
        self.directory = directory
        self.svc = svc

    def path(self, *parts: str) -> Path:
        """A path inside the tmpfs as the test can reach it (through the service's root)."""
        return Path(f"/proc/{self.svc.proc.pid}/root{self.directory}", *parts)

    def mounted(self) -> bool:
        try:
            mounts = Path(f"/proc/{self.svc.proc.pid}/mounts").read_text()
        except OSError:
            return False
        return f" {self.directory} tmpfs " in mounts

    def fill(self, leave: int = 0) -> int:
        """Fill the tmpfs, then free ``leave`` bytes again; return the bytes written."""
        written = 0
        block = b"\xff" * 4096
        with open(self.path("filler"), "wb", buffering=0) as out:
            try:
                while True:
                    written += out.write(block) or 0
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        if leave:
            os.truncate(self.path("filler"), max(written - leave, 0))
        return written

    def free(self) -> None:
        self.path("filler").unlink()


@pytest.fixture
def small_disk(
    namespaces: None, tmp_path: Path
) -> Iterator[Callable[[Mapping[str, str]], SmallDisk]]:
    started: list[Service] = []

    def start(env: Mapping[str, str]) -> SmallDisk:
        directory = tmp_path / "small"
        directory.mkdir()
        full_env = base_env({"LOG_LEVEL": "debug", **env})
        script = f'mount -t tmpfs -o size={TMPFS_SIZE},mode=0755 tmpfs "$1" && shift && exec "$@"'
        argv = ["unshare", "-m", "sh", "-c", script, "sh", str(directory)]
        argv += [sys.executable, "-m", "metric_reader"]
        stdout, stderr = tmp_path / "small.stdout", tmp_path / "small.stderr"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        svc = Service(proc, argv, full_env, stdout, stderr)
        started.append(svc)
        disk = SmallDisk(directory, svc)
        svc.wait_until(disk.mounted, EVENT_TIMEOUT, f"the tmpfs over {directory}")
        return disk

    yield start
    for svc in started:
        if svc.alive():
            with contextlib.suppress(AssertionError):
                svc.stop(signal.SIGTERM)


def test_a_full_disk_under_the_state_file_is_logged_once_and_recovers(
    small_disk: Callable[[Mapping[str, str]], SmallDisk],
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    tmp_path: Path,
) -> None:
    scrape_server.set_value("queue_depth", 10)
    disk = small_disk(
        rule_env(
            scrape_server,
            recording_plugin_dir.env,
            STATE_FILE=str(tmp_path / "small" / "state.json"),
        )
    )
    svc = disk.svc
    svc.extra_diagnostics = [recording_plugin_dir.describe]
    state_dir = disk.path()
    svc.wait_until(lambda: (state_dir / "state.json").exists(), EVENT_TIMEOUT, "a state file")
    assert not (disk.directory / "state.json").exists(), "the state file is not on the tmpfs"
    wait_polls(svc, scrape_server, 2)
    saved = (state_dir / "state.json").read_text()
    disk.fill()
    # Breaches begin and end while nothing can be written: each change tries a write.
    calls = 0
    for _ in range(3):
        scrape_server.set_value("queue_depth", 90)
        calls += 1
        wait_records(svc, recording_plugin_dir, calls)
        scrape_server.set_value("queue_depth", 10)
        calls += 1
        wait_records(svc, recording_plugin_dir, calls)
    assert svc.alive(), svc.diagnostics()
    errors = lines_with(svc, "cannot write the state file")
    assert len(errors) == 1, f"not logged once (throttled)\n{svc.diagnostics()}"
    assert "ERROR" in errors[0] and "No space left on device" in errors[0], errors[0]
    assert [r["kind"] for r in recording_plugin_dir.records()] == ["fire", "resolve"] * 3
    # The file still holds the last document written before the disk filled, whole.
    assert (state_dir / "state.json").read_text() == saved

    disk.free()
    scrape_server.set_value("queue_depth", 90)
    wait_records(svc, recording_plugin_dir, calls + 1)
    recovered = svc.wait_until(
        lambda: lines_with(svc, "state file written again"),
        EVENT_TIMEOUT,
        "the state file to be written again",
    )
    assert "failed_writes=" in recovered[0], recovered
    svc.wait_until(
        lambda: (saved_base(state_dir / "state.json") or {}).get("fire_count") == 1,
        EVENT_TIMEOUT,
        "the state file to show the new fire",
    )
    assert not list(state_dir.glob(".state.json.*")), "a temporary file was left behind"
    assert "Traceback" not in svc.stderr(), svc.diagnostics()
    assert svc.stop(signal.SIGTERM) == 0, svc.diagnostics()


def test_a_full_disk_under_file_action_fails_the_call_which_is_retried_until_space_is_freed(
    small_disk: Callable[[Mapping[str, str]], SmallDisk],
    scrape_server: ScrapeServer,
    tmp_path: Path,
) -> None:
    size = 64 * 1024
    files = tmp_path / "small" / "files"
    scrape_server.set_value("queue_depth", 10)
    disk = small_disk(
        rule_env(
            scrape_server,
            {},
            ACTION_PLUGIN="file_action",
            FILE_ACTION_DIR=str(files),
            FILE_ACTION_SIZE=str(size),
        )
    )
    svc = disk.svc
    wait_polls(svc, scrape_server, 2)
    disk.fill(leave=size // 2)  # room for half a file
    scrape_server.set_value("queue_depth", 90)
    # Retried with exponential backoff: 250 ms, 500 ms, 1 s, ...: four failures in ~2 s.
    failures = svc.wait_until(
        lambda: (lambda found: found if len(found) >= 4 else None)(
            lines_with(svc, "execute failed")
        ),
        EVENT_TIMEOUT,
        "four failed file_action calls",
    )
    assert all("does not fit" in line and "kind=fire" in line for line in failures), failures
    assert not lines_with(svc, "execute succeeded"), svc.diagnostics()
    inside = disk.path("files")
    assert not list(inside.iterdir()), "a partial file was left behind"
    assert svc.alive(), svc.diagnostics()

    disk.free()
    svc.wait_until(
        lambda: lines_with(svc, "execute succeeded"), EVENT_TIMEOUT, "a successful retry"
    )
    [written] = list(inside.iterdir())
    assert written.stat().st_size == size
    wait_polls(svc, scrape_server, 4)
    assert len(lines_with(svc, "execute succeeded")) == 1, "ran more than once after success"
    assert "Traceback" not in svc.stderr(), svc.diagnostics()
    assert svc.stop(signal.SIGTERM) == 0, svc.diagnostics()


# ---------------------------------------------------------------------------------------------
# Wall-clock jumps (libfaketime)


def _libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        pytest.fail(
            "libfaketime not found (/usr/lib/*/faketime/libfaketimeMT.so.1): the clock-jump "
            "tests need Debian's package 'faketime' (.ci/run installs it)",
            pytrace=False,
        )
    return found[0]


class FakeClock:
    """The wall clock of the processes started with ``env``: moved by rewriting a file."""

    def __init__(self, directory: Path, offset: str = "+0") -> None:
        self.file = directory / "faketime.txt"
        self.set(offset)
        self.env = {
            "LD_PRELOAD": _libfaketime(),
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }

    def set(self, offset: str) -> None:
        """``+1h``, ``-3600``, ...: the offset from the real wall clock, from now on."""
        temporary = self.file.with_suffix(".tmp")
        temporary.write_text(offset + "\n")
        temporary.replace(self.file)


HOUR = 3600.0


@pytest.mark.parametrize("jump", [+1, -1], ids=["+1h", "-1h"])
def test_a_wall_clock_jump_mid_breach_keeps_the_monotonic_schedule(
    jump: int,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    duration, backoff = 4.0, 3.0
    clock = FakeClock(tmp_path)
    state = tmp_path / "state.json"
    env = rule_env(
        scrape_server,
        recording_plugin_dir.env,
        THRESHOLD_DURATION="4s",
        BACKOFF_DELAY="3s",
        STATE_FILE=str(state),
        **clock.env,
    )
    scrape_server.set_value("queue_depth", 10)
    svc = service(env)
    wait_polls(svc, scrape_server, 2)
    breach = time.monotonic()
    scrape_server.set_value("queue_depth", 90)
    svc.wait_until(lambda: time.monotonic() >= breach + 2.0, EVENT_TIMEOUT, "2 s of pending")
    clock.set(f"{jump:+d}h")  # mid-pending
    [fire] = wait_records(svc, recording_plugin_dir, 1)
    clock.set(f"{2 * jump:+d}h")  # mid-backoff, the same way again
    records = wait_records(svc, recording_plugin_dir, 3)
    scrape_server.set_value("queue_depth", 10)
    records = wait_records(svc, recording_plugin_dir, 4)
    detail = recording_plugin_dir.describe() + "\n" + svc.diagnostics()
    fire, first, second, resolve = records
    assert [r["kind"] for r in records] == ["fire", "repeat", "repeat", "resolve"], detail
    # The breach is seen at the first poll after it began (within POLL), fires once it has
    # lasted the duration on the monotonic clock: no sooner, and a poll or two later at
    # most, give or take what a busy 2-core machine adds (``late``), nowhere near the hour
    # a wall-clock schedule would be off by.
    late = 2 * POLL + 1.5
    assert breach + duration <= fire["t"] <= breach + duration + late, detail
    assert duration - 0.01 <= fire["duration_s"] <= duration + late, detail
    for earlier, later in ((fire, first), (first, second)):
        # Repeats are due on the poll grid, exactly one backoff apart on the schedule (the
        # breach durations told to the plugin); each call starts when a busy machine gets
        # to it, so the gap between the calls themselves varies by up to ``late``.
        assert abs(later["duration_s"] - earlier["duration_s"] - backoff) < 0.01, detail
        assert backoff - late <= later["t"] - earlier["t"] <= backoff + late, detail
    assert abs(resolve["duration_s"] - (resolve["t"] - breach)) < 1.0, detail
    # The jumps did happen: the state file's times are on the jumped wall clock.
    written = json.loads(state.read_text())["written_at"]
    assert abs(written - (time.time() + 2 * jump * HOUR)) < 60, (written, time.time())
    assert "Traceback" not in svc.stderr(), detail


@pytest.mark.parametrize("timer", ["pending", "backoff"])
def test_a_state_file_written_in_the_future_neither_stretches_nor_cuts_a_timer(
    timer: str,
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    """The first run's wall clock is an hour ahead of the second's (the clock was set back
    between the runs). The file is read as if written at the restart: the time the breach
    had lasted is kept, the restart gap is not counted, and nothing waits an hour."""
    state = tmp_path / "state.json"
    settings = {"THRESHOLD_DURATION": "8s"} if timer == "pending" else {"BACKOFF_DELAY": "10s"}
    env = rule_env(scrape_server, recording_plugin_dir.env, STATE_FILE=str(state), **settings)
    clock = FakeClock(tmp_path, "+1h")
    scrape_server.set_value("queue_depth", 10)
    first = service({**env, **clock.env})
    wait_polls(first, scrape_server, 2)
    scrape_server.set_value("queue_depth", 90)
    if timer == "pending":
        total, elapsed = 8.0, 4.0
        start = time.monotonic()  # the breach begins at the next poll: within POLL
        first.wait_until(
            lambda: (saved_base(state) or {}).get("state") == "pending",
            EVENT_TIMEOUT,
            "a pending breach in the state file",
        )
    else:
        total, elapsed = 10.0, 5.0
        [fire] = wait_records(first, recording_plugin_dir, 1)
        start = fire["t"]
    first.wait_until(lambda: time.monotonic() >= start + elapsed, EVENT_TIMEOUT, "time to pass")
    assert first.stop(signal.SIGTERM) == 0, first.diagnostics()
    written_at = json.loads(state.read_text())["written_at"]
    assert written_at > time.time() + HOUR - 60, "the first run's clock was not ahead"

    restart = time.monotonic()
    second = service(env)
    expected_kind = "fire" if timer == "pending" else "repeat"
    count = 1 if timer == "pending" else 2
    records = wait_records(second, recording_plugin_dir, count, timeout=total + EVENT_TIMEOUT)
    call = records[-1]
    detail = recording_plugin_dir.describe() + "\n" + second.diagnostics()
    assert call["kind"] == expected_kind, detail
    assert lines_with(second, "in the future (the wall clock went back?)"), detail
    remaining = total - elapsed
    # Not cut: the remaining part of the timer runs after the restart (restore comes after
    # the start); not stretched: it is not the whole timer again (nor an hour).
    assert call["t"] >= restart + remaining - POLL - 0.2, f"the timer was cut\n{detail}"
    assert call["t"] <= restart + total - 1.0, f"the timer was stretched\n{detail}"
    assert second.stop(signal.SIGTERM) == 0, detail


# ---------------------------------------------------------------------------------------------
# SIGHUP: reloads (tests/integration/test_reload.py); it never stops the service


def test_sighup_reloads_and_never_stops_the_service_and_sigterm_still_stops_cleanly(
    scrape_server: ScrapeServer,
    recording_plugin_dir: RecordingPlugins,
    service: ServiceFactory,
    tmp_path: Path,
) -> None:
    """A ``kill -HUP`` (a reload, or a terminal's hang-up) never ends the watching, and an
    unchanged configuration keeps the rule's state: it does not fire again."""
    state = tmp_path / "state.json"
    scrape_server.set_value("queue_depth", 90)
    svc = service(rule_env(scrape_server, recording_plugin_dir.env, STATE_FILE=str(state)))
    wait_records(svc, recording_plugin_dir, 1)
    for _ in range(2):  # two at once may arrive as one: signals of a kind do not queue
        svc.proc.send_signal(signal.SIGHUP)
    svc.wait_until(lambda: lines_with(svc, "configuration reloaded"), EVENT_TIMEOUT, "the reload")
    wait_polls(svc, scrape_server, 4)
    assert svc.alive(), svc.diagnostics()
    [line, *_] = lines_with(svc, "configuration reloaded")
    assert "unchanged, every rule goes on as it was" in line, line
    assert not lines_with(svc, "stopping"), svc.diagnostics()
    assert len(recording_plugin_dir.records()) == 1  # kept: no second fire
    assert svc.stop(signal.SIGTERM) == 0, svc.diagnostics()
    assert lines_with(svc, "stopped"), svc.diagnostics()
    assert (saved_base(state) or {}).get("fire_count") == 1, state.read_text()
