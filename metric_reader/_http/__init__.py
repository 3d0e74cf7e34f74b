"""The HTTP client every outgoing request uses: Prometheus queries, scraped pages, the
Kubernetes Lease API and the backtest's range queries.

One ``httpx.AsyncClient`` per configuration (``make_client``: TLS, credentials re-read from
their files, aiohttp as the transport where installed), one attempt at a time within a
deadline (``Attempt``), and bodies read bounded and decompressed (``read_body``), or
handed on piece by piece as they come (``stream_body``).
"""

from ._body import ACCEPT_ENCODING, read_body, stream_body
from ._client import Attempt, Source, deadline, make_client, request_slot

__all__ = [
    "ACCEPT_ENCODING",
    "Attempt",
    "Source",
    "deadline",
    "make_client",
    "read_body",
    "request_slot",
    "stream_body",
]
