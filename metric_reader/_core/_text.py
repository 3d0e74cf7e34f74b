"""Text that can always be written out: no lone surrogates.

A Python ``str`` may hold lone surrogates (``\\udcff``): JSON's ``\\ud800`` escapes decode
to them, and ``os.environ`` turns bytes that are not UTF-8 into them. They cannot be
encoded as UTF-8, so one of them in a label value would make every surface that writes it
(the status page, ``/api/status``, ``/metrics``, a plugin's JSON) fail. Go replaces them
with U+FFFD when it decodes JSON; so do we, wherever text comes in or goes out.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")


def valid_text(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD (the same object when clean)."""
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def may_hold_surrogates(body: bytes) -> bool:
    """Whether ``json.loads(body)`` can hold a lone surrogate: only through a ``\\uD800``
    to ``\\uDFFF`` escape, or the bytes ``json`` decodes with ``surrogatepass`` (they begin
    with 0xED). A cheap test, so clean answers are not walked."""
    return b"\xed" in body or _SURROGATE_ESCAPE.search(body) is not None


def valid_strings(value: Any) -> Any:
    """A decoded JSON value with ``valid_text`` applied to every key and string in it."""
    if isinstance(value, str):
        return valid_text(value)
    if isinstance(value, dict):
        return {valid_text(k): valid_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [valid_strings(v) for v in value]
    return value


def utf8(text: str) -> bytes:
    """``text`` as UTF-8, lone surrogates written as U+FFFD: never raises."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return valid_text(text).encode("utf-8")
