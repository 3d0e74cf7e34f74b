"""``/-/reload`` is off unless ``ENABLE_LIFECYCLE`` turns it on, and a write from another
site is refused even then.

A web page anywhere can make a visitor's browser send a form ``POST`` to any address the
browser reaches (``localhost``, a cluster's service): without these checks a page on the
internet could reload a metric-reader on the visitor's network. Browsers say where such a
request comes from (``Origin``, ``Sec-Fetch-Site``); curl and scripts send neither and are
let through. Each test runs ``serve_http`` over a ``FakeView`` that counts its reloads.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import httpx
import pytest
from _fake_view import FakeView

from metric_reader._surface._web import serve_http
from metric_reader._surface._writes import same_origin

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@asynccontextmanager
async def serving(view: FakeView, **options: bool) -> AsyncIterator[httpx.AsyncClient]:
    async with anyio.create_task_group() as group:
        port = await group.start(functools.partial(serve_http, "127.0.0.1:0", view, **options))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
        group.cancel_scope.cancel()


def post(headers: dict[str, str], *, enable_lifecycle: bool) -> tuple[int, str, int]:
    """The status and body ``POST /-/reload`` gets with ``headers``, and how many reloads
    the service did."""
    view = FakeView()

    async def test() -> tuple[int, str]:
        async with serving(view, enable_lifecycle=enable_lifecycle) as client:
            with anyio.fail_after(15):
                response = await client.post("/-/reload", content=b"x=1", headers=headers)
            return response.status_code, response.text

    status, body = anyio.run(test)
    return status, body, view.reloads


def test_reload_is_off_by_default_and_says_which_setting_enables_it() -> None:
    status, body, reloads = post({}, enable_lifecycle=False)
    assert (status, reloads) == (403, 0)
    assert body.count("\n") == 1 and body.endswith("\n"), body
    assert "ENABLE_LIFECYCLE" in body and "/-/reload" in body, body


def test_reload_by_default_is_off_for_put_too_and_other_methods_stay_405() -> None:
    assert post({}, enable_lifecycle=False)[:1] == (403,)  # POST
    view = FakeView()

    async def test() -> None:
        async with serving(view) as client:
            assert (await client.put("/-/reload")).status_code == 403
            get = await client.get("/-/reload")
            assert get.status_code == 405 and get.headers["allow"] == "POST, PUT"

    anyio.run(test)
    assert view.reloads == 0


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": "http://evil.example", **FORM}, id="cross-origin form"),
        pytest.param({"Origin": "null", **FORM}, id="opaque origin"),
        pytest.param({"Origin": "http://127.0.0.1:1", **FORM}, id="another port"),
        pytest.param({"Sec-Fetch-Site": "cross-site", **FORM}, id="sec-fetch-site cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site", **FORM}, id="sec-fetch-site same-site"),
        pytest.param(
            {"Sec-Fetch-Site": "cross-site", "Origin": "SAME"}, id="cross-site despite origin"
        ),
    ],
)
def test_a_write_from_another_site_is_refused_and_nothing_reloads(
    headers: dict[str, str],
) -> None:
    view = FakeView()

    async def test() -> httpx.Response:
        async with serving(view, enable_lifecycle=True) as client:
            own = f"http://127.0.0.1:{client.base_url.port}"
            sent = {name: own if value == "SAME" else value for name, value in headers.items()}
            with anyio.fail_after(15):
                return await client.post("/-/reload", content=b"x=1", headers=sent)

    response = anyio.run(test)
    assert response.status_code == 403, response.text
    assert view.reloads == 0
    assert response.text.count("\n") == 1 and "cross-site" in response.text, response.text


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="curl: neither header"),
        pytest.param({"Origin": "SAME", **FORM}, id="same origin"),
        pytest.param({"Sec-Fetch-Site": "same-origin", "Origin": "SAME"}, id="same-origin"),
        pytest.param({"Sec-Fetch-Site": "none"}, id="typed by the user"),
    ],
)
def test_a_write_from_the_service_itself_or_without_a_browser_reloads(
    headers: dict[str, str],
) -> None:
    view = FakeView()

    async def test() -> httpx.Response:
        async with serving(view, enable_lifecycle=True) as client:
            own = f"http://127.0.0.1:{client.base_url.port}"
            sent = {name: own if value == "SAME" else value for name, value in headers.items()}
            with anyio.fail_after(15):
                return await client.post("/-/reload", headers=sent)

    response = anyio.run(test)
    assert (response.status_code, response.text) == (200, "configuration reloaded\n")
    assert view.reloads == 1


def test_reads_from_another_site_are_served_as_before() -> None:
    async def test() -> None:
        async with serving(FakeView()) as client:
            cross = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
            for path in ("/healthz", "/metrics", "/api/status", "/"):
                assert (await client.get(path, headers=cross)).status_code == 200, path
            other = await client.request("DELETE", "/metrics")  # not from a browser
            assert other.status_code == 405

    anyio.run(test)


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:9180", "127.0.0.1:9180", True),
        ("http://LocalHost:9180", "localhost:9180", True),
        ("http://[::1]:9180", "[::1]:9180", True),
        ("http://metrics.example", "metrics.example:80", True),
        ("https://metrics.example", "metrics.example", True),  # TLS ended by a proxy
        ("http://127.0.0.1:9181", "127.0.0.1:9180", False),
        ("http://evil.example", "127.0.0.1:9180", False),
        ("http://127.0.0.1.evil.example:9180", "127.0.0.1:9180", False),
        ("null", "127.0.0.1:9180", False),
        ("http://127.0.0.1:9180", "", False),
        ("http://user@127.0.0.1:9180", "127.0.0.1:9180", False),
        ("http://127.0.0.1:9180/path", "127.0.0.1:9180", False),
        ("http://127.0.0.1:port", "127.0.0.1:9180", False),
        ("http://[::1", "[::1]:9180", False),
        ("file:///etc/passwd", "127.0.0.1:9180", False),
    ],
)
def test_same_origin_compares_host_and_port(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, host) is same
