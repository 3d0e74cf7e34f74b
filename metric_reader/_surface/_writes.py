"""Which requests may change the service: the check every write goes through first.

A web page can make its visitor's browser send a form ``POST`` to any address that browser
reaches (``localhost``, a service inside the cluster, a pod's port forwarded by kubectl),
and it needs no answer to do harm: cross-site request forgery. Browsers say where such a
request comes from: ``Sec-Fetch-Site`` (``cross-site``, ``same-site``, ``same-origin``, or
``none`` when the user typed the address) and ``Origin`` on every ``POST``. A write is
refused when either names another origin; a client that is no browser (curl, a script, a
probe) sends neither and goes through. This is what Go's ``http.CrossOriginProtection``
checks, and what ``/-/reload`` and every later write rely on: the server asks
``write_refusal`` before it routes any request that is not a read.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ._messages import Request

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that never change anything (RFC 9110's safe methods): never refused here."""
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
"""``Sec-Fetch-Site`` values of a request the service's own page sent, or the user typed.
``same-site`` is refused too: another port or subdomain of the same host is another
application, as a page served by ``localhost:3000`` is to ``localhost:9180``."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SHOWN = 100
"""Longest excerpt of a header value repeated in a refusal."""


def write_refusal(request: Request) -> str | None:
    """Why ``request`` may not change the service (one line), or None when it may: a read,
    a request without ``Origin`` and ``Sec-Fetch-Site`` (not from a browser), or one from
    the service's own origin."""
    if request.method in READ_METHODS:
        return None
    site = request.header("Sec-Fetch-Site").strip().lower()
    if site and site not in ALLOWED_FETCH_SITES:
        return (
            f"cross-site request refused: Sec-Fetch-Site is {_excerpt(site)}; a change must "
            "come from this service's own origin or from a client that is not a browser"
        )
    origin = request.header("Origin").strip()
    if origin and not same_origin(origin, request.header("Host")):
        return (
            f"cross-site request refused: Origin {_excerpt(origin)} is not this service's "
            f"(Host {_excerpt(request.header('Host'))}); a change must come from this "
            "service's own origin or from a client that is not a browser"
        )
    return None


def same_origin(origin: str, host: str) -> bool:
    """Whether ``origin`` (``http://host:port``, from the Origin header) names the host and
    port the request was sent to (the Host header). The scheme is not compared: behind a
    proxy that ends TLS, the service's own page is ``https://`` and the service plain HTTP.
    ``null`` (a sandboxed frame, a ``file:`` page) never matches."""
    try:
        parts = urlsplit(origin)
        default = _DEFAULT_PORTS.get(parts.scheme)
        if default is None or not parts.hostname or "@" in parts.netloc:
            return False
        if parts.path or parts.query or parts.fragment:  # an origin is scheme, host, port
            return False
        sent_to = urlsplit(f"//{host}")
        if not sent_to.hostname:
            return False
        return (parts.hostname, parts.port or default) == (
            sent_to.hostname,
            sent_to.port or default,
        )
    except ValueError:  # a port that is not a number, a bracket left open
        return False


def _excerpt(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")
