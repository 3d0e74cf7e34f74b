"""Reading a metrics page as it arrives, keeping only the parts that hold watched lines, so
a page costs what is kept of it, not its size.

``read_series`` reads a page held whole: a page costs its size, and an endless one all of
``MAX_RESPONSE_BYTES`` before it is refused (issue 22: 383 MB resident). ``SeriesReader``
is given the decoded body piece by piece and looks at it a block of whole lines at a time:
a block in which no line can matter (``Watched.first_line``: one regex search, in C) is
dropped; the others are kept from their first line that can, with the number of lines
before it. Once the page is whole the kept blocks are read in order by the same code as a
whole page (``Watched.read``, the same parser, the same line numbers), so it reads and
refuses exactly what ``read_series`` does (tests/sources/test_exposition_stream.py
compares them over many ways of cutting pages), and a page that does not arrive whole
within the limit is refused without a line parsed, as before.

What it holds while a page comes in:

* nothing of the blocks without watched lines: an endless comment, or a page of other
  metrics, costs a block;
* the blocks with watched lines, as text: at most the page, at most ``MAX_RESPONSE_BYTES``
  for an endless one, never the samples made of them (up to 40 times their bytes) before
  the page is whole. A metric's lines come together on a page (its family), so a page
  keeps little more than the lines of the metrics it is read for.

A line not ended in the text given so far is held until it is, or until its start shows
that it cannot matter; it is looked at again each time it has doubled, so a long line
costs linear time.
"""

from __future__ import annotations

import sys
from collections.abc import Collection

from ._exposition import (
    _HEAD_B,
    _LEGACY_NAME_B,
    Series,
    Take,
    Watched,
    _irregular_name,
    _read_line,
)

BLOCK = 256 * 1024
"""Bytes gathered before they are looked at: pieces arrive a few KiB at a time, and each
look costs a few Python calls."""

_HEAD = 64 * 1024
"""The start of a line looked at to tell whether the line can matter; a line whose first
64 KiB cannot tell (spaces, or a quoted name that long) is kept until it ends."""
_NAME_START = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:")
_IRREGULAR_START = frozenset(b" \t{")
_HASH = ord("#")
_EOF_LINE = b"# EOF\r"
"""The longest line that is the OpenMetrics end marker (a CR before its LF)."""


class SeriesReader:
    """``read_series`` for a page given in pieces: ``feed`` each, then ``finish``."""

    def __init__(self, names: Collection[str], *, block: int = BLOCK) -> None:
        self._block = block
        self._names = dict.fromkeys(names)
        self._watched = Watched.of(self._names)
        self._kept: list[tuple[int, bytes | list[bytes]]] = []
        """Text that may hold watched lines: whole lines (a long one in pieces), with the
        number of lines before them."""
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._lines = 0
        """Lines ended in the text looked at so far: the index of the line it is in."""
        self._line: list[bytes] | None = None
        """The start of a line not ended yet, that may matter, in the pieces it came in
        (never grown in place: that would copy it over and over)."""
        self._line_size = 0
        self._settle_at = 0
        """The length ``_line`` must reach before it is looked at again."""
        self._skipping = False
        """Inside a line that cannot matter: the rest of it is ignored."""

    def feed(self, data: bytes) -> None:
        """The next piece of the page."""
        if not self._names or not data:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= self._block:
            self._flush()

    def finish(self) -> dict[str, Series]:
        """The series of each watched metric, once the page has been given whole; raise
        ``ExpositionError`` for its first malformed watched line."""
        self._flush()
        if self._line is not None:
            self._end_line(b"")
        found: dict[str, Series] = {name: [] for name in self._names}

        def reader(lines_before: int) -> Take:
            def take(name: str, line: bytes, text: bytes | None, where: int) -> None:
                found[name].append(_read_line(line, text, where, lines_before))

            return take

        kept, self._kept = self._kept, []
        for lines_before, text in kept:
            whole = text if isinstance(text, bytes) else b"".join(text)
            if self._watched.read(whole, reader(lines_before)):
                break
        return found

    def discard(self) -> None:
        """Let go of everything kept: the read failed (a traceback that keeps this reader
        alive must not keep the page with it)."""
        self._names = {}
        self._kept = []
        self._pending = []
        self._line = None

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        self._pending_size = 0
        self._look_at(data)

    def _look_at(self, data: bytes) -> None:
        pos = 0
        if self._skipping or self._line is not None:
            end = data.find(b"\n")
            if end < 0:
                if self._line is not None:
                    self._grow(data)
                return
            if self._line is not None:
                self._end_line(data[: end + 1])
            else:
                self._lines += 1
            self._skipping = False
            pos = end + 1
        last = data.rfind(b"\n", pos)
        if last >= 0:
            whole = pos == 0 and last == len(data) - 1
            self._keep(data if whole else data[pos : last + 1])
            pos = last + 1
        if pos < len(data):
            self._line, self._line_size, self._settle_at = [], 0, 0
            self._grow(data[pos:] if pos else data)

    def _keep(self, text: bytes) -> None:
        """Keep ``text`` (whole lines, from the start of one) from its first line that
        may matter, if it has one."""
        first = self._watched.first_line(text)
        if first == 0:
            self._kept.append((self._lines, text))
        elif first > 0:
            head = _newlines(text[:first])
            self._kept.append((self._lines + head, text[first:]))
        self._lines += _newlines(text)

    def _grow(self, data: bytes) -> None:
        """Add ``data`` to the line not ended yet; drop the line once its start shows
        that it cannot matter."""
        line = self._line
        assert line is not None
        line.append(data)
        self._line_size += len(data)
        if self._line_size < self._settle_at:
            return
        verdict = _line_is_read(self._watched, _head(line))
        if verdict is False:
            self._line = None
            self._skipping = True
        elif verdict or self._line_size >= _HEAD:
            self._settle_at = sys.maxsize  # a watched line, or one only its end can tell
        else:
            self._settle_at = 2 * self._line_size

    def _end_line(self, end: bytes) -> None:
        """The line not ended yet ends with ``end``: keep it if it may matter."""
        line = self._line
        assert line is not None
        self._line = None
        if end:
            line.append(end)
        if self._line_size + len(end) <= _HEAD:
            self._keep(b"".join(line))
        else:  # joined once the page is whole: a line near the limit is never held twice
            self._kept.append((self._lines, line))
            self._lines += 1 if end else 0


def _head(pieces: list[bytes]) -> bytes:
    """The first ``_HEAD`` bytes of a line given in ``pieces``."""
    head = pieces[0][:_HEAD]
    for piece in pieces[1:]:
        if len(head) >= _HEAD:
            break
        head += piece[: _HEAD - len(head)]
    return head


def _newlines(text: bytes) -> int:
    """``text.count(b"\\n")`` in half its time (memchr finds each one; ``count`` looks at
    every byte): counting lines is most of what reading as it arrives adds."""
    return len(text) - len(text.replace(b"\n", b""))


def _line_is_read(watched: Watched, head: bytes) -> bool | None:
    """Whether a line that starts with ``head`` (and does not end within it) is one of a
    watched metric, or the ``# EOF`` that ends the page: True or False once ``head``
    settles it, None while the rest of the line could still decide. It follows what
    ``Watched.read`` looks at (``_exposition``): the name token of a line that starts with
    one, the quoted name of a line that starts with a space, a tab or ``{``."""
    first = head[0]
    if first in _NAME_START:
        token = _LEGACY_NAME_B.match(head)
        assert token is not None
        if token.end() == len(head):  # the name may go on
            return None if token.end() <= watched.longest else False
        return token.group() in watched.encoded
    if first == _HASH:
        return None if _EOF_LINE.startswith(head) else False
    if first in _IRREGULAR_START:
        head_match = _HEAD_B.match(head)
        if head_match is None or head_match.end() == len(head):
            return None
        irregular = _irregular_name(head, 0)
        return irregular is not None and irregular in watched.names
    return False
