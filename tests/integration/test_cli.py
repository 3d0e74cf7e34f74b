"""The command line as a user meets it: configuration errors and stopping, via real processes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from metric_reader._cluster import ActionHistory
from metric_reader._core import HistoryEntry

from .conftest import (
    EVENT_TIMEOUT,
    REPO_ROOT,
    ScrapeServer,
    ServiceFactory,
    base_env,
    free_port,
    wait_until,
)
from .test_plugin_commands import describe, run_cli

# (case id, settings on top of a valid base, variable to name, bad value to quote, or for a
# missing setting the other variable the line must mention)
# A value of None removes the variable from the base.
BAD_CONFIGS: list[tuple[str, dict[str, str | None], str, str]] = [
    ("threshold-word", {"THRESHOLD": "abc"}, "THRESHOLD", "abc"),
    ("threshold-no-number", {"THRESHOLD": ">"}, "THRESHOLD", ">"),
    ("threshold-bad-operator", {"THRESHOLD": "=>80"}, "THRESHOLD", "=>80"),
    ("duration-no-unit", {"THRESHOLD_DURATION": "5"}, "THRESHOLD_DURATION", "5"),
    ("duration-negative", {"THRESHOLD_DURATION": "-1s"}, "THRESHOLD_DURATION", "-1s"),
    ("duration-days", {"THRESHOLD_DURATION": "1d"}, "THRESHOLD_DURATION", "1d"),
    ("backoff-bad", {"BACKOFF_DELAY": "soon"}, "BACKOFF_DELAY", "soon"),
    ("polling-zero", {"POLLING_INTERVAL": "0s"}, "POLLING_INTERVAL", "0s"),
    ("log-level", {"LOG_LEVEL": "verbose"}, "LOG_LEVEL", "verbose"),
    (
        "missing-value-behavior",
        {"MISSING_VALUE_BEHAVIOR": "sometimes"},
        "MISSING_VALUE_BEHAVIOR",
        "sometimes",
    ),
    ("log-format", {"LOG_FORMAT": "xml"}, "LOG_FORMAT", "xml"),
    ("no-metric-nor-query", {"METRIC_NAME": None}, "METRIC_NAME", "QUERY"),
    ("plugin-without-threshold", {"THRESHOLD": None}, "THRESHOLD", "ACTION_PLUGIN"),
    (
        "unknown-plugin",
        {"ACTION_PLUGIN": "no_such_plugin"},
        "ACTION_PLUGIN",
        "no_such_plugin",
    ),
    ("label-filters-unquoted", {"LABEL_FILTERS": "job=node"}, "LABEL_FILTERS", "job=node"),
    (
        "label-filters-unterminated",
        {"LABEL_FILTERS": 'job="node'},
        "LABEL_FILTERS",
        'job="node',
    ),
    (
        "label-filters-scrape-source",
        {"LABEL_FILTERS": "job~node", "SCRAPE_URL": "<scrape>"},
        "LABEL_FILTERS",
        "job~node",
    ),
    (
        "label-filters-lookaround",
        {"LABEL_FILTERS": 'instance=~"(?!db).*"', "SCRAPE_URL": "<scrape>"},
        "LABEL_FILTERS",
        "RE2 syntax",
    ),
    (
        "misspelt-variable",
        {"THRESHOLD_DURATON": "10s"},
        "THRESHOLD_DURATON",
        "did you mean THRESHOLD_DURATION?",
    ),
    ("dropped-underscore", {"METRICNAME": "x"}, "METRICNAME", "did you mean METRIC_NAME?"),
    ("fullwidth-digit-duration", {"POLLING_INTERVAL": "\uff11s"}, "POLLING_INTERVAL", "\uff11s"),
    ("arabic-indic-threshold", {"THRESHOLD": ">\u0668\u0660"}, "THRESHOLD", ">\u0668\u0660"),
    ("interval-below-1ms", {"POLLING_INTERVAL": "500us"}, "POLLING_INTERVAL", "at least 1ms"),
]


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """An empty PLUGIN_DIR (bundled plugins only)."""
    path = tmp_path / "plugins"
    path.mkdir()
    path.chmod(0o755)
    return path


@pytest.fixture
def counting_endpoint() -> Iterator[ScrapeServer]:
    """Where the service would read from: counts every request, so a config error can be
    shown to happen before any polling."""
    server = ScrapeServer()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    ("settings", "variable", "bad_value"),
    [pytest.param(s, v, b, id=i) for i, s, v, b in BAD_CONFIGS],
)
def test_bad_configuration_is_one_clear_line_and_exit_2(
    settings: dict[str, str | None],
    variable: str,
    bad_value: str,
    plugin_dir: Path,
    counting_endpoint: ScrapeServer,
) -> None:
    env: dict[str, str | None] = {
        "PROMETHEUS_ENDPOINT": counting_endpoint.base_url,
        "METRIC_NAME": "cli_metric",
        "THRESHOLD": ">80",
        "THRESHOLD_DURATION": "1s",
        "POLLING_INTERVAL": "250ms",
        "PLUGIN_DIR": str(plugin_dir),
        "ACTION_PLUGIN": "log_action",
    }
    env.update(settings)
    if env.get("SCRAPE_URL") == "<scrape>":
        env["SCRAPE_URL"] = counting_endpoint.url
    full_env = base_env({k: v for k, v in env.items() if v is not None})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "metric_reader"],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"the service accepted the configuration {settings} and kept running\n"
            f"stderr:\n{(exc.stderr or b'').decode(errors='replace')[-3000:]}",
            pytrace=False,
        )
    stderr = done.stderr.decode(errors="replace")
    shown = f"exit code {done.returncode}\nstderr:\n{stderr}\nstdout:\n{done.stdout.decode()}"
    assert done.returncode == 2, shown
    assert "Traceback" not in stderr, shown
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one non-empty line on stderr\n{shown}"
    assert len(stderr.strip().splitlines()) == 1, f"expected one line, no blank lines\n{shown}"
    assert variable in lines[0], f"the line does not name {variable}\n{shown}"
    assert bad_value in lines[0], f"the line does not quote {bad_value!r}\n{shown}"
    assert counting_endpoint.all_requests == 0, f"it polled before refusing the config\n{shown}"


_CHECKED = {"METRIC_NAME": "cli_metric", "THRESHOLD": ">80", "ACTION_PLUGIN": "log_action"}


@pytest.mark.parametrize(
    ("slip", "meant"),
    [("THRESHOLD_DURATON", "THRESHOLD_DURATION"), ("METRICNAME", "METRIC_NAME")],
)
def test_check_refuses_a_misspelt_variable_with_exit_2(slip: str, meant: str) -> None:
    """THRESHOLD_DURATON=10s was a warning and exit 0, and the rule fired at once."""
    done = run_cli("check", env={**_CHECKED, slip: "10s"})
    assert done.returncode == 2, done
    assert done.stderr.splitlines() == [
        f"metric-reader: configuration error: {slip} is not a known variable: did you mean "
        f"{meant}? (rename it, or unset it if it is not meant for metric-reader)"
    ]


def test_check_leaves_the_other_variables_of_a_pod_alone() -> None:
    done = run_cli(
        "check",
        env={
            **_CHECKED,
            "HOSTNAME": "metric-reader-0",
            "KUBERNETES_SERVICE_HOST": "10.0.0.1",
            "METRIC_READER_SERVICE_PORT": "9180",
            "FILE_ACTION_DIR": "/tmp",
            "MY_PLUGIN_TIMEOUT": "3s",
        },
    )
    assert done.returncode == 0, done
    assert "configuration OK" in done.stdout


# ---------------------------------------------------------------------------------------------
# LISTEN_ADDRESS that cannot be listened on


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that another process (this one) listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.mark.parametrize("where", ["taken", "not-local"])
def test_a_listen_address_that_cannot_be_bound_is_one_line_saying_what_to_set(
    where: str, taken_port: int
) -> None:
    address = f"127.0.0.1:{taken_port}" if where == "taken" else "192.0.2.1:9180"
    done = run_cli(
        env={
            "METRIC_NAME": "cli_metric",
            "PROMETHEUS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "LISTEN_ADDRESS": address,
        }
    )
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert (done.returncode, len(errors)) == (2, 1), done
    assert errors[0].startswith(
        f"metric-reader: configuration error: LISTEN_ADDRESS='{address}': cannot listen on "
        f"{address}: "
    ), done
    if where == "taken":
        assert "Address already in use; something else listens there: set " in errors[0]
        assert re.search(r"LISTEN_ADDRESS=127\.0\.0\.1:[0-9]+ or LISTEN_ADDRESS=off", errors[0])
    else:
        assert errors[0].endswith(
            "; set LISTEN_ADDRESS=:9180 (every interface) or 127.0.0.1:9180, or "
            "LISTEN_ADDRESS=off to serve no endpoints"
        ), done


def test_make_run_says_which_port_it_serves_on_when_9180_is_taken() -> None:
    """``make run`` (examples/demo.py) with the default port taken picks a free one."""
    holder = socket.socket()
    try:
        holder.bind(("", 9180))
        holder.listen()
    except OSError:
        pass  # another process has it: taken all the same
    env = base_env()
    del env["LISTEN_ADDRESS"]
    demo = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "examples" / "demo.py")],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert demo.stdout is not None
        said = [demo.stdout.readline() for _ in range(3)]
        taken = next((line for line in said if line.startswith("port 9180 is taken")), "")
        match = re.match(r"port 9180 is taken: serving on port ([0-9]+) instead", taken)
        assert match, said
        url = f"http://127.0.0.1:{match[1]}/healthz"
        wait_until(lambda: _answers(url), EVENT_TIMEOUT, f"{url} to answer")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGINT)
        demo.wait(timeout=30)
        holder.close()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------
# Stopping


class _Blackhole:
    """A port that accepts connections and never answers (a hung endpoint)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []

    def accepted(self) -> bool:
        try:
            conn, _ = self.sock.accept()
        except TimeoutError:
            return bool(self.held)
        self.held.append(conn)
        return True

    def close(self) -> None:
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize(
    ("sig", "entry", "down"),
    [
        pytest.param(sig, entry, down, id=f"{sig.name}-{entry}-{down}")
        for sig, entry, down in [
            (signal.SIGTERM, "python-m", "refused"),
            (signal.SIGINT, "python-m", "refused"),
            (signal.SIGTERM, "console-script", "refused"),
            (signal.SIGINT, "console-script", "refused"),
            (signal.SIGTERM, "python-m", "http-500"),
            (signal.SIGINT, "python-m", "hanging"),
            (signal.SIGTERM, "console-script", "hanging"),
        ]
    ],
)
def test_stops_with_exit_0_on_signal_while_the_endpoint_is_down(
    sig: signal.Signals,
    entry: str,
    down: str,
    service: ServiceFactory,
    scrape_server: ScrapeServer,
) -> None:
    env = {
        "METRIC_NAME": "cli_metric",
        "THRESHOLD": ">80",
        "THRESHOLD_DURATION": "1s",
        "POLLING_INTERVAL": "250ms",
        "ACTION_PLUGIN": "log_action",
    }
    blackhole: _Blackhole | None = None
    try:
        if down == "http-500":
            scrape_server.set_status(500)
            env["SCRAPE_URL"] = scrape_server.url
        elif down == "refused":
            env["PROMETHEUS_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
        else:
            blackhole = _Blackhole()
            env["SCRAPE_URL"] = f"http://127.0.0.1:{blackhole.port}/metrics"
        svc = service(env, use_console_script=entry == "console-script")

        # Wait for evidence that it is past start-up and polling.
        if down == "http-500":
            target = scrape_server.requests + 3
            svc.wait_until(
                lambda: scrape_server.requests >= target, EVENT_TIMEOUT, "3 failed scrapes"
            )
        elif down == "refused":
            port = env["PROMETHEUS_ENDPOINT"].rsplit(":", 1)[1]
            svc.wait_until(
                lambda: any(
                    port in line and any(w in line.lower() for w in ("error", "fail", "refused"))
                    for line in svc.output().splitlines()
                ),
                EVENT_TIMEOUT,
                f"a logged failure to read the endpoint (a line with port {port} and an error)",
            )
        else:
            assert blackhole is not None
            hole = blackhole
            svc.wait_until(hole.accepted, EVENT_TIMEOUT, "the service to connect to the endpoint")

        assert svc.alive(), svc.diagnostics()
        code = svc.stop(sig, timeout=10)
        assert code == 0, f"exit code {code} on {sig.name}\n{svc.diagnostics()}"
        assert "Traceback" not in svc.output(), svc.diagnostics()
    finally:
        if blackhole is not None:
            blackhole.close()


def test_help_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "metric_reader", "--help"],
        cwd=REPO_ROOT,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.strip(), "no help text"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_with_exit_0_on_signal_right_after_it_says_it_is_running(
    sig: signal.Signals, service: ServiceFactory
) -> None:
    """An orchestrator may stop a pod at any moment: once the service has logged anything
    (it is configured and running), SIGTERM/SIGINT is a clean stop, not death by signal."""
    svc = service(
        {
            "METRIC_NAME": "cli_metric",
            "PROMETHEUS_ENDPOINT": f"http://127.0.0.1:{free_port()}",
            "POLLING_INTERVAL": "250ms",
        }
    )
    svc.wait_until(
        lambda: svc.stderr().strip() or svc.stdout().strip(),
        EVENT_TIMEOUT,
        "the first log line",
        interval=0.002,
    )
    code = svc.stop(sig, timeout=10)
    assert code == 0, f"exit code {code} on {sig.name} just after start-up\n{svc.diagnostics()}"
    assert "Traceback" not in svc.output(), svc.diagnostics()


def test_history_prints_the_actions_the_service_recorded_as_json(tmp_path: Path) -> None:
    """Read from the file as the service writes it, with no rule configured, newest first,
    filtered by outcome and time; the service still has the file open (WAL)."""
    now = time.time()
    path = tmp_path / "state.json.history.sqlite"
    writer = ActionHistory.open(path)
    entries = [
        HistoryEntry(now - 7200, "disk_full", {"instance": "db-1"}, "restart_pod", "fire",
                     "suppressed", "budget", "budget of plugin restart_pod: 3 per 1h"),
        HistoryEntry(now - 60, "disk_full", {"instance": "db-2"}, "restart_pod", "fire",
                     "suppressed", "breaker", "breaker of restart_pod open until 10:05Z",
                     value=97.5, threshold=">90", annotations={"summary": "full"}),
        HistoryEntry(now - 30, "disk_full", {"instance": "db-3"}, "restart_pod", "fire",
                     "executed"),
        HistoryEntry(now - 10, "queue", {"q": "mail"}, "", "storm", "suppressed", "paused"),
    ]  # fmt: skip
    for entry in entries:
        writer.record(entry)
    done = run_cli(
        "history", "--format", "json", "--outcome", "suppressed", "--since", "1h",
        env={"STATE_FILE": str(tmp_path / "state.json")},
    )  # fmt: skip
    writer.close()
    assert done.returncode == 0, describe(done)
    assert json.loads(done.stdout) == [entries[3].as_dict(), entries[1].as_dict()]
