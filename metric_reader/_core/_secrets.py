"""The secrets the service knows, kept out of every text it shows.

The service sends credentials to its endpoints, and an endpoint can send them back: an
auth proxy that echoes the ``Authorization`` header in its error page, in a reason phrase
or in a warning. Such text becomes an error, and errors reach the log, ``/readyz``,
``/api/status``, the status page, ``check`` and ``backtest``. ``Secret`` hides a value the
service holds; this module hides it in text that came from anywhere else.

The layers that load or read a secret tell it here as they do (``remember_secret``: the
configuration as it is parsed, the HTTP client as it reads a credential file again or
builds a basic auth header), and text is passed through ``redact`` where it is made: every
``MetricReaderError``, every log record (``configure_logging``), and excerpts of answers
(``redacted_excerpt``, which never cuts a secret in two so that half of it would show).
A secret is searched for as written and as JSON, ``repr``, HTML and URL encoding write it,
so escaping it on the way does not let it through.

Credentials in a URL are secrets wherever the URL shows. They are found as RFC 3986 reads
a URL: the authority runs from ``//`` to the first ``/``, ``?`` or ``#``, and the userinfo
is all of it up to its *last* ``@``: in ``http://admin:p@ss@host/`` the password is
``p@ss``.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import quote, quote_plus, unquote

MASK = "***"
"""What a secret is replaced with."""
MIN_SECRET_LENGTH = 6
"""Shorter values are not searched for in text: masking every ``2024`` or ``true`` would
blank out ordinary words and numbers, and a secret that short is guessed in a moment.
Credentials in a URL are masked whatever their length."""
MAX_SECRETS = 64
"""The most values remembered that come from no ``source`` (the configuration's; the oldest
are forgotten first): each is a value someone wrote, so this is never reached in practice."""
KEPT_PER_SOURCE = 3
"""The values of one source remembered: the one in use and the two before it. A token file
that rotates every hour must not grow the search without end, and an endpoint is not
expected to echo a token that was replaced two rotations ago."""

_URL_IN_TEXT = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^\s/?#\"'<>\\]*)@",
)
"""A URL with credentials inside some text: the authority also ends at white space, a
quote or an angle bracket, which end the URL in the text around it."""
_URL_VALUE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")
"""A URL with credentials, when the whole value is the URL (RFC 3986)."""


class _Known:
    """The values to hide, and one pattern that finds any of them (rebuilt when one is
    added, which is rare: at start, at a reload, when a token rotates)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, str | None] = {}
        """Each value, and the source it came from; in the order they came."""
        self.pattern: re.Pattern[str] | None = None
        self.longest = 0
        """The length of the longest form of a value, in UTF-8 bytes."""

    def add(self, value: str, source: str | None) -> None:
        if len(value) < MIN_SECRET_LENGTH or self.values.get(value, "") == source:
            return
        with self.lock:
            self.values.pop(value, None)
            self.values[value] = source
            same = [known for known, where in self.values.items() if where == source]
            for old in same[: -KEPT_PER_SOURCE if source is not None else -MAX_SECRETS]:
                del self.values[old]
            self._compile()

    def clear(self) -> None:
        with self.lock:
            self.values.clear()
            self._compile()

    def _compile(self) -> None:
        forms = {form for value in self.values for form in _forms(value)}
        # Longest first: where two overlap, the longer is masked whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self.longest = max(
            (len(form.encode("utf-8", "surrogatepass")) for form in forms), default=0
        )
        self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None


_known = _Known()


def _forms(value: str) -> set[str]:
    """``value`` as it may be written out: as is, and escaped the ways text here is."""
    import html  # here: its entity table is half a megabyte, and most runs have no secret

    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        html.escape(value),
        quote(value, safe="", errors="surrogatepass"),
        quote_plus(value, safe="", errors="surrogatepass"),
    }


def remember_secret(value: str, source: str | None = None) -> None:
    """From now on, mask ``value`` wherever ``redact`` is applied (values shorter than
    ``MIN_SECRET_LENGTH`` are not searched for). ``source`` names where a value that is
    replaced from time to time comes from (a credential file): only its last
    ``KEPT_PER_SOURCE`` values are kept."""
    _known.add(value, source)


def forget_secrets() -> None:
    """Mask none of the values remembered so far. For tests, which load many settings in
    one process; the service never forgets a secret it saw."""
    _known.clear()


def redact(text: str) -> str:
    """``text`` with each secret remembered, and the credentials of any URL in it,
    replaced by ``***``."""
    pattern = _known.pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if "@" in text and "://" in text:
        text = _URL_IN_TEXT.sub(_masked_userinfo, text)
    return text


def redacted_excerpt(data: str | bytes, size: int) -> str:
    """The start of ``data`` (about ``size`` characters; bytes are decoded as UTF-8),
    redacted, with no piece of a secret left where it is cut: the cut is made after
    ``redact``, on text read far enough to hold any secret that begins before it."""
    reach = size + _known.longest + 3  # and the rest of a character cut in two
    text = data[:reach].decode("utf-8", "replace") if isinstance(data, bytes) else data[:reach]
    return redact(text)[:size]


def without_url_credentials(url: str) -> str:
    """``url`` (one URL, as the user wrote it) with its password as ``***``; a userinfo
    without a password (a token given as the user name) is ``***`` as a whole."""
    return _URL_VALUE.sub(_masked_userinfo, url, count=1)


def remember_url_credentials(url: str) -> None:
    """Remember the userinfo of ``url`` as secrets (as written and percent-decoded), so a
    URL refused for holding them does not show them anywhere else either."""
    found = _URL_VALUE.match(url)
    if found is None:
        return
    user, colon, password = found["userinfo"].partition(":")
    for secret in (password, found["userinfo"]) if colon else (user,):
        remember_secret(secret)
        remember_secret(unquote(secret))


def _masked_userinfo(found: re.Match[str]) -> str:
    user, colon, _ = found["userinfo"].partition(":")
    return f"{found['head']}{user}:{MASK}@" if colon else f"{found['head']}{MASK}@"
