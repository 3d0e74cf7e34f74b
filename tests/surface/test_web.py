"""LISTEN_ADDRESS: /metrics, /healthz, /readyz, the status page and /api/status, over real HTTP.

Each test runs ``serve_http`` on 127.0.0.1:0 and talks to it with httpx or a raw socket: over
a real ``Service`` polling a real local metrics page, or, for what is only HTTP (limits,
methods, slow clients), over a small ``FakeView``.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import platform
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pytest
from _fake_view import FakeView
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from metric_reader import __version__
from metric_reader._actions import discover_plugins
from metric_reader._config import ConfigError, load_settings, parse_listen_address
from metric_reader._core._logging import configure_logging
from metric_reader._service import Service
from metric_reader._surface._web import ListenError, serve_http

T = TypeVar("T")
DEADLINE = 15.0  # generous: a busy 2-core machine must not flake
XSS = "<script>alert(1)</script>"
PAGE = (
    "# TYPE web_queue gauge\n"
    f'web_queue{{queue="{XSS}",team="a \\"quoted\\" team"}} 95\n'
    'web_queue{queue="calm"} 3\n'
)


# --- a metrics page the test controls -------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    text: str | bytes = ""

    def do_GET(self) -> None:
        body = self.text.encode() if isinstance(self.text, str) else self.text
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class MetricsPage:
    """``/metrics`` on 127.0.0.1; ``start()`` may come later than the port is known, so a
    service can be pointed at it while it is still down (connection refused)."""

    def __init__(self, text: str | bytes) -> None:
        self.text = text
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"text": self.text})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def set_text(self, text: str | bytes) -> None:
        """Serve ``text`` from the next request on."""
        self.text = text
        if self._server is not None:
            self._server.RequestHandlerClass.text = text  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def page() -> Iterator[MetricsPage]:
    server = MetricsPage(PAGE)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def down_page() -> Iterator[MetricsPage]:
    server = MetricsPage("# TYPE other gauge\nother 1\n")
    yield server
    server.stop()


# --- the service ----------------------------------------------------------------------------

RECORDER = """
class Recorder:
    name = "recorder"

    async def execute(self, metric_name, value, threshold, duration):
        pass

Plugin = Recorder()
"""


def make_service(
    tmp_path: Path,
    page: MetricsPage,
    *extra_rules: str,
    plugins: dict[str, str] | None = None,
    interval: str = "100ms",
) -> Service:
    directory = tmp_path / "plugins"
    directory.mkdir()
    for name, text in {"recorder.py": RECORDER, **(plugins or {})}.items():
        (directory / name).write_text(text)
    plugins_dir = directory
    (plugins_dir / "broken.py").write_text("def oops(:\n")  # a file that does not load
    plugins_dir.chmod(0o755)
    config = tmp_path / "rules.toml"
    config.write_text(
        f'polling_interval = "{interval}"\n'
        'plugin_dir = "plugins"\n'
        "[[rules]]\n"
        'name = "web"\n'
        'metric_name = "web_queue"\n'
        f'scrape_url = "{page.url}"\n'
        'threshold = ">50"\n'
        'action_plugin = "recorder"\n' + "".join(extra_rules)
    )
    settings = load_settings({"CONFIG_FILE": str(config)})
    return Service(settings, discover_plugins(settings.plugin_dir))


@asynccontextmanager
async def serving(service: Service, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The service polling, its endpoints on a free port, and a client for them."""
    async with anyio.create_task_group() as group:
        group.start_soon(service.run)
        port = await group.start(functools.partial(serve_http, "127.0.0.1:0", service, **options))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


@asynccontextmanager
async def serving_fake(**options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Only the endpoints, over a ``FakeView`` (ready, no rule): for what does not depend
    on what the service holds."""
    view = FakeView()
    async with anyio.create_task_group() as group:
        port = await group.start(functools.partial(serve_http, "127.0.0.1:0", view, **options))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(60):
            await test()

    anyio.run(bounded)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``probe`` until it returns something truthy; fail after DEADLINE seconds."""
    last: T | None = None
    with anyio.move_on_after(DEADLINE):
        while True:
            last = await probe()
            if last:
                return last
            await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {DEADLINE}s waiting for {what} (last: {last!r})")


async def wait_fired(client: httpx.AsyncClient) -> dict[str, Any]:
    """The status once the breached series is FIRING and its action has succeeded."""

    async def fired() -> dict[str, Any] | None:
        status = (await client.get("/api/status")).json()
        for series in status["rules"][0]["series"]:
            base = series["base"]
            if base["state"] == "firing" and (base["last_action"] or {}).get("result"):
                return status
        return None

    return await eventually(fired, "the breached series to fire and its action to finish")


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name, frozenset(sample.labels.items())] = sample.value
    return out


def sample(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return found.get((name, frozenset(labels.items())))


# --- /metrics -------------------------------------------------------------------------------


def test_metrics_has_polls_plugin_calls_series_by_state_and_build_info(
    tmp_path: Path, page: MetricsPage
) -> None:
    service = make_service(tmp_path, page)
    group = f"scrape {page.url} every 100ms"  # reads are counted by group, not by read

    async def test() -> None:
        async with serving(service) as client:
            await wait_fired(client)
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert response.headers["content-encoding"] == "gzip"  # httpx asked for it
            text = response.text

            families = {family.name for family in text_string_to_metric_families(text)}
            assert {
                "metric_reader_polls",
                "metric_reader_poll_errors",
                "metric_reader_poll_duration_seconds",
                "metric_reader_plugin_calls",
                "metric_reader_plugin_call_duration_seconds",
                "metric_reader_series",
                "metric_reader_plugin_calls_in_flight",
                "metric_reader_build_info",
                "metric_reader_ready",
                "metric_reader_target_up",
                "metric_reader_target_last_success_timestamp_seconds",
                "metric_reader_plugins_loaded",
                "metric_reader_plugin_load_failures",
                "process_start_time_seconds",
            } <= families, families

            found = samples(text)
            assert sample(found, "metric_reader_polls_total", group=group) >= 1
            assert sample(found, "metric_reader_poll_duration_seconds_count", group=group) >= 1
            calls = {"plugin": "recorder", "method": "execute"}
            assert sample(found, "metric_reader_plugin_calls_total", result="success", **calls) == 1
            assert sample(found, "metric_reader_plugin_call_duration_seconds_count", **calls) == 1
            series = {"rule": "web", "level": "base"}
            assert sample(found, "metric_reader_series", state="firing", **series) == 1
            assert sample(found, "metric_reader_series", state="ok", **series) == 1
            assert sample(found, "metric_reader_series", state="pending", **series) == 0
            build = {"version": __version__, "python": platform.python_version()}
            assert sample(found, "metric_reader_build_info", **build) == 1
            assert sample(found, "metric_reader_ready") == 1
            assert sample(found, "metric_reader_target_up", group=group) == 1
            stamp = sample(
                found, "metric_reader_target_last_success_timestamp_seconds", group=group
            )
            assert stamp is not None and stamp > 1.6e9
            assert sample(found, "metric_reader_plugin_load_failures", reason="error") == 1
            assert sample(found, "metric_reader_plugins_loaded") >= 1

            # OpenMetrics when asked for, uncompressed when gzip is not accepted.
            response = await client.get(
                "/metrics",
                headers={
                    "Accept": "application/openmetrics-text; version=1.0.0",
                    "Accept-Encoding": "identity",
                },
            )
            assert response.headers["content-type"].startswith("application/openmetrics-text")
            assert "content-encoding" not in response.headers
            assert response.text.endswith("# EOF\n")
            names = {family.name for family in openmetrics_families(response.text)}
            assert {"metric_reader_polls", "metric_reader_series"} <= names

    run(test)


def test_gzip_body_is_the_same_page(tmp_path: Path, page: MetricsPage) -> None:
    service = make_service(tmp_path, page)

    async def test() -> None:
        async with serving(service) as client:
            async with client.stream(
                "GET", "/metrics", headers={"Accept-Encoding": "gzip"}
            ) as response:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            assert response.headers["content-encoding"] == "gzip"
            assert int(response.headers["content-length"]) == len(raw)
            assert b"metric_reader_build_info" in gzip.decompress(raw)

    run(test)


# --- /healthz and /readyz -------------------------------------------------------------------


def test_readyz_is_503_until_every_target_has_been_read(
    tmp_path: Path, page: MetricsPage, down_page: MetricsPage
) -> None:
    service = make_service(
        tmp_path,
        page,
        f'[[rules]]\nname = "other"\nmetric_name = "other"\nscrape_url = "{down_page.url}"\n',
    )

    async def test() -> None:
        async with serving(service) as client:
            health = await client.get("/healthz")
            assert (health.status_code, health.text) == (200, "ok\n")

            async def first_target_read() -> httpx.Response | None:
                response = await client.get("/readyz")
                return response if page.url not in response.text else None

            # The page that answers has been read; the one that is down never was.
            response = await eventually(first_target_read, "the up target to be read")
            assert response.status_code == 503
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
            assert f"scrape {down_page.url}: not read successfully yet" in response.text
            assert "last error: cannot connect" in response.text
            metrics = samples((await client.get("/metrics")).text)
            assert sample(metrics, "metric_reader_ready") == 0
            down = f"scrape {down_page.url} every 100ms"
            assert sample(metrics, "metric_reader_target_up", group=down) == 0

            down_page.start()

            async def ready() -> httpx.Response | None:
                response = await client.get("/readyz")
                return response if response.status_code == 200 else None

            response = await eventually(ready, "/readyz to answer 200 once the target is up")
            assert response.text == "ready\n"
            assert (await client.get("/healthz")).status_code == 200

    run(test)


def test_readyz_is_503_when_a_plugin_a_rule_needs_is_gone(
    tmp_path: Path, page: MetricsPage
) -> None:
    service = make_service(tmp_path, page)

    async def test() -> None:
        async with serving(service) as client:

            async def status(code: int) -> Callable[[], Awaitable[httpx.Response | None]]:
                async def probe() -> httpx.Response | None:
                    response = await client.get("/readyz")
                    return response if response.status_code == code else None

                return probe

            await eventually(await status(200), "/readyz 200")
            (tmp_path / "plugins" / "recorder.py").unlink()  # the drop-in watcher notices
            response = await eventually(await status(503), "/readyz 503 after the removal")
            assert "rule web: plugin recorder is not loaded" in response.text

    run(test)


# --- /api/status and the page ---------------------------------------------------------------


class _Text(HTMLParser):
    """What a person sees: the text of the page, and which tags it has."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []
        self.meta: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "meta":
            self.meta.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_status_json_and_page_show_the_rule_with_label_values_escaped(
    tmp_path: Path, page: MetricsPage
) -> None:
    service = make_service(tmp_path, page)

    async def test() -> None:
        async with serving(service) as client:
            await wait_fired(client)

            response = await client.get("/api/status")
            assert response.headers["content-type"] == "application/json"
            status = response.json()
            assert status["version"] == __version__
            assert status["ready"] is True
            (rule,) = status["rules"]
            assert rule["name"] == "web"
            by_queue = {s["labels"]["queue"]: s for s in rule["series"]}
            assert by_queue[XSS]["labels"]["team"] == 'a "quoted" team'
            assert by_queue[XSS]["base"]["state"] == "firing"
            assert by_queue[XSS]["value"] == 95
            assert by_queue["calm"]["base"]["state"] == "ok"

            response = await client.get("/")
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert "script-src" not in response.headers["content-security-policy"]
            assert "default-src 'none'" in response.headers["content-security-policy"]
            html = response.text
            assert XSS not in html and '"quoted"' not in html
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

            parsed = _Text()
            parsed.feed(html)
            assert "script" not in parsed.tags  # the label did not become a tag
            assert {"http-equiv": "refresh", "content": "5"} in parsed.meta
            flat = "".join(parsed.text)
            text = " ".join(" ".join(parsed.text).split())
            # The label values read as they are, the way Prometheus writes them.
            assert f'queue="{XSS}"' in flat
            assert 'team="a \\"quoted\\" team"' in flat
            assert 'queue="calm"' in flat
            assert "web" in text and "firing" in text and ">50" in text and "recorder" in text
            assert "fire success" in text  # the last action and its result
            # The firing series is listed first and its row is marked as firing.
            assert html.index(XSS.replace("<", "&lt;").replace(">", "&gt;")) < html.index("calm")
            assert '<tr class="firing">' in html
            assert '<span class="state firing">firing</span>' in html

            # HEAD is GET without the body. A poll between the two changes the page (its
            # sparklines), so the two are compared when no poll came between them.
            async def head_as_get() -> bool:
                head = await client.head("/")
                assert head.status_code == 200 and head.content == b""
                length = len((await client.get("/")).content)
                return int(head.headers["content-length"]) == length

            await eventually(head_as_get, "a HEAD and a GET of / between two polls")

    run(test)


def test_status_json_is_strict_json(tmp_path: Path, page: MetricsPage) -> None:
    page.text = 'web_queue{queue="nan"} NaN\n'  # NaN is not JSON: it must come out as text
    page.stop()
    page.start()
    service = make_service(tmp_path, page)

    async def test() -> None:
        async with serving(service) as client:

            async def read() -> dict[str, Any] | None:
                status = (await client.get("/api/status")).json(
                    parse_constant=lambda c: pytest.fail(f"not JSON: {c}")
                )
                return status if status["targets"][0]["last_success"] else None

            await eventually(read, "a poll")

    run(test)


# --- what is refused ------------------------------------------------------------------------


def test_unknown_paths_are_404_and_other_methods_405() -> None:
    async def test() -> None:
        async with serving_fake() as client:
            for path in ("/nope", "/metrics/", "/index.html", "/api"):
                response = await client.get(path)
                assert response.status_code == 404, path
            assert (await client.get("/healthz?verbose=1")).status_code == 200
            for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
                response = await client.request(method, "/", content=b"x" * 1000)
                assert response.status_code == 405, method
                assert response.headers["allow"] == "GET, HEAD"
            head = await client.head("/healthz")
            assert head.status_code == 200 and head.content == b""
            assert head.headers["content-length"] == "3"
            # Nothing a request does changes the state.
            assert (await client.get("/healthz")).text == "ok\n"

    run(test)


async def _raw(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh connection; return everything until the server closes."""
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(data)
        received = b""
        with anyio.fail_after(DEADLINE):
            try:
                while True:
                    received += await stream.receive()
            except anyio.EndOfStream:
                pass
        return received


def test_huge_or_malformed_requests_are_refused() -> None:
    async def test() -> None:
        async with serving_fake() as client:
            port = client.base_url.port
            assert port is not None
            response = await client.get("/", headers={"X-Big": "a" * 65536})
            assert response.status_code == 431
            many = {f"X-H{i}": "1" for i in range(200)}
            assert (await client.get("/", headers=many)).status_code == 431
            assert (await client.get("/" + "a" * 10000)).status_code == 414
            assert (await _raw(port, b"NONSENSE\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
            assert (await _raw(port, b"GET / HTTP/2.0\r\n\r\n")).startswith(b"HTTP/1.1 505 ")
            assert (await _raw(port, b"GET / HTTP/1.1\r\nno colon\r\n\r\n")).startswith(
                b"HTTP/1.1 400 "
            )
            # An HTTP/1.0 request with bare newlines is still understood.
            answer = await _raw(port, b"GET /healthz HTTP/1.0\n\n")
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nok\n")
            # And the server still serves.
            assert (await client.get("/healthz")).status_code == 200

    run(test)


def test_slow_clients_do_not_block_other_requests() -> None:
    async def test() -> None:
        async with serving_fake(read_timeout=2.0) as client:
            port = client.base_url.port
            assert port is not None
            slow = []
            for _ in range(20):  # half a request each, then nothing
                stream = await anyio.connect_tcp("127.0.0.1", port)
                await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                slow.append(stream)
            try:
                with anyio.fail_after(1.5):  # well before the slow ones time out
                    for _ in range(5):
                        assert (await client.get("/healthz")).status_code == 200
                # The slow ones are answered 408 and closed at their deadline.
                for stream in slow:
                    received = b""
                    with anyio.fail_after(DEADLINE):
                        try:
                            while True:
                                received += await stream.receive()
                        except anyio.EndOfStream:
                            pass
                    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            finally:
                for stream in slow:
                    await stream.aclose()

    run(test)


async def _hold(port: int, count: int, first: bytes = b"") -> list[anyio.abc.SocketStream]:
    """``count`` open connections that sent ``first`` (maybe nothing) and then wait."""
    held = []
    for _ in range(count):
        stream = await anyio.connect_tcp("127.0.0.1", port)
        if first:
            await stream.send(first)
        held.append(stream)
    return held


async def _slowloris(stream: anyio.abc.SocketStream) -> None:
    """A request head sent one byte a second, never finished."""
    with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000:
            await stream.send(bytes([byte]))
            await anyio.sleep(1)


async def _probes_answer_promptly(client: httpx.AsyncClient) -> None:
    """Both probes, ten times each, all 200 and all within a few seconds."""
    with anyio.fail_after(5):
        for _ in range(10):
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/readyz")).status_code == 200


def test_idle_and_slowloris_connections_do_not_starve_the_probes() -> None:
    """200 connections that send nothing and 50 that send a byte a second: a liveness
    probe must still get 200 at once (it got 503 with 100 idle connections)."""

    async def test() -> None:
        async with serving_fake() as client, anyio.create_task_group() as group:
            port = client.base_url.port
            assert port is not None
            await eventually(lambda: _ready(client), "the first poll")
            idle = await _hold(port, 200)
            slow = await _hold(port, 50)
            for stream in slow:
                group.start_soon(_slowloris, stream)
            try:
                await anyio.sleep(0.5)  # every one of them accepted and waiting
                await _probes_answer_promptly(client)
                # The status documents are served too.
                assert (await client.get("/")).status_code == 200
                assert (await client.get("/api/status")).status_code == 200
            finally:
                for stream in idle + slow:
                    await stream.aclose()
                group.cancel_scope.cancel()  # last: awaiting in a cancelled scope would raise

    run(test)


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


def test_beyond_the_connection_limit_the_longest_idle_are_closed_not_the_probes() -> None:
    """With every slot held by clients that never finish a request, a new connection
    closes the one idle longest instead of being refused: probes are always answered."""

    async def test() -> None:
        async with serving_fake(read_timeout=30.0, max_connections=20) as client:
            port = client.base_url.port
            assert port is not None
            await eventually(lambda: _ready(client), "the first poll")
            held = await _hold(port, 100, b"GET / HTTP/1.1\r\n")
            try:
                await _probes_answer_promptly(client)
                # The oldest held connections were closed without an answer; the newest
                # ones (within the limit) are still open.
                with (
                    anyio.fail_after(DEADLINE),
                    pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)),
                ):
                    await held[0].receive()
                with anyio.move_on_after(0.2):
                    await held[-1].receive()
                    pytest.fail("the newest connection was closed")
            finally:
                for stream in held:
                    await stream.aclose()

    run(test)


# --- the address ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9180", ("127.0.0.1", 9180)),
        ("localhost:80", ("localhost", 80)),
        ("metric-reader.example:8080", ("metric-reader.example", 8080)),
        (":9180", ("", 9180)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9180", ("::1", 9180)),
        ("[::]:65535", ("::", 65535)),
        (" 127.0.0.1:9180 ", ("127.0.0.1", 9180)),
    ],
)
def test_listen_address_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "9180",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:http",
        "127.0.0.1:65536",
        "127.0.0.1:-1",
        "::1:9180",
        "[::1]",
        "[nonsense]:9180",
        "http://127.0.0.1:9180",
        "host name:9180",
        "off",
    ],
)
def test_other_listen_addresses_are_refused_saying_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match=r"expected host:port, :port \(every interface\)"):
        parse_listen_address(text)


def test_a_bare_port_is_refused_with_the_way_to_write_it() -> None:
    with pytest.raises(ValueError, match=r"^no host: write :9180 for every interface; expected"):
        parse_listen_address("9180")


def test_an_address_in_use_is_a_clear_error() -> None:
    service = FakeView()

    async def test() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(ListenError) as refused:
                await serve_http(f"127.0.0.1:{port}", service)
            assert str(refused.value) == (
                f"cannot listen on 127.0.0.1:{port}: Address already in use"
            )

    run(test)


def test_status_json_round_trips(tmp_path: Path, page: MetricsPage) -> None:
    """``/api/status`` is exactly ``Service.status()``."""
    service = make_service(tmp_path, page)

    def steady(document: Any) -> Any:
        """Without the fields that change from one moment to the next."""
        document.pop("time")
        for target in document["targets"]:
            target.pop("last_success")
        for rule in document["rules"]:
            for series in rule["series"]:
                series.pop("last_seen")
        return document

    async def test() -> None:
        async with serving(service) as client:
            await wait_fired(client)
            # The service polls meanwhile: compare with a status taken between two served
            # documents that agree, so no poll came between them.
            for _ in range(50):
                before = steady((await client.get("/api/status")).json())
                here = steady(json.loads(json.dumps(service.status())))
                after = steady((await client.get("/api/status")).json())
                if before == after:
                    assert before == here
                    return
            raise AssertionError("every pair of /api/status reads differed: no steady moment")

    run(test)


# --- text that is not valid Unicode ---------------------------------------------------------

EVENT_WRITER = """
import json, os

class Writer:
    name = "writer"

    async def execute(self, metric_name, value, threshold, duration, event=None):
        line = json.dumps(dict(event.labels), ensure_ascii=False) + "\\n"
        with open(os.environ["WRITER_FILE"], "ab") as out:
            out.write(line.encode("utf-8"))  # what any plugin sending JSON does

Plugin = Writer()
"""

# A label value with a lone surrogate escape (a Prometheus-compatible API may send one;
# Python's json decodes it to a string that cannot be encoded), and a valid pair.
QUERY_ANSWER = (
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":'
    b'{"__name__":"odd_queue","queue":"\\udcff<b>\\ud800x","emoji":"\\ud83d\\ude00"},'
    b'"value":[1,"95"]}]}}'
)


@pytest.fixture
def query_api() -> Iterator[str]:
    """An ``/api/v1/query`` that answers ``QUERY_ANSWER`` (any path does)."""
    server = MetricsPage(QUERY_ANSWER)
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_label_values_that_are_not_valid_unicode_never_break_a_surface(
    tmp_path: Path, query_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scraped page with invalid UTF-8 in a label value (the read is refused, as
    Prometheus refuses it) and a query answer with a lone surrogate escape (U+FFFD, as Go's
    decoder makes it): every endpoint answers, in valid UTF-8; the plugin gets valid text;
    the log lines are valid UTF-8."""
    bad_page = MetricsPage(b'# TYPE web_queue gauge\nweb_queue{queue="\xff\xfe<i>"} 95\n')
    bad_page.start()
    written = tmp_path / "events.jsonl"
    monkeypatch.setenv("WRITER_FILE", str(written))
    log = io.StringIO()
    configure_logging("DEBUG", "json", log)
    service = make_service(
        tmp_path,
        bad_page,
        '[[rules]]\nname = "odd"\nmetric_name = "odd_queue"\n'
        f'prometheus_endpoint = "{query_api}"\nthreshold = ">50"\naction_plugin = "writer"\n',
        plugins={"writer.py": EVENT_WRITER},
        interval="1s",  # a read gets 0.8 s: a busy machine can take more than 80 ms
    )

    async def test() -> None:
        async with serving(service) as client:
            await eventually(lambda: _polled(client, "odd"), "a poll of rule odd")
            # The two rules read on their own schedules: odd's read can come first.
            await eventually(lambda: _scrape_refused(client), "the page's read refused")
            for path in ("/", "/api/status", "/metrics", "/healthz", "/readyz", "/?rule=odd"):
                response = await client.get(path)
                assert response.status_code in (200, 503), (path, response.text)
                response.content.decode("utf-8")  # strictly valid
            status = (await client.get("/api/status?rule=odd")).json()
            (series,) = status["rules"][0]["series"]
            assert series["labels"] == {"queue": "\ufffd<b>\ufffdx", "emoji": "\U0001f600"}
            everything = (await client.get("/api/status")).json()
            scrape = next(t for t in everything["targets"] if t["target"].startswith("scrape"))
            assert "invalid UTF-8" in scrape["last_error"]
            page = (await client.get("/")).text
            assert "\ufffd&lt;b&gt;\ufffdx" in page
            assert "\ufffd\ufffd&lt;i&gt;" in page  # the refused line, in the read error
            await eventually(lambda: _written(written), "the plugin to be called")

    try:
        run(test)
    finally:
        bad_page.stop()
        configure_logging()
    assert json.loads(written.read_text("utf-8")) == {
        "queue": "\ufffd<b>\ufffdx",
        "emoji": "\U0001f600",
    }
    log.getvalue().encode("utf-8")  # every log line can be written out


async def _polled(client: httpx.AsyncClient, rule: str) -> bool:
    response = await client.get("/api/status", params={"rule": rule})
    return bool(response.json()["rules"][0]["series"])


async def _scrape_refused(client: httpx.AsyncClient) -> bool:
    targets = (await client.get("/api/status")).json()["targets"]
    return any(
        t["target"].startswith("scrape") and "invalid UTF-8" in (t["last_error"] or "")
        for t in targets
    )


async def _written(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


# --- no data --------------------------------------------------------------------------------


def test_a_rule_that_reads_nothing_is_shown_as_no_data_until_it_reads_again(
    tmp_path: Path, page: MetricsPage
) -> None:
    """A misspelled metric name: a warning at the first read, "no data" on the page (not a
    green row), in /api/status and in a metric; still ready. When the metric appears, an
    info line and back to normal."""
    service = make_service(
        tmp_path,
        page,
        f'[[rules]]\nname = "typo"\nmetric_name = "web_queu"\nscrape_url = "{page.url}"\n'
        'threshold = ">50"\n',
    )
    log = io.StringIO()
    configure_logging("INFO", "json", log)

    async def test() -> None:
        async with serving(service) as client:

            async def rule_status() -> dict[str, Any]:
                response = await client.get("/api/status", params={"rule": "typo"})
                return dict(response.json()["rules"][0])

            async def no_data() -> dict[str, Any] | None:
                rule = await rule_status()
                return rule if rule["no_data"]["active"] else None

            rule = await eventually(no_data, "rule typo to be in no data")
            assert rule["no_data"]["empty_polls"] >= 1 and rule["no_data"]["since"]
            assert (await client.get("/readyz")).status_code == 200  # a config problem
            metrics = samples((await client.get("/metrics")).text)
            assert sample(metrics, "metric_reader_rule_no_data", rule="typo") == 1
            assert sample(metrics, "metric_reader_rule_no_data", rule="web") == 0
            html = (await client.get("/", params={"rule": "typo"})).text
            assert '<span class="state nodata">no data</span>' in html
            assert '<tr class="ok">' not in html and '<span class="state ok">' not in html
            parsed = _Text()
            parsed.feed(html)
            text = " ".join(" ".join(parsed.text).split())
            assert "returned no series" in text and "check the metric name" in text

            page.set_text(PAGE.replace("web_queue", "web_queu"))

            async def data_again() -> dict[str, Any] | None:
                rule = await rule_status()
                return rule if not rule["no_data"]["active"] else None

            rule = await eventually(data_again, "rule typo to read data again")
            assert rule["no_data"] == {"active": False, "empty_polls": 0, "since": None}
            metrics = samples((await client.get("/metrics")).text)
            assert sample(metrics, "metric_reader_rule_no_data", rule="typo") == 0
            assert "no data" not in (await client.get("/", params={"rule": "typo"})).text

    try:
        run(test)
    finally:
        configure_logging()
    lines = [json.loads(line) for line in log.getvalue().splitlines()]
    about = [line for line in lines if line.get("rule") == "typo" and "data" in line["message"]]
    polls = about[-1].get("empty_polls")
    assert [(line["level"], line["message"]) for line in about] == [
        (
            "warning",
            "no data: the first read returns no series; "
            "check the metric name, label filters or query",
        ),
        (
            "info",
            f"data again: the read returns 2 series after {polls} empty poll(s)",
        ),
    ]
    assert about[0]["reads"] == "web_queu"


# --- bounded status documents ---------------------------------------------------------------

PAGED = "".join(f'paged{{i="{i:02d}"}} {95 if i % 10 == 3 else 1}\n' for i in range(30))


def test_status_documents_page_through_a_rule_and_say_when_they_are_truncated(
    tmp_path: Path,
) -> None:
    page = MetricsPage(PAGED)
    page.start()
    service = make_service(
        tmp_path,
        page,
        f'[[rules]]\nname = "paged"\nmetric_name = "paged"\nscrape_url = "{page.url}"\n'
        'threshold = ">50"\n',
    )

    async def test() -> None:
        async with serving(service) as client:

            async def read(query: str) -> dict[str, Any] | None:
                status = (await client.get(f"/api/status?{query}")).json()
                (rule,) = status["rules"]
                return status if rule["series_count"] == 30 else None

            first = await eventually(lambda: read("rule=paged&limit=10"), "a poll")
            (rule,) = first["rules"]
            assert rule["states"] == {"ok": 27, "pending": 0, "firing": 3}
            assert len(rule["series"]) == 10
            assert rule["page"] == {
                "offset": 0,
                "listed": 10,
                "next": "api/status?rule=paged&offset=10&limit=10",
            }
            assert first["truncated"] is True
            assert "?rule=NAME&offset=N&limit=N" in first["note"]
            seen = [one["labels"]["i"] for one in rule["series"]]
            link = rule["page"]["next"]
            while link:  # follow the links to the end
                status = (await client.get("/" + link)).json()
                (rule,) = status["rules"]
                seen += [one["labels"]["i"] for one in rule["series"]]
                link = rule["page"]["next"]
            assert sorted(seen) == [f"{i:02d}" for i in range(30)]
            assert status["truncated"] is False and "note" not in status

            everything = (await client.get("/api/status")).json()
            # rule web reads nothing on this page: its placeholder series, and all of paged
            assert [len(rule["series"]) for rule in everything["rules"]] == [1, 30]
            assert everything["truncated"] is False and "page" not in everything["rules"][1]

            # The page: the firing series first, then a link to the next ones.
            html = (await client.get("/", params={"rule": "paged", "limit": "5"})).text
            rows = html.split("<tbody>")[1].split("</tbody>")[0].split("<tr")[1:]
            assert [row.split('"')[1] for row in rows[:5]] == ["firing"] * 3 + ["ok"] * 2
            assert "and 25 more series" in html
            assert 'href="?rule=paged&amp;offset=5&amp;limit=5"' in html
            assert "paged" in html and "web_queue" not in html.split("<main>")[1]

            for query, message in (
                ("rule=nope", "no rule named 'nope'\n"),
                ("limit=ten", "limit must be a whole number, got 'ten'\n"),
                ("rule=paged&limit=0", "limit must be at least 1\n"),
                ("offset=5", "offset pages through one rule: give rule=NAME too\n"),
                ("sort=value", "unknown parameter 'sort': use rule, offset and limit\n"),
            ):
                for path in ("/api/status", "/"):
                    response = await client.get(f"{path}?{query}")
                    assert (response.status_code, response.text) == (400, message), path

    try:
        run(test)
    finally:
        page.stop()


def test_names_from_the_environment_that_are_not_utf8_never_break_a_surface() -> None:
    """``os.environ`` holds bytes that are not UTF-8 as lone surrogates: a rule name or
    query set so is either refused in one line or shown as U+FFFD, never a 500."""
    env = {
        "RULE_NAME": "queue\udcff",
        "QUERY": 'up{job="\udcff"}',
        "PROMETHEUS_ENDPOINT": "http://127.0.0.1:9",
        "THRESHOLD": ">1",
        "POLLING_INTERVAL": "100ms",
    }
    try:
        settings = load_settings(env)
    except ConfigError as refused:
        assert len(str(refused).splitlines()) == 1
        return
    service = Service(settings, discover_plugins(None))

    async def test() -> None:
        async with serving(service) as client:
            await eventually(lambda: _tried(client), "a first poll")
            for path in ("/", "/api/status", "/metrics", "/healthz", "/readyz"):
                response = await client.get(path)
                assert response.status_code in (200, 503), (path, response.text)
                shown = response.content.decode("utf-8")
                # /metrics names groups (source, endpoint, interval), never a query.
                assert "\ufffd" in shown or path in ("/healthz", "/metrics")

    run(test)


async def _tried(client: httpx.AsyncClient) -> bool:
    return bool((await client.get("/api/status")).json()["targets"][0]["last_error"])
