"""Label regexes matched as Prometheus matches them, in time linear in the value.

Prometheus compiles a label regex with Go's ``regexp``, an RE2: fully anchored
(``^(?s:...)$``, so ``.`` matches a newline too), and without the syntax that needs
backtracking (backreferences, lookaround). Python's ``re`` backtracks: ``([a-z0-9]+)*-prod``
against a long label value from a scraped page takes exponential time and would freeze the
event loop. So label regexes run on RE2 itself (``google-re2``), with its syntax checked
when the configuration is read.

Calling RE2 through its binding costs about half a microsecond, more than ``re`` on a short
value, and matching is on the hot path of every read. So, as Prometheus' FastRegexMatcher
does, the common shapes skip the engine: a literal or an alternation of literals
(``GET|POST``) is a set lookup, ``sd.*``, ``.*-prod`` and ``.*err.*`` are string tests. The
engine's answers for short values are remembered (label values repeat poll after poll).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

_NO_MATCH = (-1, -1)
_META = frozenset("\\.+*?()|[]{}^$")
_CACHE_SIZE = 8192
"""Values whose answer one regex remembers (a poll's worth for most rules); the cache
starts over when it is full."""
_CACHED_LENGTH = 128
"""Longer values are not remembered, so the cache stays small whatever a page holds."""
_UNSUPPORTED = re.compile(r"invalid perl operator|invalid escape sequence: \\[1-9]")
_SURROGATE = re.compile("[\ud800-\udfff]")

Fullmatch = Callable[[str], bool]


@cache
def _re2_binding() -> tuple[Any, Any, Any]:
    """RE2's binding, its options and the anchor, imported on first use: the library holds
    about 3 MB that a service without label regexes need not carry."""
    import re2  # type: ignore[import-untyped]
    from re2 import _re2  # the binding itself: re2's Python wrapper costs ~6 µs a match

    options = re2.Options()
    options.log_errors = False  # raised as ValueError instead of printed to stderr
    options.never_capture = True
    options.dot_nl = True  # Prometheus wraps the regex in (?s:...)
    return _re2, options, _re2.RE2.Anchor.ANCHOR_BOTH  # fully anchored: ^(?:...)$


def compile_label_regex(regex: str) -> Fullmatch:
    """A function telling whether a whole label value matches ``regex``; raise
    ``ValueError`` with RE2's reason when Prometheus would refuse the regex."""
    compiled = _compiled(regex)
    if isinstance(compiled, str):
        reason = compiled
        if _UNSUPPORTED.match(reason):
            reason += " (label regexes use RE2 syntax, as in Prometheus: no lookaround or "
            reason += "backreferences)"
        raise ValueError(reason)
    return _fast_path(regex) or _engine(compiled, _re2_binding()[2])


def label_regex_refusal(regex: str) -> str | None:
    """Why Prometheus refuses ``regex`` in a label matcher, in Go's words (``error parsing
    regexp: missing closing ): `(` ``), or None when it accepts it."""
    compiled = _compiled(regex)
    if not isinstance(compiled, str):
        return None
    if compiled.startswith("missing ): "):  # Go names the regex as Prometheus wraps it
        compiled = f"missing ): ^(?:{regex})$"
    return go_regex_error(compiled).replace("\n", "\\n")  # one line, whatever it holds


def _compiled(regex: str) -> Any:
    """RE2's compiled ``regex``, or its reason (one line) for refusing it."""
    try:
        pattern = regex.encode("utf-8")
    except UnicodeEncodeError:
        return "invalid UTF-8"
    refused = _refused_by_go(regex)
    if refused is not None:
        return refused
    binding, options, _ = _re2_binding()
    compiled = binding.RE2(pattern, options)
    if not compiled.ok():
        # RE2 quotes the regex in its reason; a newline in it would break the one-line error
        return str(compiled.error().decode("utf-8", "replace").replace("\n", "\\n"))
    return compiled


_RE2_TO_GO = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "invalid escape sequence": "invalid escape sequence",
    "bad repetition operator": "invalid nested repetition operator",
    "no argument for repetition operator": "missing argument to repetition operator",
    "invalid character class range": "invalid character class range",
    "invalid character class": "invalid character class",
    "invalid repetition size": "invalid repeat count",
    "invalid named capture group": "invalid named capture",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "trailing \\": "trailing backslash at end of expression",
    "invalid UTF-8": "invalid UTF-8",
}


def go_regex_error(reason: str) -> str:
    """RE2's reason as Go's regexp/syntax words it: ``missing closing ): `(` ``."""
    code, _, expression = reason.partition(": ")
    return f"error parsing regexp: {_RE2_TO_GO.get(code, code)}: `{expression}`"


def _refused_by_go(regex: str) -> str | None:
    """What Go's regexp refuses that the C++ RE2 accepts: ``\\C`` (any byte), and ``\\Q``
    without its ``\\E`` (in ``^(?:...)$``, as Prometheus compiles it, it quotes the ``)``)."""
    pos = 0
    while pos < len(regex):
        if regex.startswith("\\Q", pos):  # quoted text: backslashes in it are literal
            end = regex.find("\\E", pos + 2)
            if end < 0:
                return f"missing ): ^(?:{regex})$"
            pos = end + 2
        elif regex[pos] == "\\":
            if regex[pos + 1 : pos + 2] == "C":
                return "invalid escape sequence: \\C"
            pos += 2
        else:
            pos += 1
    return None


def _engine(compiled: Any, whole: Any) -> Fullmatch:
    match = compiled.Match
    known: dict[str, bool] = {}

    def fullmatch(value: str) -> bool:
        cached = known.get(value)
        if cached is not None:
            return cached
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: what Go would see, U+FFFD
            data = _SURROGATE.sub("\ufffd", value).encode("utf-8")
        answer = bool(match(whole, data, 0, len(data))[0] != _NO_MATCH)
        if len(value) <= _CACHED_LENGTH:
            if len(known) >= _CACHE_SIZE:
                known.clear()
            known[value] = answer
        return answer

    return fullmatch


def _fast_path(regex: str) -> Fullmatch | None:
    """String tests for literal text, literals joined by ``|`` (``GET|POST``), and literals
    joined by ``.*`` (``sd.*``, ``.*-prod``, ``.*err.*``, ``web-.*:9100``)."""
    literals = _alternatives(regex)
    if literals is not None:
        if len(literals) == 1:
            return literals[0].__eq__
        return frozenset(literals).__contains__
    if regex == ".+":
        return bool
    pieces = _split_literals(regex, ".*")
    if pieces is None:
        return None
    head, *middle, tail = pieces
    if not middle:
        if not tail:
            return lambda value: value.startswith(head)
        if not head:
            return lambda value: value.endswith(tail)
        least = len(head) + len(tail)
        return lambda value: len(value) >= least and value.startswith(head) and value.endswith(tail)
    if len(middle) == 1 and not head and not tail:
        (inner,) = middle
        return lambda value: inner in value

    def fullmatch(value: str) -> bool:
        if not (value.startswith(head) and value.endswith(tail)):
            return False
        pos, end = len(head), len(value) - len(tail)
        for piece in middle:  # each .* takes as little as it can: the leftmost find
            found = value.find(piece, pos, end)
            if found < 0:
                return False
            pos = found + len(piece)
        return pos <= end

    return fullmatch


def _alternatives(regex: str) -> list[str] | None:
    """The literals of ``a|b|c``, or None when some part is not literal text."""
    return _split_literals(regex, "|")


def _split_literals(regex: str, separator: str) -> list[str] | None:
    """The literal texts between the (unescaped) separators, or None when some text is not
    literal. An escaped character is skipped whole: ``\\.*`` is not a ``.*`` separator."""
    parts: list[str] = []
    start = pos = 0
    while pos < len(regex):
        if regex[pos] == "\\":
            pos += 2
        elif regex.startswith(separator, pos):
            parts.append(regex[start:pos])
            pos += len(separator)
            start = pos
        else:
            pos += 1
    parts.append(regex[start:])
    literals = [_literal(part) for part in parts]
    return None if None in literals else literals  # type: ignore[return-value]


def _literal(regex: str) -> str | None:
    """The text ``regex`` matches if it is literal (ASCII punctuation may be escaped)."""
    out: list[str] = []
    pos = 0
    while pos < len(regex):
        char = regex[pos]
        if char == "\\":
            escaped = regex[pos + 1 : pos + 2]
            if not escaped or not escaped.isascii() or escaped.isalnum():
                return None
            out.append(escaped)
            pos += 2
        elif char in _META:
            return None
        else:
            out.append(char)
            pos += 1
    return "".join(out)
