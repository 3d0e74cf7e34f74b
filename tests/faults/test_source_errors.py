"""Every error reading a source is one line that names the URL requested and, where one
applies, the setting to change (against real HTTP servers on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from metric_reader._config import PrometheusSelector, load_settings
from metric_reader._core._exceptions import FetchError
from metric_reader._http import make_client
from metric_reader._sources._prometheus import instant_query
from metric_reader._sources._scrape import fetch_page


@pytest.fixture
def prometheus_like() -> Iterator[str]:
    """Answers ``/api/v1/query`` as Prometheus does, anything else with Prometheus' 404;
    ``/private/...`` with 401."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            content_type = "text/plain; charset=utf-8"
            if path.startswith("/private/"):
                status, body = 401, b"Unauthorized\n"
            elif path.startswith("/html"):
                status, body, content_type = 200, b"<html>sign in</html>", "text/html"
            elif path == "/api/v1/query":
                status = 200
                body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
            else:
                status, body = 404, b"404 page not found\n"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def query_error(endpoint: str, *, defaulted: bool = False) -> str:
    async def main() -> str:
        async with make_client() as client:
            with pytest.raises(FetchError) as raised:
                await instant_query(client, endpoint, "up", 5.0, endpoint_defaulted=defaulted)
            return str(raised.value)

    return anyio.run(main)


def scrape_error(url: str) -> str:
    async def main() -> str:
        async with make_client() as client:
            with pytest.raises(FetchError) as raised:
                await fetch_page(client, url, 5.0)
            return str(raised.value)

    return anyio.run(main)


@pytest.mark.parametrize("path", ["/api/v1", "/api/v1/", "/prometheus/api/v1/query"])
def test_a_prometheus_endpoint_with_api_v1_gets_the_hint(prometheus_like: str, path: str) -> None:
    endpoint = (prometheus_like + path).rstrip("/")
    assert query_error(endpoint) == (
        f"HTTP 404, not JSON: '404 page not found' (GET {endpoint}/api/v1/query); "
        f"PROMETHEUS_ENDPOINT should be the base URL, without /api/v1 "
        f"(PROMETHEUS_ENDPOINT={endpoint})"
    )


def test_any_other_404_names_the_url_and_the_setting(prometheus_like: str) -> None:
    endpoint = prometheus_like + "/wrong"
    assert query_error(endpoint) == (
        f"HTTP 404, not JSON: '404 page not found' (GET {endpoint}/api/v1/query); "
        f"is PROMETHEUS_ENDPOINT={endpoint} the base URL of a Prometheus-compatible API "
        "(the one /api/v1/query is under)?"
    )
    url = prometheus_like + "/metricz"
    assert scrape_error(url) == (
        f"HTTP 404 Not Found (GET {url}); is SCRAPE_URL={url} the full URL of the metrics "
        "page (e.g. .../metrics)?"
    )


def test_an_answer_of_the_wrong_kind_asks_whether_the_setting_points_at_the_right_thing(
    prometheus_like: str,
) -> None:
    url = prometheus_like + "/html"
    assert scrape_error(url) == (
        f"the page is text/html, not a metrics page (GET {url}); does SCRAPE_URL={url} point "
        "at the application's metrics page?"
    )
    assert query_error(url) == (
        f"HTTP 200, not JSON: '<html>sign in</html>' (GET {url}/api/v1/query); does "
        f"PROMETHEUS_ENDPOINT={url} point at your Prometheus?"
    )


def test_a_refusal_of_credentials_says_which_settings_give_them(prometheus_like: str) -> None:
    url = prometheus_like + "/private/metrics"
    assert scrape_error(url) == (
        f"HTTP 401 Unauthorized (GET {url}); the endpoint refused the request: set "
        "BEARER_TOKEN_FILE, or BASIC_AUTH_USERNAME and BASIC_AUTH_PASSWORD_FILE, to credentials "
        "it accepts"
    )


def test_the_default_endpoint_not_resolving_says_to_set_prometheus_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host name lookup is the operating system's: it is made to fail here for
    'prometheus' alone, so the test neither depends on nor sends a DNS query."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("prometheus", b"prometheus"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    [rule] = load_settings({"METRIC_NAME": "up"}).rules
    source = rule.source
    assert isinstance(source, PrometheusSelector) and source.endpoint_defaulted
    assert query_error(source.where, defaulted=True) == (
        "cannot connect: cannot resolve host 'prometheus' "
        "(GET http://prometheus:9090/api/v1/query); PROMETHEUS_ENDPOINT is not set, so its "
        "default http://prometheus:9090 is used: set PROMETHEUS_ENDPOINT "
        "(prometheus_endpoint in CONFIG_FILE) to your Prometheus"
    )
    [given] = load_settings({"METRIC_NAME": "up", "PROMETHEUS_ENDPOINT": source.where}).rules
    assert isinstance(given.source, PrometheusSelector) and not given.source.endpoint_defaulted


def _closed_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_names_the_address_and_no_setting_the_user_gave() -> None:
    """The endpoint the user set is down: telling them to set it is no help (issue 23)."""
    port = _closed_port()
    endpoint = f"http://127.0.0.1:{port}"
    assert query_error(endpoint) == (
        f"cannot connect: connection refused by 127.0.0.1:{port} (GET {endpoint}/api/v1/query)"
    )
    url = f"{endpoint}/metrics"
    assert scrape_error(url) == (
        f"cannot connect: connection refused by 127.0.0.1:{port} (GET {url})"
    )
