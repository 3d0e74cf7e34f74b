"""Reading an answer's body within ``MAX_RESPONSE_BYTES``, whatever its ``Content-Encoding``.

httpx decodes a compressed body a whole network chunk at a time: one 16 KiB chunk of a gzip
bomb becomes 16 MiB in memory before any limit is looked at, and ``gzip, gzip`` multiplies
that again. So the body is read raw (``aiter_raw``) and decoded here, each coding by a
decoder that never makes more than ``_PIECE`` bytes per step; the decoded bytes are counted
as they come and reading stops as soon as they pass the limit. What a read can take is then
the limit plus a few pieces, however the body is encoded or stacked.

Only the codings decoded here are asked for (``ACCEPT_ENCODING``); an answer in another one,
or with more than ``MAX_CODINGS`` stacked, is a failed read.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

import httpx

from .._core import FetchError, ResponseTooLarge

ACCEPT_ENCODING = "gzip, deflate"
MAX_CODINGS = 2
"""Servers compress once; a proxy may add one more. Deeper stacks are refused unread."""
_PIECE = 64 * 1024
"""The most a decoder makes in one step."""


class _Zlib:
    """gzip (with concatenated members, as ``gzip -c a b`` makes) or deflate (zlib-wrapped, or
    raw as some servers send it, like httpx and browsers accept)."""

    def __init__(self, coding: str) -> None:
        self.gzip = coding != "deflate"
        self.raw_tried = False
        self.fed = False
        """Whether the current stream (gzip member) has been given bytes."""
        self.inflate = self._new()

    def _new(self, raw: bool = False) -> zlib._Decompress:
        wbits = 16 + zlib.MAX_WBITS if self.gzip else (-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        return zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decode ``data`` (``b""``: the end), in pieces of at most ``_PIECE`` bytes."""
        pending = data
        while True:
            if self.inflate.eof:
                if not self.gzip:
                    return  # anything after the deflate stream is ignored
                # Another member may follow; zero padding after the last one is ignored.
                pending = (self.inflate.unused_data + pending).lstrip(b"\0")
                self.inflate, self.fed = self._new(), False
                if not pending:
                    return
            self.fed = self.fed or bool(pending)
            try:
                piece = self.inflate.decompress(pending, _PIECE)
            except zlib.error as exc:
                if self.gzip or self.raw_tried:
                    raise FetchError(f"the body is not valid {self._name}: {exc}") from None
                self.raw_tried, self.inflate = True, self._new(raw=True)
                continue
            self.raw_tried = True  # the first bytes decoded: the variant is settled
            # At the end of a stream what follows it is in ``unused_data``; CPython leaves a
            # copy in ``unconsumed_tail`` too. Read again, it garbled the next member (a
            # valid body refused), or doubled at each member's end (memory without bound).
            pending = b"" if self.inflate.eof else self.inflate.unconsumed_tail
            if piece:
                yield piece
            elif not pending and not self.inflate.eof:
                if not data and self.fed:
                    # A page cut short would read as a page without some series.
                    raise FetchError(f"the body ends inside its {self._name} stream: cut short")
                return

    @property
    def _name(self) -> str:
        return "gzip" if self.gzip else "deflate"


_DECODERS = {"gzip": _Zlib, "x-gzip": _Zlib, "deflate": _Zlib}


def _decoders(response: httpx.Response) -> list[_Zlib]:
    """One decoder per coding, in the order they are undone (the last applied first)."""
    codings = [
        coding.strip().lower()
        for value in response.headers.get_list("Content-Encoding")
        for coding in value.split(",")
        if coding.strip()
    ]
    applied = [c for c in codings if c != "identity"]
    if len(applied) > MAX_CODINGS:
        raise FetchError(
            f"Content-Encoding {', '.join(codings)!r}: more than {MAX_CODINGS} stacked codings"
        )
    unknown = [c for c in applied if c not in _DECODERS]
    if unknown:
        raise FetchError(
            f"Content-Encoding {unknown[0]!r} is not supported (asked for: {ACCEPT_ENCODING})"
        )
    return [_Zlib(coding) for coding in reversed(applied)]


def _through(data: bytes, decoders: list[_Zlib]) -> Iterator[bytes]:
    if not decoders:
        if data:
            yield data
        return
    for piece in decoders[0].feed(data):
        yield from _through(piece, decoders[1:])


def _ending(decoders: list[_Zlib]) -> Iterator[bytes]:
    """What each decoder still holds at the end of the body, through the ones after it."""
    for index, decoder in enumerate(decoders):
        for piece in decoder.feed(b""):
            yield from _through(piece, decoders[index + 1 :])


async def read_body(
    response: httpx.Response, limit: int, what: str, *, setting: bool = True
) -> bytes:
    """The decoded body of a streamed ``response``; ``FetchError`` as soon as it passes
    ``limit`` bytes, so a huge, endless or compressed-bomb answer is cut off, never held.
    ``setting``: whether ``limit`` is ``MAX_RESPONSE_BYTES`` (the error then says so)."""
    pieces: list[bytes] = []
    try:
        await stream_body(response, limit, what, pieces.append, setting=setting)
    except BaseException:
        # The error's traceback keeps this frame, and with it the list, until the garbage
        # collector finds the cycle it is in: up to the limit held for nothing, per read.
        pieces.clear()
        raise
    return b"".join(pieces)


async def stream_body(
    response: httpx.Response,
    limit: int,
    what: str,
    take: Callable[[bytes], None],
    *,
    setting: bool = True,
) -> None:
    """``read_body`` piece by piece: ``take`` each decoded piece as it comes, so the body
    need not be held at all. ``FetchError`` as soon as the pieces pass ``limit`` bytes
    (before the piece that passes it is taken)."""
    encoded = _encoded(response)

    def too_large() -> ResponseTooLarge:  # worded only when it happens: not on every read
        said = f"{what} is larger than {limit} bytes{' once decompressed' if encoded else ''}"
        if setting:
            said += (
                " (MAX_RESPONSE_BYTES); raise MAX_RESPONSE_BYTES if the answer is meant to be"
                " this large"
            )
        return ResponseTooLarge(said)

    length = response.headers.get("Content-Length", "")
    if length.isdigit() and not encoded and int(length) > limit:
        raise too_large()
    decoders = _decoders(response) if encoded else []
    size = 0

    def count(decoded: Iterator[bytes]) -> None:
        nonlocal size
        for piece in decoded:
            size += len(piece)
            if size > limit:
                raise too_large()
            take(piece)

    async for chunk in response.aiter_raw():
        if decoders:
            count(_through(chunk, decoders))
        else:  # the common case, without a generator per chunk
            size += len(chunk)
            if size > limit:
                raise too_large()
            take(chunk)
    if decoders:
        count(_ending(decoders))


def _encoded(response: httpx.Response) -> bool:
    return any(
        coding.strip().lower() not in ("", "identity")
        for value in response.headers.get_list("Content-Encoding")
        for coding in value.split(",")
    )
