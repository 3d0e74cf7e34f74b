"""Selective reader for the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text.

A rule watches a few metrics on pages that can hold 100,000 series and more, so the
reader parses only the lines of the metrics asked for and never looks at the others:
a malformed line of an unwatched metric is not noticed, one of a watched metric fails
the whole read (``ExpositionError``), as Prometheus fails a scrape. ``_exposition_stream``
reads a page as it arrives with the same line finders and parser.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .._core import redacted_excerpt

Series = list[tuple[dict[str, str], float]]
Take = Callable[[str, bytes, "bytes | None", int], None]
"""What is done with each line of a watched metric: called with the metric's name, the
line, and where the line is (the text it is in and its offset there, or None and its index
in that text): what ``_read_line`` needs to name it in an error."""

# Measured on a 10 MB page of 1,359 names: the regex scan costs 6 ms for one name and
# 10 ms for 64, the line pass 37 ms whatever the number.
_FIND_MAX_NAMES = 64

_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_NAME_B = re.compile(rb"[a-zA-Z_:][a-zA-Z0-9_:]*")
_EOF = rb"# EOF(?:\r?\n|\r?\Z)"
_HEAD_B = re.compile(
    rb'[ \t]*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)|\{[ \t]*("[^"\\\n]*(?:\\[^\n][^"\\\n]*)*")[ \t]*(=?))'
)

_QUOTED = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_QUOTED_RE = re.compile(_QUOTED, re.S)
_LABEL = re.compile(
    rf'[ \t]*(?:([a-zA-Z_][a-zA-Z0-9_]*)|({_QUOTED}))[ \t]*=[ \t]*"([^"\\]*(?:\\.[^"\\]*)*)"'
    r"[ \t]*(,?)",
    re.S,
)
_LABEL_NAME = re.compile(rf"[a-zA-Z_][a-zA-Z0-9_]*|{_QUOTED}", re.S)
_REST = re.compile(r"[ \t]*([^ \t#][^ \t]*)(?:[ \t]+([^ \t#][^ \t]*))?(?:[ \t]+#(.*)|[ \t]*)", re.S)
_EXEMPLAR_REST = re.compile(r"[ \t]*([^ \t]+)(?:[ \t]+([^ \t]+))?[ \t]*")
_TOKEN = re.compile(r"[^ \t]+")
_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SPECIAL: dict[str, float] = {}
for _word, _number in (("nan", float("nan")), ("inf", float("inf")), ("infinity", float("inf"))):
    _SPECIAL.update({_word: _number, "+" + _word: _number, "-" + _word: -_number})


class ExpositionError(ValueError):
    """The page is not valid exposition text where a watched metric is."""


class _Malformed(Exception):
    """What is wrong with one line; ``read_series`` adds the line number."""


def read_series(page: bytes, names: Collection[str]) -> dict[str, Series]:
    """Every sample of each metric in ``names``: ``(labels without __name__, value)``.

    Samples come in page order; a name that is not on the page maps to ``[]``. Raise
    ``ExpositionError`` (naming the line) when a line of one of these metrics is malformed.

    A line belongs to ``name`` when its name token, the longest run of metric-name
    characters it starts with, is exactly ``name``; so ``queue_depth`` never picks
    ``queue_depth_max`` and ``x_bucket`` is its own name. The lines are found:

    * for up to ``_FIND_MAX_NAMES`` names, by one regex scan of the page that stops only at
      newlines followed by a watched name (written as a trie, so names sharing a prefix
      cost little more than one), by a line that does not start with a name (indented
      lines, Prometheus 3's quoted names ``{"my.metric",a="b"} 1``) or by the OpenMetrics
      ``# EOF``. A name hit counts when the next byte cannot continue a metric name. One
      pass in C, about as fast as a single ``bytes.find`` for one name.
    * for more names, by one ``split`` of the page into lines and a dict lookup of each
      line's name token; its cost does not grow with the number of names.

    On valid pages it reads what Prometheus and ``prometheus_client`` read, and it also
    takes: spaces or tabs anywhere between tokens, indented lines, CRLF line ends, trailing
    commas in label sets, quoted metric and label names, the value spellings of Go's
    ``ParseFloat`` (no hex, no ``_``, as Prometheus) and of ``prometheus_client`` (also
    ``+nan``, ``-nan``), and Prometheus' escapes (``\\\\``, ``\\"`` and ``\\n``; any other
    backslash pair is kept as it is). Where ``prometheus_client`` is laxer than Prometheus
    (a third number after the value, a leading comma in a label set) a watched line is
    refused, as Prometheus would; and a counter sample written without ``_total`` keeps
    its name, which ``prometheus_client`` alone extends. Timestamps and OpenMetrics
    exemplars are checked and ignored: the service never uses scraped timestamps. Nothing
    after an OpenMetrics ``# EOF`` line is read.
    """
    found: dict[str, Series] = {name: [] for name in names}
    if not found or not page:
        return found

    def take(name: str, line: bytes, text: bytes | None, where: int) -> None:
        found[name].append(_read_line(line, text, where))

    Watched.of(found).read(page, take)
    return found


@dataclass(frozen=True, slots=True)
class Watched:
    """The metric names a page is read for, in the forms the two ways of finding their
    lines look them up (see ``read_series``)."""

    names: Collection[str]
    legacy: tuple[str, ...]
    """The names a line can start with unquoted, sorted."""
    encoded: dict[bytes, str] = field(repr=False)
    """``legacy``, by their bytes."""
    longest: int
    """The length of the longest of ``legacy``."""

    @classmethod
    def of(cls, names: Collection[str]) -> Watched:
        legacy = tuple(sorted(name for name in names if _LEGACY_NAME.fullmatch(name)))
        encoded = {name.encode("ascii"): name for name in legacy}
        return cls(names, legacy, encoded, max(map(len, legacy), default=0))

    def read(self, text: bytes, take: Take) -> bool:
        """Call ``take`` with each line of ``text`` (whole lines, from the start of one)
        that belongs to a watched metric, in order; return whether it stopped at the
        OpenMetrics ``# EOF``."""
        if len(self.legacy) > _FIND_MAX_NAMES:
            return _read_by_lines(text, take, self)
        return _read_by_find(text, take, self)

    def first_line(self, text: bytes) -> int:
        """Where the first line of ``text`` that ``read`` would look at starts (one of a
        watched metric, one that may be, or ``# EOF``), or -1: no line of it matters."""
        anywhere, at_start = _line_finder(self.legacy)
        if at_start.match(text):
            return 0
        found = anywhere.search(text)
        return -1 if found is None else found.start() + 1


def _read_by_find(page: bytes, take: Take, watched: Watched) -> bool:
    size = len(page)
    anywhere, at_start = _line_finder(watched.legacy)
    first = at_start.match(page)
    matches = anywhere.finditer(page)
    for match in matches if first is None else itertools.chain((first,), matches):
        start = match.start() if match is first else match.start() + 1
        legacy = match[1]
        if legacy is not None:
            name = legacy.decode("ascii")
        elif page.startswith(b"#", start):  # the OpenMetrics "# EOF": nothing after it counts
            return True
        else:
            irregular = _irregular_name(page, start)
            if irregular is None or irregular not in watched.names:
                continue
            name = irregular
        end = page.find(b"\n", start)
        if end < 0:
            end = size
        take(name, page[start:end], page, start)
    return False


@functools.lru_cache(maxsize=256)
def _line_finder(names: tuple[str, ...]) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """Patterns for the lines to look at: one that finds them after a newline, one that
    matches the first line. Group 1 is the watched name a line starts with; without it the
    line is irregular (starts with a space, a tab or ``{``) or the ``# EOF`` marker."""
    watched = _alternatives([name.encode("ascii") for name in names])
    # Without names, "(?!)()" keeps a group 1 that never matches.
    line = rb"(?:(" + watched + rb")(?![a-zA-Z0-9_:])|" if names else rb"(?:(?!)()|"
    line += rb"[ \t{]|" + _EOF + rb")"
    return re.compile(rb"\n" + line), re.compile(line)


def _alternatives(names: list[bytes]) -> bytes:
    """A regex matching any of ``names``, written as a trie (``node_(?:cpu|disk)``): the
    regex engine tries alternatives one by one, so names sharing a prefix would each
    re-match it on every line that starts with it."""
    if len(names) == 1:
        return re.escape(names[0])
    by_first: dict[int, list[bytes]] = {}
    ends_here = False
    for name in names:
        if name:
            by_first.setdefault(name[0], []).append(name[1:])
        else:
            ends_here = True
    branches = [
        re.escape(bytes([first])) + _alternatives(rests)
        if len(rests) > 1
        else re.escape(bytes([first]) + rests[0])
        for first, rests in sorted(by_first.items())
    ]
    if len(branches) == 1 and not ends_here:
        return branches[0]
    return b"(?:" + b"|".join(branches) + (b")?" if ends_here else b")")


def _read_by_lines(page: bytes, take: Take, watched: Watched) -> bool:
    wanted = watched.encoded
    for index, line in enumerate(page.split(b"\n")):
        match = _LEGACY_NAME_B.match(line)
        if match is not None:
            name = wanted.get(match.group())
            if name is None:
                continue
        else:
            lead = line[:1]
            if lead == b"#":
                if line == b"# EOF" or line == b"# EOF\r":
                    return True
                continue
            if lead not in (b" ", b"\t", b"{"):
                continue
            irregular = _irregular_name(line, 0)
            if irregular is None or irregular not in watched.names:
                continue
            name = irregular
        take(name, line, None, index)
    return False


def _irregular_name(data: bytes, pos: int) -> str | None:
    """The metric name of a line that starts with a space, a tab or ``{`` (if any)."""
    match = _HEAD_B.match(data, pos)
    if match is None:
        return None
    if match[1] is not None:
        return match[1].decode("ascii")
    if match[3]:  # {"x"=...: a quoted label name, the line has no metric name
        return None
    try:
        name = _unescape(match[2][1:-1].decode("utf-8"))
    except UnicodeDecodeError:
        return None
    return name or None


def _read_line(
    raw: bytes, page: bytes | None, where: int, lines_before: int = 0
) -> tuple[dict[str, str], float]:
    """Parse one line; ``where`` is its offset in ``page``, or its index without a page;
    ``lines_before``: the lines of the page before ``page`` (or before index 0)."""
    try:
        return _parse_line(raw.decode("utf-8").removesuffix("\r"))
    except UnicodeDecodeError as err:
        problem = f"invalid UTF-8 at byte {err.start + 1} of the line"
    except _Malformed as err:
        problem = str(err)
    number = lines_before + (where if page is None else page.count(b"\n", 0, where)) + 1
    excerpt = redacted_excerpt(raw, 160) + ("..." if len(raw) > 160 else "")
    raise ExpositionError(f"line {number}: {problem}: {excerpt!r}")


def _parse_line(line: str) -> tuple[dict[str, str], float]:
    labels: dict[str, str] = {}
    pos = _skip(line, 0)
    if line.startswith("{", pos):
        pos = _skip(line, pos + 1)
        quoted = _QUOTED_RE.match(line, pos)
        if quoted is None:
            raise _Malformed("expected a quoted metric name after '{'")
        pos = _skip(line, quoted.end())
        if line.startswith(",", pos):
            pos = _parse_labels(line, pos + 1, labels)
        elif line.startswith("}", pos):
            pos += 1
        else:
            raise _Malformed("expected ',' or '}' after the quoted metric name")
    else:
        name = _LEGACY_NAME.match(line, pos)
        if name is None:
            raise _Malformed("expected a metric name")
        pos = name.end()
        after = _skip(line, pos)
        if line.startswith("{", after):
            pos = _parse_labels(line, after + 1, labels)
        elif after == pos < len(line):
            raise _Malformed(f"unexpected {line[pos]!r} after the metric name")
    rest = _REST.fullmatch(line, pos)
    if rest is None:
        tokens = _TOKEN.findall(line, pos)
        if not tokens:
            raise _Malformed("missing value")
        if tokens[0].startswith("#"):
            raise _Malformed("missing value before '#'")
        raise _Malformed(f"unexpected {tokens[min(2, len(tokens) - 1)]!r} after the timestamp")
    value = _decode(rest[1], "value")
    if rest[2] is not None:
        _decode(rest[2], "timestamp")
    if rest[3] is not None:
        _check_exemplar(rest[3])
    return labels, value


def _parse_labels(line: str, pos: int, labels: dict[str, str]) -> int:
    """Read ``a="b",...}`` from just after the ``{``; return the position after the ``}``."""
    while True:
        match = _LABEL.match(line, pos)
        if match is None:
            pos = _skip(line, pos)
            if line.startswith("}", pos):
                return pos + 1
            raise _Malformed(_label_problem(line, pos))
        name = match[1]
        if name is None:
            name = _unescape(match[2][1:-1])
            if not name:
                raise _Malformed("empty label name")
        if name in labels or name == "__name__":
            raise _Malformed(f"label {name!r} appears twice")
        value = match[3]
        labels[name] = _unescape(value) if "\\" in value else value
        pos = match.end()
        if not match[4]:
            if line.startswith("}", pos):
                return pos + 1
            if pos >= len(line):
                raise _Malformed("label set not closed with '}'")
            raise _Malformed(f"expected ',' or '}}' after the value of label {name!r}")


def _label_problem(line: str, pos: int) -> str:
    """Say why no label starts at ``pos`` (only called on malformed lines)."""
    if pos >= len(line):
        return "label set not closed with '}'"
    name = _LABEL_NAME.match(line, pos)
    if name is None:
        if line[pos] == '"':
            return "unterminated quoted label name"
        return f"expected a label name, found {line[pos]!r}"
    label = name.group() if name.group().startswith('"') else repr(name.group())
    pos = _skip(line, name.end())
    if not line.startswith("=", pos):
        return f"expected '=' after label name {label}"
    pos = _skip(line, pos + 1)
    if not line.startswith('"', pos):
        return f"expected a double-quoted value for label {label}"
    return f"unterminated value for label {label}"


def _check_exemplar(text: str) -> None:
    pos = _skip(text, 0)
    if not text.startswith("{", pos):
        raise _Malformed("expected '{' after '#' (an exemplar)")
    pos = _parse_labels(text, pos + 1, {})
    rest = _EXEMPLAR_REST.fullmatch(text, pos)
    if rest is None:
        raise _Malformed("an exemplar needs a value and at most a timestamp after its labels")
    _decode(rest[1], "exemplar value")
    if rest[2] is not None:
        _decode(rest[2], "exemplar timestamp")


def _decode(token: str, what: str) -> float:
    try:
        return decode_value(token)
    except ValueError:
        raise _Malformed(f"invalid {what} {token!r}") from None


def decode_value(text: str) -> float:
    """A sample value as Prometheus or ``prometheus_client`` reads it; ``ValueError`` if none.

    Decimal numbers (``1``, ``-2.5e-3``, ``.5``, ``1.``) and, in any case,
    ``NaN``, ``Inf`` and ``Infinity`` with an optional sign.
    """
    if _DECIMAL.fullmatch(text):
        return float(text)
    special = _SPECIAL.get(text.lower()) if text.isascii() else None
    if special is None:
        raise ValueError(f"not a sample value: {text!r}")
    return special


def _skip(text: str, pos: int) -> int:
    """The position of the first character at or after ``pos`` that is not a space or tab."""
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], m[0]), text)
