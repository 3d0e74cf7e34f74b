"""Fixtures for the end-to-end tests: real Prometheus, real Pushgateway, real service processes.

Everything listens on 127.0.0.1 on ports picked by binding port 0. Every wait is a poll of a
condition with a deadline (``wait_until``); on timeout the error carries the service's output.

Fixtures:

- ``prometheus_stack`` (session): a Pushgateway and a Prometheus scraping it every 500 ms.
  ``push(metric, value, labels=None, job=...)``, ``remove(metric, labels=None, job=...)``,
  ``query(promql)``, ``wait_visible(promql, value)``.
- ``prometheus_proxy``: a counting pass-through proxy in front of that Prometheus, so a test
  can wait for "N more polls by the service" instead of sleeping.
- ``scrape_server``: a metrics endpoint serving a page the test controls, counting requests,
  able to answer 500 or to stop listening (connection refused) and come back on its port.
- ``service``: a factory starting ``python -m metric_reader`` (or the ``metric-reader``
  console script) with a minimal environment; stopped with SIGTERM at teardown, which must
  give exit code 0 within 10 s.
- ``recording_plugin_dir``: a PLUGIN_DIR holding plugins ``recorder`` and ``recorder_hard``
  that append one JSON line per call to ``$RECORDER_FILE``; ``records()`` reads them back.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Generous deadlines: the suite must not flake on a busy 2-core machine.
STARTUP_TIMEOUT = 30.0
EVENT_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------------
# Waiting


class WaitTimeout(AssertionError):
    """A condition did not become true before its deadline."""


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    message: str | Callable[[], str],
    *,
    interval: float = 0.05,
    diagnostics: Callable[[], str] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    On timeout raise ``WaitTimeout`` with ``message`` and, if given, ``diagnostics()`` (the
    service's stderr, what the plugin received...). ``predicate`` may raise ``WaitTimeout``
    itself to give up at once (e.g. the service died).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            details = f"\n{diagnostics()}" if diagnostics is not None else ""
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for: {text}{details}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<no file>"
    kept = text.splitlines()[-lines:]
    return "\n".join(kept) if kept else "<empty>"


def _http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# --------------------------------------------------------------------------------------------
# Text exposition format


def _escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def format_series(name: str, value: float, labels: Mapping[str, str] | None = None) -> str:
    """One sample line of the text format: ``name{a="b"} 1.0``."""
    if labels:
        inner = ",".join(f'{k}="{_escape_label_value(v)}"' for k, v in labels.items())
        return f"{name}{{{inner}}} {format_value(value)}"
    return f"{name} {format_value(value)}"


LabelKey = tuple[tuple[str, str], ...]


def _label_key(labels: Mapping[str, str] | None) -> LabelKey:
    return tuple(sorted((labels or {}).items()))


def render_page(series: Mapping[str, Mapping[LabelKey, float]]) -> str:
    """A text-format page with ``# HELP``/``# TYPE`` lines, one block per metric name."""
    out: list[str] = []
    for name, by_labels in series.items():
        if not by_labels:
            continue
        out.append(f"# HELP {name} Test metric {name}.")
        out.append(f"# TYPE {name} gauge")
        for key, value in by_labels.items():
            out.append(format_series(name, value, dict(key)))
    return "\n".join(out) + "\n" if out else ""


# --------------------------------------------------------------------------------------------
# Prometheus + Pushgateway


def _binary(env_var: str, name: str, package: str) -> str:
    path = os.environ.get(env_var) or shutil.which(name) or f"/usr/bin/{name}"
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"{name} not found (looked at ${env_var}, PATH and /usr/bin): the integration tests "
            f"need a real {name}; install the Debian package '{package}' "
            f"(.ci/run does) or set {env_var}",
            pytrace=False,
        )
    return path


@dataclass
class PrometheusStack:
    prometheus_url: str
    pushgateway_url: str
    prometheus_log: Path
    pushgateway_log: Path
    _groups: dict[str, dict[str, dict[LabelKey, float]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- Pushgateway ---------------------------------------------------------------------------

    def push(
        self,
        metric: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        job: str = "metric_reader_test",
    ) -> None:
        """Set one series in the job's group; the other series pushed to that job are kept.

        The whole group is PUT each time, so a series dropped with ``remove`` disappears.
        Prometheus adds ``job=<job>`` to every series (``honor_labels: true``).
        """
        with self._lock:
            group = self._groups.setdefault(job, {})
            group.setdefault(metric, {})[_label_key(labels)] = float(value)
            self._put_group(job, group)

    def push_many(
        self, job: str, series: Iterable[tuple[str, Mapping[str, str] | None, float]]
    ) -> None:
        """Set many ``(metric, labels, value)`` series of the job's group in one push."""
        with self._lock:
            group = self._groups.setdefault(job, {})
            for metric, labels, value in series:
                group.setdefault(metric, {})[_label_key(labels)] = float(value)
            self._put_group(job, group)

    def remove(
        self, metric: str, labels: Mapping[str, str] | None = None, job: str = "metric_reader_test"
    ) -> None:
        """Drop one series from the job's group (Prometheus marks it stale on its next scrape)."""
        with self._lock:
            group = self._groups.setdefault(job, {})
            group.get(metric, {}).pop(_label_key(labels), None)
            self._put_group(job, group)

    def _put_group(self, job: str, group: Mapping[str, Mapping[LabelKey, float]]) -> None:
        body = render_page(group).encode()
        url = f"{self.pushgateway_url}/metrics/job/{urllib.parse.quote(job, safe='')}"
        request = urllib.request.Request(
            url, data=body, method="PUT", headers={"Content-Type": "text/plain; version=0.0.4"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            raise AssertionError(
                f"pushgateway refused the push to {url}: {exc.code} {exc.read()!r}\n"
                f"body:\n{body.decode()}"
            ) from exc
        assert 200 <= status < 300, f"pushgateway answered {status} to the push to {url}"

    # -- Prometheus ----------------------------------------------------------------------------

    def query(self, promql: str) -> dict[str, Any]:
        """The ``data`` of an instant query; raises if Prometheus answers an error."""
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        status, body = _http_get(url)
        payload = json.loads(body)
        if status != 200 or payload.get("status") != "success":
            raise AssertionError(f"query {promql!r} failed: {status} {body!r}")
        data: dict[str, Any] = payload["data"]
        return data

    def values(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of each series of an instant query (one pair for a scalar)."""
        data = self.query(promql)
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        if data["resultType"] == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]
        raise AssertionError(f"unexpected result type for {promql!r}: {data}")

    def wait_visible(
        self,
        promql: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        timeout: float = EVENT_TIMEOUT,
    ) -> float:
        """Wait until an instant query returns ``value`` (for a series with ``labels``, if
        given); return ``time.monotonic()`` at that moment."""

        def visible() -> bool:
            for got_labels, got in self.values(promql):
                if labels is not None and any(got_labels.get(k) != v for k, v in labels.items()):
                    continue
                if got == value or (math.isnan(got) and math.isnan(value)):
                    return True
            return False

        wait_until(
            visible,
            timeout,
            lambda: (
                f"Prometheus to return {value} for {promql!r} (labels {labels}); "
                f"last answer: {self.values(promql)}"
            ),
            interval=0.1,
            diagnostics=lambda: f"prometheus log:\n{_tail(self.prometheus_log, 20)}",
        )
        return time.monotonic()


def _start_logged(argv: Sequence[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_ready(name: str, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    def ready() -> bool:
        if proc.poll() is not None:
            raise WaitTimeout(
                f"{name} exited with code {proc.returncode} before it was ready; its log:\n"
                f"{_tail(log)}"
            )
        try:
            status, _ = _http_get(f"{url}/-/ready", timeout=2)
        except OSError:
            return False
        return status == 200

    wait_until(
        ready,
        STARTUP_TIMEOUT,
        f"{name} at {url}/-/ready",
        interval=0.1,
        diagnostics=lambda: f"{name} log:\n{_tail(log)}",
    )


@pytest.fixture(scope="session")
def prometheus_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusStack]:
    prometheus_bin = _binary("PROMETHEUS_BIN", "prometheus", "prometheus")
    pushgateway_bin = _binary("PUSHGATEWAY_BIN", "prometheus-pushgateway", "prometheus-pushgateway")
    base = tmp_path_factory.mktemp("prometheus_stack")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        pgw_port = free_port()
        pgw_url = f"http://127.0.0.1:{pgw_port}"
        pgw_log = base / "pushgateway.log"
        procs.append(
            _start_logged(
                [
                    pushgateway_bin,
                    f"--web.listen-address=127.0.0.1:{pgw_port}",
                    "--persistence.file=",  # Debian's default persists to /var/lib
                    "--log.level=warn",
                ],
                pgw_log,
                base,
            )
        )

        prom_port = free_port()
        prom_url = f"http://127.0.0.1:{prom_port}"
        prom_log = base / "prometheus.log"
        config = base / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 500ms\n"
            "  scrape_timeout: 400ms\n"
            "  evaluation_interval: 500ms\n"
            "scrape_configs:\n"
            "  - job_name: pushgateway\n"
            "    honor_labels: true\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{pgw_port}']\n"
        )
        procs.append(
            _start_logged(
                [
                    prometheus_bin,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={base / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--log.level=warn",
                ],
                prom_log,
                base,
            )
        )
        _wait_ready("pushgateway", pgw_url, procs[0], pgw_log)
        _wait_ready("prometheus", prom_url, procs[1], prom_log)
        stack = PrometheusStack(
            prometheus_url=prom_url,
            pushgateway_url=pgw_url,
            prometheus_log=prom_log,
            pushgateway_log=pgw_log,
        )
        # Ready is not yet scraping: wait for the first successful scrape of the gateway.
        wait_until(
            lambda: any(v == 1.0 for _, v in stack.values('up{job="pushgateway"}')),
            STARTUP_TIMEOUT,
            "Prometheus to scrape the pushgateway (up == 1)",
            interval=0.1,
            diagnostics=lambda: f"prometheus log:\n{_tail(prom_log)}",
        )
        yield stack
    finally:
        for proc in reversed(procs):
            _stop_process(proc)


# --------------------------------------------------------------------------------------------
# A counting proxy in front of Prometheus


class _Counting(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.lock = threading.Lock()
        self.requests = 0


class _ProxyServer(_Counting):
    target = ""
    requests_log: list[str]


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:  # silence http.server
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if self.path.startswith("/api/v1/query"):
            with self.server.lock:
                self.server.requests += 1
                self.server.requests_log.append(f"{self.command} {self.path}")
        headers = {}
        if self.headers.get("Content-Type"):
            headers["Content-Type"] = self.headers["Content-Type"]
        request = urllib.request.Request(
            self.server.target + self.path, data=body, method=self.command, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, data = int(response.status), response.read()
                content_type = response.headers.get("Content-Type", "application/json")
        except urllib.error.HTTPError as exc:
            status, data = int(exc.code), exc.read()
            content_type = exc.headers.get("Content-Type", "application/json")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _forward
    do_POST = _forward


@dataclass
class PrometheusProxy:
    """Pass-through to Prometheus; counts ``/api/v1/query`` requests (the service's polls)."""

    url: str
    _server: _ProxyServer

    @property
    def requests(self) -> int:
        with self._server.lock:
            return self._server.requests

    @property
    def request_log(self) -> list[str]:
        with self._server.lock:
            return list(self._server.requests_log)

    def wait_requests(
        self,
        count: int,
        timeout: float = EVENT_TIMEOUT,
        diagnostics: Callable[[], str] | None = None,
    ) -> None:
        """Wait until the service has made ``count`` more queries than now."""
        target = self.requests + count
        wait_until(
            lambda: self.requests >= target,
            timeout,
            lambda: f"{count} more queries through the proxy (now {self.requests}, want {target})",
            diagnostics=diagnostics,
        )


@pytest.fixture
def prometheus_proxy(prometheus_stack: PrometheusStack) -> Iterator[PrometheusProxy]:
    server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
    server.target = prometheus_stack.prometheus_url
    server.requests_log = []
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="prometheus-proxy",
        daemon=True,
    )
    thread.start()
    try:
        yield PrometheusProxy(url=f"http://127.0.0.1:{server.server_address[1]}", _server=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# A metrics endpoint the test controls


class _ScrapeHandler(BaseHTTPRequestHandler):
    server: _Counting
    owner: ScrapeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        owner = self.owner
        with owner.lock:
            owner.all_requests += 1
            if self.path.split("?")[0] == "/metrics":
                owner.requests_total += 1
            status, page = owner.status, owner.page_text()
        if self.path.split("?")[0] != "/metrics":
            status, data = 404, b"not found\n"
        elif status != 200:
            data = b"internal error (on purpose)\n"
        else:
            data = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET


class ScrapeServer:
    """A ``/metrics`` endpoint on 127.0.0.1.

    The page is either raw text (``set_page``) or built from series (``set_value``,
    ``remove``). ``requests`` counts GETs of ``/metrics``. ``set_status(500)`` answers errors;
    ``go_down()`` stops listening (connection refused) and ``come_back()`` listens again on
    the same port.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests_total = 0
        self.all_requests = 0
        self.status = 200
        self._raw: str | None = None
        self._series: dict[str, dict[LabelKey, float]] = {}
        self._server: _Counting | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._listen(0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> int:
        with self.lock:
            return self.requests_total

    def page_text(self) -> str:
        """The page as served (call with ``lock`` held or accept a racy read)."""
        return self._raw if self._raw is not None else render_page(self._series)

    def set_page(self, text: str) -> None:
        with self.lock:
            self._raw = text

    def set_value(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self._raw = None
            self._series.setdefault(name, {})[_label_key(labels)] = float(value)

    def remove(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        with self.lock:
            self._series.get(name, {}).pop(_label_key(labels), None)

    def set_status(self, status: int) -> None:
        with self.lock:
            self.status = status

    def _listen(self, port: int) -> None:
        owner = self
        handler = type("Handler", (_ScrapeHandler,), {"owner": owner})
        server = _Counting(("127.0.0.1", port), handler)
        self.port = int(server.server_address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scrape-server",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def go_down(self) -> None:
        """Stop listening: connections are refused until ``come_back``."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def come_back(self) -> None:
        if self._server is None:
            self._listen(self.port)

    def wait_requests(
        self,
        count: int,
        timeout: float = EVENT_TIMEOUT,
        diagnostics: Callable[[], str] | None = None,
    ) -> None:
        """Wait until ``count`` more requests than now have been served."""
        target = self.requests + count
        wait_until(
            lambda: self.requests >= target,
            timeout,
            lambda: f"{count} more requests to {self.url} (now {self.requests}, want {target})",
            diagnostics=diagnostics,
        )

    def close(self) -> None:
        self.go_down()


@pytest.fixture
def scrape_server() -> Iterator[ScrapeServer]:
    server = ScrapeServer()
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------------------------
# The service under test


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    argv: list[str]
    env: dict[str, str]
    stdout_path: Path
    stderr_path: Path
    extra_diagnostics: list[Callable[[], str]] = field(default_factory=list)
    stopped: bool = False

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def output(self) -> str:
        """stdout and stderr together (logs may go to either)."""
        return self.stdout() + self.stderr()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def diagnostics(self) -> str:
        state = "running" if self.alive() else f"exited with code {self.proc.returncode}"
        parts = [
            f"service {state}; argv {self.argv}",
            "env: " + " ".join(f"{k}={v}" for k, v in sorted(self.env.items()) if k != "PATH"),
            f"--- service stderr (last lines) ---\n{_tail(self.stderr_path)}",
            f"--- service stdout (last lines) ---\n{_tail(self.stdout_path, 20)}",
        ]
        parts.extend(extra() for extra in self.extra_diagnostics)
        return "\n".join(parts)

    def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float,
        message: str | Callable[[], str],
        *,
        require_alive: bool = True,
        interval: float = 0.05,
    ) -> Any:
        """``wait_until`` that gives up at once if the service died, with its output."""

        def check() -> Any:
            result = predicate()
            if not result and require_alive and not self.alive():
                text = message() if callable(message) else message
                raise WaitTimeout(f"service died while waiting for: {text}\n{self.diagnostics()}")
            return result

        return wait_until(check, timeout, message, interval=interval, diagnostics=self.diagnostics)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig``, wait for the exit, return the exit code (killing it after timeout)."""
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc)
                raise AssertionError(
                    f"service did not exit within {timeout}s of signal {sig}; killed\n"
                    f"{self.diagnostics()}"
                ) from None
        return int(self.proc.returncode)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_TIMEOUT)


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The minimal environment a service gets: PATH, HOME, then what the test gives."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "PYTHONUNBUFFERED": "1",
        # Services run side by side in these tests; a test that wants the HTTP endpoints
        # gives its own free port.
        "LISTEN_ADDRESS": "off",
    }
    env.update(extra or {})
    return env


def console_script() -> str:
    """The ``metric-reader`` script next to this interpreter (installed with the package)."""
    path = Path(sys.executable).parent / "metric-reader"
    found = str(path) if path.exists() else shutil.which("metric-reader")
    if not found:
        pytest.fail(
            f"console script metric-reader not found next to {sys.executable} nor on PATH: "
            "install the project (pip install -e .)",
            pytrace=False,
        )
    return found


ServiceFactory = Callable[..., Service]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServiceFactory]:
    started: list[Service] = []

    def start(
        env: Mapping[str, str],
        *,
        args: Sequence[str] = (),
        use_console_script: bool = False,
    ) -> Service:
        index = len(started)
        full_env = base_env({"LOG_LEVEL": "debug", **env})
        argv = (
            [console_script(), *args]
            if use_console_script
            else [sys.executable, "-m", "metric_reader", *args]
        )
        stdout_path = tmp_path / f"service{index}.stdout"
        stderr_path = tmp_path / f"service{index}.stderr"
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            proc = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        svc = Service(proc, argv, full_env, stdout_path, stderr_path)
        started.append(svc)
        return svc

    yield start

    if request.node.stash.get(_CALL_FAILED, False):
        # The failure already carries the service's output: just clean up.
        for svc in started:
            if svc.proc.poll() is None:
                with contextlib.suppress(AssertionError):
                    svc.stop(signal.SIGTERM)
        return
    problems: list[str] = []
    for svc in started:
        if svc.stopped:
            if svc.proc.poll() is None:
                _kill_group(svc.proc)
            continue
        if svc.proc.poll() is not None:
            problems.append(
                f"service exited on its own (code {svc.proc.returncode}) during the test\n"
                f"{svc.diagnostics()}"
            )
            continue
        try:
            code = svc.stop(signal.SIGTERM)
        except AssertionError as exc:
            problems.append(str(exc))
            continue
        if code != 0:
            problems.append(f"service exited with code {code} on SIGTERM\n{svc.diagnostics()}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# --------------------------------------------------------------------------------------------
# A plugin directory whose plugins record every call

_RECORDER_TEMPLATE = '''\
"""Test plugin {name!r}: appends one JSON line per call to $RECORDER_FILE."""

import json
import os
import time


def _record(method, plugin, metric_name, value, threshold, duration, event):
    line = {{
        "method": method,
        "plugin": plugin,
        "metric_name": metric_name,
        "value": value,
        "threshold": threshold,
        "duration_s": duration.total_seconds(),
        "kind": getattr(event, "kind", None),
        "level": getattr(event, "level", None),
        "labels": dict(event.labels) if event is not None else None,
        "annotations": dict(getattr(event, "annotations", {{}})),
        "fire_count": getattr(event, "fire_count", None),
        "rule": getattr(event, "rule", None),
        "t": time.monotonic(),
        "pid": os.getpid(),
    }}
    with open(os.environ["RECORDER_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\\n")


class Recorder:
    name = {name!r}

    async def execute(self, metric_name, value, threshold, duration, event=None):
        _record("execute", self.name, metric_name, value, threshold, duration, event)

    async def resolve(self, metric_name, value, threshold, duration, event=None):
        _record("resolve", self.name, metric_name, value, threshold, duration, event)


Plugin = Recorder()
'''


@dataclass
class RecordingPlugins:
    """``PLUGIN_DIR`` with plugins ``recorder`` and ``recorder_hard``; ``env`` to pass on."""

    plugin_dir: Path
    records_file: Path

    @property
    def env(self) -> dict[str, str]:
        return {"PLUGIN_DIR": str(self.plugin_dir), "RECORDER_FILE": str(self.records_file)}

    def records(self) -> list[dict[str, Any]]:
        """Every call recorded so far, in order (a line still being written is left out)."""
        try:
            text = self.records_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in text.splitlines(keepends=True):
            if line.endswith("\n") and line.strip():
                out.append(json.loads(line))
        return out

    def describe(self) -> str:
        records = self.records()
        lines = [json.dumps(r, sort_keys=True) for r in records]
        return f"--- plugin calls ({len(records)}) ---\n" + ("\n".join(lines) or "<none>")


@pytest.fixture
def recording_plugin_dir(tmp_path: Path) -> RecordingPlugins:
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    for name in ("recorder", "recorder_hard"):
        path = plugin_dir / f"{name}.py"
        path.write_text(_RECORDER_TEMPLATE.format(name=name))
        path.chmod(0o644)
    plugin_dir.chmod(0o755)
    return RecordingPlugins(plugin_dir=plugin_dir, records_file=tmp_path / "records.jsonl")
