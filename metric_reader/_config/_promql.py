"""PromQL expressions checked as Prometheus parses them when it loads a rule file, without a
Prometheus: ``promql-parser``, the Rust parser of GreptimeDB, behind a few corrections that
make it accept what Prometheus 2 accepts.

Where the two parsers differ (``tests/config/test_promql_vs_promtool.py`` compares them,
expression by expression, with promtool 2.42):

- label regexes: the Rust parser compiles them with Rust's ``regex``; Prometheus with Go's
  ``regexp``, an RE2. Each regex matcher's value is checked here with RE2, as Go would
  (``error parsing regexp: ...``), then handed to the parser as a plain stand-in that
  matches the empty text exactly when the regex does (a selector needs one matcher that
  does not).
- raw strings: the Rust parser reads escapes in a backtick string; Prometheus takes its
  text as written. Each is handed to the parser double-quoted.
- ``holt_winters``: a function of Prometheus 2 that Prometheus 3 renamed; registered.
- the Rust parser takes time growing with the square of an expression's length and, past
  a few thousand operators, overflows its stack. An expression of more than
  ``MAX_TOKENS`` tokens (the longest of a thousand public rules has about 160) is not
  parsed here: Prometheus alone checks it.

What the Rust parser accepts that Prometheus 2.42 refuses is mostly Prometheus 3's: its
functions, quoted UTF-8 names, durations as plain numbers. Those are accepted here;
Prometheus, when it is asked, refuses them if it is older.
"""

from __future__ import annotations

import math
import re
from functools import cache, lru_cache
from itertools import pairwise
from typing import Any

from .._core import (
    compile_label_regex,
    label_regex_refusal,
    quote,
    read_string_literal,
    record,
    record_field,
)

MAX_TOKENS = 1000
"""Longer expressions are left to Prometheus (see above)."""
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.")
_QUOTES = frozenset("\"'`")


@lru_cache(maxsize=4096)  # a reload reads the same expressions again
def promql_problem(expr: str) -> str | None:
    """Why Prometheus would refuse to parse ``expr``, as promtool says it (``1:7: parse
    error: ...``, the place in the expression when it is known), or None."""
    try:
        expr.encode("utf-8")
    except UnicodeEncodeError:
        return "parse error: invalid UTF-8"
    prepared = _prepared(expr)
    if isinstance(prepared, _Refusal):
        return f"{_place(expr, prepared.pos)}: parse error: {prepared.reason}"
    if prepared is None:
        return None
    text, tokens = prepared
    try:
        _parser().parse(text)
    except ValueError as exc:  # its text may quote a newline of the expression: one line
        return _located(expr, text, tokens, str(exc).replace("\r", "\\r").replace("\n", "\\n"))
    except BaseException as exc:  # a panic of the Rust code (pyo3's PanicException)
        if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
            raise
        return None  # not this expression's fault: Prometheus judges it
    return None


@record(frozen=True, slots=True)
class ParsedPromQL:
    """An expression as ``promql_parser`` parsed it, with what the preparation for that
    parser (see the module's notes) replaced: what evaluating it needs."""

    ast: Any
    """The ``promql_parser`` expression."""
    regexes: dict[str, str]
    """The original regex of each regex matcher, by the stand-in value the AST holds."""
    at_times: tuple[int, ...]
    """The ``@`` timestamps in milliseconds: ``x @ N`` stands in the AST as ``x @ K`` for
    the ``K``-th (from 1) of these, so that negative and far times survive the parser."""


def parse_for_evaluation(expr: str) -> ParsedPromQL:
    """``expr`` parsed for evaluation; ``ValueError`` with promtool's message when
    Prometheus would refuse it, or saying what of it cannot be parsed here (more than
    ``MAX_TOKENS`` tokens; ``@ start()`` or ``@ end()`` before a subquery's range)."""
    problem = promql_problem(expr)
    if problem is not None:
        raise ValueError(problem)
    originals = _Originals()
    prepared = _prepared(expr, originals)
    if isinstance(prepared, _Refusal):
        raise ValueError(f"{_place(expr, prepared.pos)}: parse error: {prepared.reason}")
    if prepared is None:
        raise ValueError(f"an expression of more than {MAX_TOKENS} tokens is not evaluated here")
    try:
        ast = _parser().parse(prepared[0])
    except ValueError as exc:
        raise ValueError(_located(expr, prepared[0], prepared[1], str(exc))) from None
    return ParsedPromQL(ast, originals.regexes, tuple(originals.at_times))


@record(slots=True)
class _Originals:
    """What ``_prepared`` replaced, when it prepares for evaluation."""

    regexes: dict[str, str] = record_field(default_factory=dict)
    at_times: list[int] = record_field(default_factory=list)

    def regex_stand_in(self, regex: str, matches_empty: bool) -> str:
        """A value unique to this matcher that matches the empty text as ``regex`` does."""
        stand_in = f"__metric_reader_regex_{len(self.regexes)}__"
        if matches_empty:
            stand_in = f"(?:{stand_in})?"
        self.regexes[stand_in] = regex
        return stand_in


_AT_NUMBER = re.compile(r"[0-9.][0-9a-zA-Z_.]*(?:(?<=[eE])[+-][0-9]+)?|[iI][nN][fF]|[nN][aA][nN]")


def _at_milliseconds(text: str, negative: bool) -> int | str:
    """The milliseconds of an ``@`` number as Prometheus reads it
    (``timestamp.FromFloatSeconds``), or why it refuses it."""
    try:
        if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
            seconds = float(int(text, 16))
        elif re.fullmatch(r"0[0-7]+", text):
            seconds = float(int(text, 8))
        else:
            seconds = float(text)
    except ValueError:
        return f'bad number or duration syntax: "{text}"'
    seconds = -seconds if negative else seconds
    if not math.isfinite(seconds) or not -(2.0**63) < seconds < 2.0**63:
        shown = "NaN" if math.isnan(seconds) else ("+Inf" if seconds > 0 else "-Inf")
        shown = shown if not math.isfinite(seconds) else f"{seconds:f}"
        return f"timestamp out of bounds for @ modifier: {shown}"
    scaled = seconds * 1000
    whole = math.trunc(scaled)
    if abs(scaled - whole) >= 0.5:  # Go's math.Round: halves away from zero
        whole += 1 if scaled > 0 else -1
    return whole


class _Refusal:
    def __init__(self, pos: int, reason: str) -> None:
        self.pos = pos
        self.reason = reason


_UNKNOWN_FUNCTION = re.compile(r"unknown function with name '(.*)'")


def _located(expr: str, text: str, tokens: list[_Token], reason: str) -> str:
    """The parser's ``reason``, placed in ``expr`` where that can be told (a misspelt
    function: at its name, quoted as promtool quotes it)."""
    unknown = _UNKNOWN_FUNCTION.fullmatch(reason)
    if unknown is not None:
        name = unknown.group(1)
        for token, after in pairwise(tokens):
            if token.text == name and after.text == "(":
                return (
                    f'{_place(expr, token.pos)}: parse error: unknown function with name "{name}"'
                )
    at_end = _AT_END_OF_INPUT.get(reason)
    if at_end is not None and _only_cut_short(text, tokens):
        return f"{_place(expr, len(expr))}: parse error: {at_end}"
    return f"parse error: {reason}"


def _only_cut_short(text: str, tokens: list[_Token]) -> bool:
    """Whether the expression parses once its open brackets are closed: then Prometheus'
    first error is its lexer's, at the end of the input (not an earlier one of its
    parser's, which the Rust parser may not say: ``sum by (a (x)``)."""
    closing = {"(": ")", "[": "]", "{": "}"}
    still_open: list[str] = []
    for token in tokens:
        if token.text in closing:
            still_open.append(closing[token.text])
        elif token.text in (")", "]", "}") and (not still_open or still_open.pop() != token.text):
            return False
    if not still_open:
        return False
    try:
        _parser().parse(text + "".join(reversed(still_open)))
    except BaseException as exc:  # a parse error, or a panic of the Rust code
        if isinstance(exc, KeyboardInterrupt | SystemExit | MemoryError):
            raise
        return False
    return True


_AT_END_OF_INPUT = {
    "unclosed left parenthesis": "unclosed left parenthesis",
    "unexpected end of input inside braces": "unexpected end of input inside braces",
    "unexpected end of input inside brackets": "unclosed left bracket",
}
"""The Rust parser's words for an expression cut short, to Prometheus' (placed at its end)."""


def _prepared(
    expr: str, originals: _Originals | None = None
) -> tuple[str, list[_Token]] | _Refusal | None:
    """``expr`` as the Rust parser is to see it (see the module's notes) and its tokens; a
    refusal of one of its label regexes; or None when it is too long to be parsed here.

    With ``originals`` (for evaluation), each regex gets a stand-in of its own, ``@``
    numbers are replaced by their rank (recorded there), and ``x @ start() [5m]`` becomes
    ``x [5m] @ start()``, which Prometheus evaluates alike."""
    out: list[str] = []
    tokens: list[_Token] = []
    pos = 0
    moved_at = ""  # an ``@ start()`` to be written after the range being read
    while pos < len(expr):
        char = expr[pos]
        if char.isspace():
            out.append(char)
            pos += 1
            continue
        if char == "#":  # a comment, to the end of the line
            end = expr.find("\n", pos)
            end = len(expr) if end < 0 else end
            out.append(expr[pos:end])
            pos = end
            continue
        token = _Token(char, pos, len(out))
        if char in _QUOTES:
            try:
                value, end = read_string_literal(expr, pos)
            except ValueError:  # the parser says what is wrong with it
                out.append(expr[pos:])
                break
            token.text = '"'
            if len(tokens) >= 2 and tokens[-1].text in ("=~", "!~"):
                refused = label_regex_refusal(value)
                if refused is not None:
                    return _Refusal(tokens[-2].pos, refused)
                matches_empty = compile_label_regex(value)("")
                if originals is not None:
                    out.append(quote(originals.regex_stand_in(value, matches_empty)))
                else:
                    out.append('""' if matches_empty else '".+"')
            elif char == "`":
                out.append(quote(value))
            else:
                out.append(expr[pos:end])
            pos = end
        elif originals is not None and _after_at(tokens) and _AT_NUMBER.match(expr, pos):
            found = _AT_NUMBER.match(expr, pos)
            assert found is not None
            end = found.end()
            negative = tokens[-1].text == "-"
            if tokens[-1].text in ("-", "+"):
                del out[tokens[-1].out :]
            milliseconds = _at_milliseconds(found.group(), negative)
            if isinstance(milliseconds, str):
                return _Refusal(pos, milliseconds)
            originals.at_times.append(milliseconds)
            token.text = found.group()
            out.append(str(len(originals.at_times)))
            pos = end
        elif char in _WORD:
            end = pos + 1
            while end < len(expr) and expr[end] in _WORD:
                end += 1
            token.text = expr[pos:end]
            out.append(token.text)
            pos = end
        elif char == "~" and tokens and tokens[-1].text in ("=", "!") and tokens[-1].pos == pos - 1:
            tokens[-1].text += "~"
            out.append(char)
            pos += 1
            continue
        else:
            if char == "[" and [t.text for t in tokens[-4:]] in _AT_START_OR_END:
                # Prometheus takes ``x @ start() [5m]`` (its check before a range misses
                # start() and end()); the Rust parser does not: it sees ``x [5m]``.
                if originals is not None:
                    closing = expr.find("]", pos)
                    if ":" in expr[pos : closing if closing >= 0 else len(expr)]:
                        return _Refusal(tokens[-4].pos, _AT_BEFORE_SUBQUERY)
                    moved_at = "".join(out[tokens[-4].out :])
                del out[tokens[-4].out :]
            out.append(char)
            if char == "]" and moved_at:
                out.append(f" {moved_at} ")
                moved_at = ""
            pos += 1
        tokens.append(token)
        if len(tokens) > MAX_TOKENS:
            return None
    return "".join(out), tokens


_AT_START_OR_END = (["@", "start", "(", ")"], ["@", "end", "(", ")"])
_AT_BEFORE_SUBQUERY = "@ start() or @ end() before a subquery's range is not evaluated here"


def _after_at(tokens: list[_Token]) -> bool:
    """Whether the next token is an ``@`` modifier's number (maybe after its sign)."""
    if tokens and tokens[-1].text == "@":
        return True
    return len(tokens) >= 2 and tokens[-1].text in ("-", "+") and tokens[-2].text == "@"


class _Token:
    __slots__ = ("out", "pos", "text")

    def __init__(self, text: str, pos: int, out: int) -> None:
        self.text = text
        self.pos = pos
        """Where it starts in the expression."""
        self.out = out
        """Where it starts in the parser's pieces."""


def _place(expr: str, pos: int) -> str:
    """``LINE:COLUMN`` of ``expr[pos]``, from 1."""
    line = expr.count("\n", 0, pos) + 1
    column = pos - (expr.rfind("\n", 0, pos) + 1) + 1
    return f"{line}:{column}"


@cache
def _parser() -> Any:
    """The parser, imported on first use (a service without expressions never loads it),
    with what Prometheus 2 has and it lacks."""
    import promql_parser

    values = promql_parser.ValueType
    holt_winters = promql_parser.Function(
        "holt_winters", [values.Matrix, values.Scalar, values.Scalar], values.Vector
    )
    promql_parser.register_extra_functions([holt_winters])
    return promql_parser
