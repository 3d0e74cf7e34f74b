"""What the service's own HTTP/1.1 transport (``_http/_wire.py``, the default) does with the
answers real servers and proxies give: chunked bodies with trailers over one kept-alive
connection, a kept-alive connection the server has closed, a body cut short. Each case runs
against a loopback server in the test's own event loop, which counts the connections."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio
import pytest

from metric_reader import _cli
from metric_reader._core import FetchError
from metric_reader._http import Attempt, Source, deadline, make_client, read_body
from metric_reader._sources._prometheus import instant_query

ANSWER = (
    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42"]}]}}'
)

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def _serving(serve: Serve) -> tuple[asyncio.Server, str, list[int]]:
    """A loopback server calling ``serve(reader, writer, n)`` for its n-th connection (from
    0); the list holds the number of connections made."""
    made = [0]

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index, made[0] = made[0], made[0] + 1
        try:
            await serve(reader, writer, index)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", made


def _polls(serve: Serve, count: int, between: Callable[[], Awaitable[None]] | None = None) -> int:
    """``count`` queries, each of which must read 42; the connections the server saw."""

    async def main() -> int:
        server, endpoint, made = await _serving(serve)
        async with server, make_client() as client:
            for poll in range(count):
                if poll and between is not None:
                    await between()
                result = await instant_query(client, endpoint, "up", 5.0)
                assert [sample.value for sample in result.samples] == [42.0]
        return made[0]

    return anyio.run(main, backend_options=_cli.loop_options())


def _head(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra + b"\r\n"


def test_chunked_answers_with_trailers_share_one_kept_alive_connection() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while await reader.readuntil(b"\r\n\r\n"):
            middle = len(ANSWER) // 2
            writer.write(_head(b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n"))
            for part in (ANSWER[:middle], ANSWER[middle:]):
                writer.write(b"%x;name=value\r\n%s\r\n" % (len(part), part))
            writer.write(b"0\r\nX-Checksum: 1234\r\n\r\n")
            await writer.drain()

    assert _polls(serve, 3) == 1


@pytest.mark.parametrize("when", ["while idle", "as the next request comes"])
def test_a_kept_alive_connection_the_server_closed_fails_no_poll(when: str) -> None:
    """A server (or a load balancer in front of it) closes idle connections after a while,
    and may do so just as the next request comes: that request is sent again on a new
    connection, as nothing of it was answered."""
    idle = when == "while idle"
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for request in range(1_000):
            await reader.readuntil(b"\r\n\r\n")
            if not idle and n == 0 and request == 1:
                return  # read, never answered: closed
            writer.write(_head(b"Content-Length: %d\r\n" % len(ANSWER)) + ANSWER)
            await writer.drain()
            if idle:
                writer.close()
                await writer.wait_closed()
                closed.set()
                return

    async def server_closed() -> None:
        if idle:
            await closed.wait()
            closed.clear()

    assert _polls(serve, 3, between=server_closed) == (3 if idle else 2)


def test_a_body_cut_short_is_an_error_not_a_shorter_page() -> None:
    """A chunked page whose last chunk never comes would otherwise read as a page without
    its last series."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_head(b"Transfer-Encoding: chunked\r\n") + b"8\r\nup 1\nup2\r\n")
        await writer.drain()

    async def main() -> tuple[str, str]:
        server, endpoint, _ = await _serving(serve)
        attempt = Attempt(endpoint + "/metrics", Source("SCRAPE_URL", endpoint, "a page"))
        async with server, make_client() as client:
            with pytest.raises(FetchError) as raised:
                async with deadline(5.0, attempt), client.stream("GET", attempt.url) as answer:
                    await read_body(answer, 1 << 20, "the page")
        return str(raised.value), attempt.url

    said, url = anyio.run(main, backend_options=_cli.loop_options())
    assert said.startswith("RemoteProtocolError: "), said
    assert said.endswith(f"(GET {url})"), said
