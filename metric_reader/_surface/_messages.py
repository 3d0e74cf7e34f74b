"""A request as the HTTP server read it, and the response it sends back: what the server,
its endpoints and the checks before them (``_writes``) share."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Request:
    method: str
    path: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)
    """By lower-case name; a header sent several times is joined with ``, ``."""
    query: str = ""
    body: bytes = b""
    """Read only for the endpoints that take one (``_governor_api.takes_body``)."""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
