"""The status page's sparklines, from a real service polling a real metrics page: a small
inline SVG per series of its recent values, with the threshold line and its pending and
firing stretches; bounded for a rule with 1,000 series; ``/api/status`` unchanged."""

from __future__ import annotations

import functools
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpx
import pytest

from metric_reader._actions import discover_plugins
from metric_reader._config import load_settings
from metric_reader._engine import RECENT_SERIES_PER_RULE
from metric_reader._service import Service
from metric_reader._surface._status_page import SPARK_HEIGHT, SPARK_WIDTH
from metric_reader._surface._web import serve_http

DEADLINE = 20.0


class _Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metrics_page() -> Iterator[Callable[[str], str]]:
    """``serve(text)``: the URL of a metrics page that serves ``text``."""
    servers: list[ThreadingHTTPServer] = []

    def serve(text: str) -> str:
        handler = type("Page", (_Page,), {"body": text.encode()})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/metrics"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@asynccontextmanager
async def serving(url: str, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(
        {"METRIC_NAME": "spark_queue", "SCRAPE_URL": url, "POLLING_INTERVAL": "100ms", **env}
    )
    service = Service(settings, discover_plugins(None))
    async with anyio.create_task_group() as group:
        group.start_soon(service.run)
        port = await group.start(functools.partial(serve_http, "127.0.0.1:0", service))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


def run(test: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(60):
            await test()

    anyio.run(bounded)


async def eventually(probe: Callable[[], Awaitable[Any]], what: str) -> Any:
    with anyio.move_on_after(DEADLINE):
        while True:
            found = await probe()
            if found:
                return found
            await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {DEADLINE}s waiting for {what}")


def sparklines(html: str) -> dict[str, ET.Element]:
    """Each series row's sparkline, by the row's ``queue`` label value."""
    out = {}
    for row in html.split("<tr class=")[1:]:
        if 'class="spark"' not in row or '<span class="v">"' not in row:
            continue  # not a series, or the placeholder of a rule that saw none yet
        queue = row.split('<span class="v">"')[1].split('"')[0]
        cell = row.split('<td class="spark">')[1].split("</td>")[0]
        out[queue] = ET.fromstring(cell) if cell.startswith("<svg") else ET.Element("none")
    return out


def test_each_series_has_a_sparkline_with_its_threshold_and_its_breach(metrics_page) -> None:
    url = metrics_page('spark_queue{queue="hot"} 95\nspark_queue{queue="calm"} 3\n')

    async def test() -> None:
        async with serving(url, THRESHOLD=">50", THRESHOLD_DURATION="300ms") as client:

            async def fired_a_while() -> dict[str, ET.Element] | None:
                status = (await client.get("/api/status")).json()
                series = status["rules"][0]["series"]
                hot = next((s for s in series if s["labels"].get("queue") == "hot"), None)
                if hot is None or hot["base"]["state"] != "firing":
                    return None
                lines = sparklines((await client.get("/")).text)
                firing = [r for r in lines["hot"].iter("rect") if r.get("class") == "span firing"]
                return lines if firing else None

            lines = await eventually(fired_a_while, "the hot series to fire and be drawn")
            hot, calm = lines["hot"], lines["calm"]
            for svg in (hot, calm):
                assert svg.tag == "svg"
                assert (svg.get("width"), svg.get("height")) == (
                    str(SPARK_WIDTH),
                    str(SPARK_HEIGHT),
                )
                assert [e for e in svg.iter("line") if e.get("class") == "line threshold"]
                assert svg.find("path") is not None or svg.find("g") is not None  # the values
                assert not list(svg.iter("text")) and not list(svg.iter("title"))
            spans = {r.get("class") for r in hot.iter("rect")}
            assert spans == {"span pending", "span firing"}  # 300 ms pending, then firing
            pending = next(r for r in hot.iter("rect") if r.get("class") == "span pending")
            firing = next(r for r in hot.iter("rect") if r.get("class") == "span firing")
            assert float(pending.get("x", "0")) < float(firing.get("x", "0"))
            assert not list(calm.iter("rect"))  # never breached: nothing shaded

            # The value line of the hot series lies above its threshold line, the calm below.
            def ys(svg: ET.Element) -> tuple[float, list[float]]:
                (line,) = [e for e in svg.iter("line") if e.get("class") == "line threshold"]
                path = next(p for p in svg.iter("path") if p.get("class") == "values")
                d = path.get("d", "").replace("M", " ").replace("L", " ").split()
                return float(line.get("y1", "nan")), [float(y) for y in d[1::2]]

            threshold_y, values = ys(hot)
            assert all(y < threshold_y for y in values)  # SVG y grows downwards
            threshold_y, values = ys(calm)
            assert all(y > threshold_y for y in values)

            status = (await client.get("/api/status")).json()
            assert all("recent" not in series for series in status["rules"][0]["series"])
            assert "sparkline" not in status["rules"][0]

    run(test)


def test_a_rule_with_1000_series_draws_a_bounded_number_of_small_sparklines(
    metrics_page,
) -> None:
    text = "".join(f'spark_queue{{queue="q{k:04d}"}} {k % 100}\n' for k in range(1_000))
    url = metrics_page(text)
    breached = [f"q{k:04d}" for k in range(1_000) if k % 100 > 95]  # 40 of them

    async def test() -> None:
        async with serving(url, THRESHOLD=">95") as client:

            async def drawn() -> str | None:
                html = (await client.get("/")).text
                lines = sparklines(html)
                with_values = [svg for svg in lines.values() if svg.find(".//path") is not None]
                return html if len(with_values) >= RECENT_SERIES_PER_RULE else None

            html = await eventually(drawn, "sparklines with a line to draw")
            lines = sparklines(html)
            assert len(lines) == 100  # the rows the page lists of a rule
            drawn_svgs = [svg for svg in lines.values() if svg.tag == "svg"]
            assert len(drawn_svgs) == RECENT_SERIES_PER_RULE
            # The breached series took the rings of calm ones: every one is drawn.
            assert all(lines[q].tag == "svg" for q in breached)
            assert f"recent values kept for {RECENT_SERIES_PER_RULE} of its series" in html
            biggest = max(len(ET.tostring(svg)) for svg in drawn_svgs)
            assert biggest < 6_000
            assert html.count("<svg") == RECENT_SERIES_PER_RULE

    run(test)
