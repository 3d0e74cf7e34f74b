"""``MAX_RESPONSE_BYTES`` bounds what a read takes, however the answer is compressed.

A real HTTP server on 127.0.0.1 serves compression bombs (256 MiB of zeros as gzip, as
``gzip, gzip``, as deflate) as a scrape page and as a Prometheus answer. Each read runs in a
subprocess of its own that reports its peak RSS (``ru_maxrss``) before and after the read:
the read fails with the limit and ``MAX_RESPONSE_BYTES`` in the error, and the peak grows by
a small multiple of the limit at most. Well-formed compressed answers still read as before.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest

from metric_reader._core._exceptions import FetchError
from metric_reader._http import make_client
from metric_reader._sources._prometheus import instant_query
from metric_reader._sources._scrape import fetch_page

LIMIT = 1024 * 1024
GROWTH_ALLOWED = 8 * LIMIT
"""Peak RSS growth a read may cause: the body (the limit) and a few decoder pieces,
with room for allocator slack. Before the fix a 1 MiB limit let a bomb take over 100 MiB."""
BOMB_BYTES = 256 * 1024 * 1024
"""What a bomb decompresses to: 256 times the limit (a reader without the bound would hold
all of it; the bomb is built in a quarter of the time 1 GiB took)."""
PAGE = b"# TYPE queue_depth gauge\nqueue_depth 7\n"
ANSWER = json.dumps(
    {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "7"]}]},
    }
).encode()


def _zeros_compressed(wbits: int) -> bytes:
    """256 MiB of zeros through zlib (``wbits`` picks gzip, zlib or raw deflate): about 256 KiB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(16 * 1024 * 1024)
    parts = [packer.compress(block) for _ in range(BOMB_BYTES // len(block))]
    return b"".join(parts) + packer.flush()


@pytest.fixture(scope="module")
def bombs() -> dict[str, tuple[str, bytes]]:
    """name: (Content-Encoding, body)."""
    one = _zeros_compressed(16 + zlib.MAX_WBITS)
    return {
        "gzip": ("gzip", one),
        "gzip-gzip": ("gzip, gzip", gzip.compress(one, 9)),
        "deflate": ("deflate", _zeros_compressed(zlib.MAX_WBITS)),
        "raw-deflate": ("deflate", _zeros_compressed(-zlib.MAX_WBITS)),
        "x-gzip-identity": ("x-gzip, identity", one),
        "too-deep": ("gzip, gzip, gzip", gzip.compress(gzip.compress(one))),
        "unknown": ("br", b"\x0b\x02\x80hello\x03"),
        "truncated-gzip": ("gzip", b""),
        "truncated-deflate": ("deflate", b""),
        "not-gzip": ("gzip", b"queue_depth 7\n"),
        # Well-formed answers, to read as usual:
        "good-gzip": ("gzip", b""),
        "good-gzip-members": ("gzip", b""),
        "good-gzip-long-members": ("gzip", b""),
        "good-deflate": ("deflate", b""),
        "good-gzip-gzip": ("gzip, gzip", b""),
        "good-identity": ("identity", b""),
    }


def _good(name: str, plain: bytes) -> bytes:
    if name == "good-gzip":
        return gzip.compress(plain)
    if name == "good-gzip-members":
        half = len(plain) // 2
        return gzip.compress(plain[:half]) + gzip.compress(plain[half:])
    if name == "good-gzip-long-members":
        return gzip.compress(_long(plain)) + gzip.compress(_long(plain))
    if name == "good-deflate":
        return zlib.compress(plain)
    if name == "good-gzip-gzip":
        return gzip.compress(gzip.compress(plain))
    if name == "truncated-gzip":
        return gzip.compress(plain)[:-12]  # the end of the deflate data and the trailer
    if name == "truncated-deflate":
        return zlib.compress(plain)[:-8]
    return plain


def _long(plain: bytes) -> bytes:
    """``plain`` and a comment line: more than one piece of decoded text (64 KiB)."""
    return plain + b"# " + b"x" * 200_000 + b"\n"


@pytest.fixture(scope="module")
def server(bombs: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            name, _, rest = self.path.strip("/").partition("/")
            encoding, body = bombs[name]
            query = rest.startswith("api/v1/query")
            if name.startswith(("good", "truncated")):
                body = _good(name, ANSWER if query else PAGE)
            self.send_response(200)
            self.send_header("Content-Type", "application/json" if query else "text/plain")
            self.send_header("Content-Encoding", encoding)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the reader gave up at the limit
                self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


_READER = """
import json, resource, sys
import anyio, httpx
from metric_reader._http import make_client
from metric_reader._sources._prometheus import instant_query
from metric_reader._core._exceptions import FetchError
from metric_reader._sources._scrape import fetch_page

kind, url, limit, warm = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

async def read(target):
    async with make_client() as client:
        if kind == "scrape":
            return await fetch_page(client, target + "/metrics", 20.0, limit)
        return await instant_query(client, target, "queue_depth", 20.0, limit)

anyio.run(read, warm)  # every import and code path warmed up: what follows is the read alone
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    anyio.run(read, url)
    error = None
except FetchError as exc:
    error = str(exc)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "grew": (after - before) * 1024}))
"""


def _read_in_subprocess(kind: str, server: str, name: str) -> dict[str, Any]:
    warm = f"{server}/good-gzip"
    done = subprocess.run(
        [sys.executable, "-c", _READER, kind, f"{server}/{name}", str(LIMIT), warm],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("kind", ["scrape", "query"])
@pytest.mark.parametrize("name", ["gzip", "gzip-gzip", "deflate", "raw-deflate", "x-gzip-identity"])
def test_a_compression_bomb_is_cut_at_the_limit_in_memory(
    server: str, name: str, kind: str
) -> None:
    result = _read_in_subprocess(kind, server, name)
    assert result["grew"] < GROWTH_ALLOWED, f"peak RSS grew {result['grew'] / 2**20:.0f} MiB"
    what = "the page" if kind == "scrape" else "the answer"
    assert result["error"].startswith(
        f"{what} is larger than {LIMIT} bytes once decompressed (MAX_RESPONSE_BYTES); "
        f"raise MAX_RESPONSE_BYTES if the answer is meant to be this large (GET {server}/{name}/"
    )


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("too-deep", "Content-Encoding 'gzip, gzip, gzip': more than 2 stacked codings"),
        ("unknown", "Content-Encoding 'br' is not supported (asked for: gzip, deflate)"),
        ("truncated-gzip", "the body ends inside its gzip stream: cut short"),
        ("truncated-deflate", "the body ends inside its deflate stream: cut short"),
        (
            "not-gzip",
            "the body is not valid gzip: Error -3 while decompressing data: incorrect header check",
        ),
    ],
)
def test_bodies_that_cannot_be_decoded_whole_and_within_bounds_are_refused(
    server: str, name: str, error: str
) -> None:
    async def main() -> None:
        async with make_client() as client:
            with pytest.raises(FetchError) as raised:
                await fetch_page(client, f"{server}/{name}/metrics", 20.0, LIMIT)
            assert str(raised.value) == f"{error} (GET {server}/{name}/metrics)"
            with pytest.raises(FetchError) as raised:
                await instant_query(client, f"{server}/{name}", "queue_depth", 20.0, LIMIT)
            assert str(raised.value) == f"{error} (GET {server}/{name}/api/v1/query)"

    anyio.run(main)


@pytest.mark.parametrize(
    "name",
    ["good-gzip", "good-gzip-members", "good-deflate", "good-gzip-gzip", "good-identity"],
)
def test_well_formed_compressed_answers_read_as_before(server: str, name: str) -> None:
    async def main() -> None:
        async with make_client() as client:
            assert await fetch_page(client, f"{server}/{name}/metrics", 20.0, LIMIT) == PAGE
            result = await instant_query(client, f"{server}/{name}", "queue_depth", 20.0, LIMIT)
            assert [s.value for s in result.samples] == [7.0]

    anyio.run(main)


def test_a_body_of_exactly_the_limit_is_read(server: str) -> None:
    async def main() -> None:
        async with make_client() as client:
            body = await fetch_page(client, f"{server}/good-gzip/metrics", 20.0, len(PAGE))
            assert body == PAGE
            with pytest.raises(FetchError, match="larger than"):
                await fetch_page(client, f"{server}/good-gzip/metrics", 20.0, len(PAGE) - 1)

    anyio.run(main)


def test_gzip_members_longer_than_a_decoded_piece_are_read_whole(server: str) -> None:
    # Was "the body is not valid gzip: ... invalid block type": where a member ended, the
    # start of the next was given to the decoder twice.
    async def main() -> None:
        async with make_client() as client:
            url = f"{server}/good-gzip-long-members/metrics"
            assert await fetch_page(client, url, 20.0, LIMIT) == _long(PAGE) * 2

    anyio.run(main)
