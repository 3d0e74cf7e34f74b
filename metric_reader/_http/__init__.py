"""The HTTP client every outgoing request uses: Prometheus queries, scraped pages, the
Kubernetes Lease API and the backtest's range queries.

One ``httpx.AsyncClient`` per configuration (``make_client``: TLS, credentials re-read from
their files, requests carried by the package's own HTTP/1.1 transport, ``_wire``), one
attempt at a time within a deadline (``Attempt``), and bodies read bounded and
decompressed (``read_body``), or handed on piece by piece as they come (``stream_body``).
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._body import ACCEPT_ENCODING, read_body, stream_body
    from ._client import Attempt, CredentialFile, Source, deadline, make_client, request_slot

__all__ = [
    "ACCEPT_ENCODING",
    "Attempt",
    "CredentialFile",
    "Source",
    "deadline",
    "make_client",
    "read_body",
    "request_slot",
    "stream_body",
]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "CredentialFile": "._client",
            "ACCEPT_ENCODING": "._body",
            "Attempt": "._client",
            "Source": "._client",
            "deadline": "._client",
            "make_client": "._client",
            "read_body": "._body",
            "request_slot": "._client",
            "stream_body": "._body",
        },
    )
