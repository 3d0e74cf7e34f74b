"""Fault injection on plugins: whatever a plugin does, the service keeps running and polling,
and each misdeed is logged and counted as that plugin's failure."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from integration.conftest import REPO_ROOT, ServiceFactory, _http_get, base_env, free_port

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._service import Service

from .conftest import FaultServer, Logs

DEADLINE = 15.0

PLUGINS = '''
import asyncio
import sys
import threading
import time


class Boom(BaseException):
    """Not an Exception: like SystemExit and KeyboardInterrupt, easy to let through."""


class Base:
    release = threading.Event()  # set at teardown: a blocked call ends with the test

    def __init__(self, name, action):
        self.name, self.action = name, action
        self.calls = 0

    def execute(self, metric_name, value, threshold, duration):
        self.calls += 1
        return self.action()


class Async(Base):
    async def execute(self, metric_name, value, threshold, duration):
        self.calls += 1
        result = self.action()
        if asyncio.iscoroutine(result):
            return await result
        return result


def raise_(exc):
    raise exc


async def done():
    return None


PLUGIN = {
    "raises": lambda: Async("raises", lambda: raise_(RuntimeError("ticket system down"))),
    "hangs": lambda: Async("hangs", lambda: asyncio.sleep(3600)),
    "blocks": lambda: Base("blocks", lambda: Base.release.wait(60)),
    "exits": lambda: Base("exits", lambda: sys.exit(3)),
    "exits_async": lambda: Async("exits_async", lambda: sys.exit(0)),
    "interrupts": lambda: Async("interrupts", lambda: raise_(KeyboardInterrupt())),
    "interrupts_sync": lambda: Base("interrupts_sync", lambda: raise_(KeyboardInterrupt())),
    "booms": lambda: Async("booms", lambda: raise_(Boom("custom"))),
    "booms_sync": lambda: Base("booms_sync", lambda: raise_(Boom("custom"))),
    "coroutine": lambda: Base("coroutine", done),
    "number": lambda: Base("number", lambda: 42),
}
'''

# plugin -> (result counted, what the log says)
FAILING = {
    "raises": ("failure", "RuntimeError: ticket system down"),
    "hangs": ("timeout", "timed out after 1s"),
    "blocks": ("timeout", "timed out after 1s"),
    "exits": ("failure", "SystemExit: 3"),
    "exits_async": ("failure", "SystemExit"),
    "interrupts": ("failure", "KeyboardInterrupt"),
    "interrupts_sync": ("failure", "KeyboardInterrupt"),
    "booms": ("failure", "Boom: custom"),
    "booms_sync": ("failure", "Boom: custom"),
}
ODD_RETURNS = ["coroutine", "number"]


def plugin_dir(tmp_path: Path, name: str) -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "_common.py").write_text(PLUGINS)  # a leading _: not a plugin file itself
    (plugins / f"{name}.py").write_text(
        "import importlib.util, pathlib\n"
        "_spec = importlib.util.spec_from_file_location(\n"
        "    'fault_plugins_common', pathlib.Path(__file__).with_name('_common.py'))\n"
        "_common = importlib.util.module_from_spec(_spec)\n"
        "_spec.loader.exec_module(_common)\n"
        f"Plugin = _common.PLUGIN[{name!r}]()\n"
    )
    plugins.chmod(0o755)
    return plugins


def run_with_plugin(
    tmp_path: Path, server: FaultServer, name: str, logs: Logs, done: str
) -> tuple[Service, list[float]]:
    """Poll a breached value every 100 ms with plugin ``name`` until ``done`` says so, then
    for five more polls; return the service and the poll times of the page."""
    settings = load_settings(
        {
            "SCRAPE_URL": server.scrape_url("healthy"),
            "METRIC_NAME": "fault_value",
            "THRESHOLD": ">50",
            "BACKOFF_DELAY": "100ms",
            "POLLING_INTERVAL": "100ms",
            # Long enough that polling held up by a call would show as a gap of over 1 s,
            # far from the 100 ms a healthy service keeps, even on a busy machine.
            "PLUGIN_TIMEOUT": "1s",
            "PLUGIN_DIR": str(plugin_dir(tmp_path, name)),
            "ACTION_PLUGIN": name,
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))
    assert name in service.catalog.plugins, service.catalog.problems

    def calls(result: str) -> float:
        value = service.metrics.registry.get_sample_value(
            "metric_reader_plugin_calls_total",
            {"plugin": name, "method": "execute", "result": result},
        )
        return value or 0.0

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(service.run)
            deadline = time.monotonic() + DEADLINE
            while calls(done) < 2:
                assert time.monotonic() < deadline, f"no 2 {done} calls\n{logs.dump()}"
                await anyio.sleep(0.01)
            polls = server.count("healthy")
            while server.count("healthy") < polls + 5:
                assert time.monotonic() < deadline, f"polling stopped\n{logs.dump()}"
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    except BaseException as exc:  # a KeyboardInterrupt must not reach pytest as one
        raise AssertionError(f"the service let {exc!r} through\n{logs.dump()}") from exc
    finally:
        service.catalog.plugins[name].obj.release.set()  # type: ignore[attr-defined]
    return service, server.times("healthy")


@pytest.mark.parametrize("name", list(FAILING))
def test_a_misbehaving_plugin_is_a_failure_and_polling_goes_on(
    name: str, fault_server: FaultServer, logs: Logs, tmp_path: Path
) -> None:
    result, says = FAILING[name]
    _service, times = run_with_plugin(tmp_path, fault_server, name, logs, result)
    verb = "timed out" if result == "timeout" else "failed"
    failures = logs.find(f"execute {verb}", level="ERROR", plugin=name, rule="fault_value")
    assert len(failures) >= 2, logs.dump()
    assert all(says in line.message for line in failures), [x.message for x in failures]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 0.7, f"polling stalled {max(gaps):.3f}s"


@pytest.mark.parametrize("name", ODD_RETURNS)
def test_an_odd_return_value_does_not_upset_the_service(
    name: str, fault_server: FaultServer, logs: Logs, tmp_path: Path
) -> None:
    """A plain def returning a coroutine has it awaited; any other value is ignored."""
    run_with_plugin(tmp_path, fault_server, name, logs, "success")
    assert logs.find("execute succeeded", plugin=name)
    if name == "number":
        assert logs.find("execute returned 42; ignored", plugin=name)


IMPORT_CRASHES = {
    "crash_error": "raise RuntimeError('no config')",
    "crash_exit": "import sys\nsys.exit(1)",
    "crash_boom": "class Boom(BaseException):\n    pass\nraise Boom('at import')",
    "crash_interrupt": "raise KeyboardInterrupt",
}


def test_plugins_crashing_on_import_added_while_running_are_reported_and_polling_goes_on(
    fault_server: FaultServer, logs: Logs, tmp_path: Path
) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    plugins.chmod(0o755)
    settings = load_settings(
        {
            "SCRAPE_URL": fault_server.scrape_url("healthy"),
            "METRIC_NAME": "fault_value",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_DIR": str(plugins),
        }
    )
    service = Service(settings, discover_plugins(settings.plugin_dir))

    async def main() -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(service.run)
            for name, source in IMPORT_CRASHES.items():
                (plugins / f"{name}.py").write_text(source + "\n")
            deadline = time.monotonic() + DEADLINE
            while len(logs.find("not loaded", level="WARNING")) < len(IMPORT_CRASHES):
                assert time.monotonic() < deadline, logs.dump()
                await anyio.sleep(0.05)
            polls = fault_server.count("healthy")
            while fault_server.count("healthy") < polls + 5:
                assert time.monotonic() < deadline, logs.dump()
                await anyio.sleep(0.01)
            group.cancel_scope.cancel()

    try:
        anyio.run(main)
    except BaseException as exc:
        raise AssertionError(f"the service let {exc!r} through\n{logs.dump()}") from exc
    for name in IMPORT_CRASHES:
        [line] = logs.find("not loaded", level="WARNING", file=str(plugins / f"{name}.py"))
        assert "while being imported" in line.message, line.message


# --- real processes ---------------------------------------------------------------------------


def _records(text: str) -> list[dict[str, object]]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_sys_exit_in_a_plugin_is_a_failure_not_an_exit(
    fault_server: FaultServer, service: ServiceFactory, tmp_path: Path
) -> None:
    """In a real ``python -m metric_reader``: the plugin calls ``sys.exit`` at every try, the
    process stays up and goes on polling. Plugin files that exit or interrupt while being
    imported at start-up are reported and do not stop it either."""
    plugins = plugin_dir(tmp_path, "exits")
    for name, source in IMPORT_CRASHES.items():
        (plugins / f"{name}.py").write_text(source + "\n")
    svc = service(
        {
            "SCRAPE_URL": fault_server.scrape_url("healthy"),
            "METRIC_NAME": "fault_value",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_DIR": str(plugins),
            "ACTION_PLUGIN": "exits",
            "LOG_FORMAT": "json",
        }
    )

    def failures() -> int:
        return sum(
            1
            for r in _records(svc.output())
            if r.get("plugin") == "exits" and "execute failed" in str(r.get("message"))
        )

    svc.wait_until(lambda: failures() >= 3, DEADLINE, "three failed sys.exit calls")
    polls = fault_server.count("healthy")
    svc.wait_until(lambda: fault_server.count("healthy") >= polls + 5, DEADLINE, "more polls")
    assert svc.alive()
    messages = [str(r.get("message")) for r in _records(svc.output())]
    assert any("SystemExit: 3" in m for m in messages)
    for name in IMPORT_CRASHES:
        assert any(name in m and "not loaded" in m for m in messages) or any(
            r.get("file", "").endswith(f"{name}.py")  # type: ignore[union-attr]
            for r in _records(svc.output())
            if "not loaded" in str(r.get("message"))
        ), name
    assert svc.stop() == 0


# --- plugins that hang where no cancellation reaches: real processes ---------------------------

HANGING_PLUGINS = {
    # the plugin guide's own advice for blocking work, without abandon_on_cancel
    "to_thread": "async def execute(self, *args):\n"
    "        await anyio.to_thread.run_sync(time.sleep, 3600)",
    "executor": "async def execute(self, *args):\n"
    "        await asyncio.get_running_loop().run_in_executor(None, time.sleep, 3600)",
    "own_executor": "async def execute(self, *args):\n"
    "        pool = concurrent.futures.ThreadPoolExecutor(1)\n"
    "        await asyncio.wrap_future(pool.submit(time.sleep, 3600))",
    "blocks_its_loop": "async def execute(self, *args):\n        time.sleep(3600)",
    "own_thread": "def execute(self, *args):\n"
    "        worker = threading.Thread(target=time.sleep, args=(3600,))\n"
    "        worker.start()\n"
    "        worker.join()",
    "sync": "def execute(self, *args):\n        time.sleep(3600)",
}


def hanging_plugin_dir(tmp_path: Path, name: str) -> Path:
    plugins = tmp_path / "hanging"
    plugins.mkdir(mode=0o755)
    (plugins / f"{name}.py").write_text(
        "import asyncio, concurrent.futures, threading, time\n"
        "import anyio, anyio.to_thread\n\n\n"
        "class Hangs:\n"
        f"    name = {name!r}\n\n"
        f"    {HANGING_PLUGINS[name]}\n\n\n"
        "Plugin = Hangs()\n"
    )
    return plugins


@pytest.mark.parametrize("name", list(HANGING_PLUGINS))
def test_a_plugin_hung_beyond_cancellation_times_out_and_sigterm_still_exits_cleanly(
    name: str, fault_server: FaultServer, service: ServiceFactory, tmp_path: Path
) -> None:
    """Whatever the plugin hangs in, the service counts the call as timed out at
    PLUGIN_TIMEOUT, retries it, and a SIGTERM ends the process well within the grace
    period, exit 0, with the state file written (the fire still owed)."""
    state = tmp_path / "state.json"
    svc = service(
        {
            "SCRAPE_URL": fault_server.scrape_url("healthy"),
            "METRIC_NAME": "fault_value",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "250ms",
            "PLUGIN_TIMEOUT": "1s",
            "PLUGIN_DIR": str(hanging_plugin_dir(tmp_path, name)),
            "ACTION_PLUGIN": name,
            "STATE_FILE": str(state),
            "LOG_FORMAT": "json",
        }
    )

    def timeouts() -> list[dict[str, object]]:
        return [
            r
            for r in _records(svc.output())
            if r.get("plugin") == name and "execute timed out" in str(r.get("message"))
        ]

    found = svc.wait_until(lambda: len(timeouts()) >= 2 and timeouts(), DEADLINE, "2 timeouts")
    for record in found:
        assert "timed out after 1s" in str(record["message"]), record
        # uvloop (a loop the service can run on) keeps its timers in whole milliseconds of a
        # clock read at the start of a loop iteration: a 1 s timeout may end up to 1 ms early.
        assert 0.998 <= float(record["seconds"]) < 1.5, record  # type: ignore[arg-type]
    polls = fault_server.count("healthy")
    svc.wait_until(lambda: fault_server.count("healthy") >= polls + 4, DEADLINE, "more polls")

    sent = time.monotonic()
    code = svc.stop(timeout=DEADLINE)
    took = time.monotonic() - sent
    assert code == 0, svc.diagnostics()
    # A call in flight at the SIGTERM has the grace period to end, and ends at its timeout.
    assert took < 1.0 + 3.0, f"the stop took {took:.1f}s\n{svc.diagnostics()}"
    messages = [str(r.get("message")) for r in _records(svc.output())]
    assert "stopped" in messages, svc.diagnostics()
    [series] = json.loads(state.read_text())["rules"]["fault_value"]["series"]
    assert series["base"]["due"] == "fire" and series["base"]["failures"] >= 2, series


# --- plugin files whose loading hangs -----------------------------------------------------------

HANGING_IMPORTS = {
    "sleeps": "import time\ntime.sleep(10**6)\n",
    "spins": "while True:\n    pass\n",
    "reads": "import socket\nmine, theirs = socket.socketpair()\nmine.recv(1)\n",
    "validates": "import time\n\n\nclass P:\n    name = 'validates'\n\n"
    "    def execute(self, *args):\n        pass\n\n"
    "    def validate_config(self):\n        time.sleep(10**6)\n\n\nPlugin = P()\n",
}


def recording_plugin(path: Path, version: str, record: Path) -> None:
    path.write_text(
        "class Good:\n"
        "    name = 'good'\n\n"
        "    def execute(self, *args):\n"
        f"        with open({str(record)!r}, 'a') as out:\n"
        f"            out.write({version!r} + '\\n')\n\n\n"
        "Plugin = Good()\n"
    )
    path.chmod(0o644)


def test_plugin_files_whose_loading_hangs_are_skipped_and_the_others_reload(
    fault_server: FaultServer, service: ServiceFactory, tmp_path: Path
) -> None:
    """Hanging files dropped into PLUGIN_DIR together with a change to the plugin in use:
    each hanging one is reported at PLUGIN_TIMEOUT, the changed one is loaded and used,
    and polling and /healthz never stop."""
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    record = tmp_path / "calls.txt"
    recording_plugin(plugins / "good.py", "v1", record)
    port = free_port()
    fault_server.value = 10.0
    svc = service(
        {
            "SCRAPE_URL": fault_server.scrape_url("healthy"),
            "METRIC_NAME": "fault_value",
            "THRESHOLD": ">50",
            "POLLING_INTERVAL": "100ms",
            "PLUGIN_TIMEOUT": "2s",
            "PLUGIN_DIR": str(plugins),
            "ACTION_PLUGIN": "good",
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
        }
    )
    svc.wait_until(lambda: "watching PLUGIN_DIR" in svc.stderr(), DEADLINE, "the watcher")
    for name, source in HANGING_IMPORTS.items():
        (plugins / f"{name}.py").write_text(source)
    recording_plugin(plugins / "good.py", "v2", record)

    reloaded = svc.wait_until(
        lambda: "plugin good reloaded" in svc.stderr(), DEADLINE, "good.py reloaded"
    )
    assert reloaded
    for name in HANGING_IMPORTS:
        svc.wait_until(
            lambda name=name: f"{name}.py not loaded: " in svc.stderr(), DEADLINE, f"{name}.py"
        )
    stage = {"validates": "validate_config()"}
    for name in HANGING_IMPORTS:
        [line] = [x for x in svc.stderr().splitlines() if f"{name}.py not loaded: " in x]
        assert f"{stage.get(name, 'import')} did not finish within 2s; skipped" in line, line
    for _ in range(5):  # the event loop and the HTTP endpoints were never held up
        status, _body = _http_get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
        assert status == 200
    polls = fault_server.count("healthy")
    fault_server.value = 100.0
    svc.wait_until(lambda: record.exists() and record.read_text(), DEADLINE, "a call")
    assert record.read_text() == "v2\n"
    assert fault_server.count("healthy") > polls
    # The hanging files are not tried again while they stay as they are.
    svc.wait_until(lambda: fault_server.count("healthy") >= polls + 30, DEADLINE, "3 s more")
    for name in HANGING_IMPORTS:
        assert svc.stderr().count(f"{name}.py not loaded: ") == 1, svc.diagnostics()
    assert svc.stop() == 0, svc.diagnostics()


def check_with_hanging_file(tmp_path: Path, action_plugin: str) -> subprocess.CompletedProcess[str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir(mode=0o755)
    (plugins / "hangs.py").write_text("import time\ntime.sleep(10**6)\n")
    env = base_env(
        {
            "SCRAPE_URL": "http://127.0.0.1:9/metrics",
            "METRIC_NAME": "m",
            "THRESHOLD": ">1",
            "PLUGIN_TIMEOUT": "1s",
            "PLUGIN_DIR": str(plugins),
            "ACTION_PLUGIN": action_plugin,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "metric_reader", "check"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_check_names_a_hanging_plugin_in_use_and_exits_2(tmp_path: Path) -> None:
    started = time.monotonic()
    done = check_with_hanging_file(tmp_path, "hangs")
    assert time.monotonic() - started < 15
    assert done.returncode == 2, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "configuration error" in x]
    assert "ACTION_PLUGIN='hangs' cannot be loaded:" in line, line
    assert "hangs.py: import did not finish within 1s; skipped" in line, line


def test_check_warns_of_a_hanging_plugin_file_not_in_use_and_passes(tmp_path: Path) -> None:
    done = check_with_hanging_file(tmp_path, "log_action")
    assert done.returncode == 0, done.stderr
    [line] = [x for x in done.stderr.splitlines() if "plugin not loaded" in x and "hangs.py" in x]
    assert "import did not finish within 1s; skipped" in line, line
    assert "configuration OK" in done.stdout
