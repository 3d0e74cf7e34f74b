"""Go's text/template lexer (Go 1.19, the Go of Prometheus 2.42): a template's text cut
into tokens for the parser (``_parse``).

A lexing error is the last token (kind ``error``, Go's message as its value): the parser
reports it where it meets it, as Go's does.
"""

from __future__ import annotations

from typing import NamedTuple

from ._fmt import quote

_SPACE = " \t\r\n"
_KEYWORDS = {
    "block", "break", "continue", "define", "else", "end", "if", "range", "nil",
    "template", "with",
}  # fmt: skip


class Token(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    kind: str  # text, left, right, space, eof, error, field, variable, ident, string, char,
    # number, bool, dot, nil, pipe, lparen, rparen, declare, assign, charop, or a keyword
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.kind == "eof":
            return "EOF"
        if self.kind == "error":
            return self.val
        if self.kind in _KEYWORDS or self.kind == "dot":
            return f"<{self.val}>"
        if len(self.val) > 10:
            return quote(self.val[:10]) + "..."
        return quote(self.val)


def _is_alnum(char: str) -> bool:
    return char == "_" or char.isalnum()


def _rune(char: str) -> str:
    """Go's %#U of a rune: ``U+007D '}'``."""
    return f"U+{ord(char):04X} '{char}'" if char.isprintable() else f"U+{ord(char):04X}"


def lex(text: str) -> list[Token]:
    """Every token of ``text``, ending with an ``eof`` or an ``error`` token."""
    tokens: list[Token] = []
    pos = 0
    n = len(text)

    def line_at(p: int) -> int:
        return 1 + text.count("\n", 0, p)

    def emit(kind: str, start: int, end: int) -> None:
        tokens.append(Token(kind, start, text[start:end], line_at(start)))

    def error(message: str, at: int) -> list[Token]:
        tokens.append(Token("error", at, message, line_at(at)))
        return tokens

    def at_right(p: int) -> tuple[bool, bool]:
        if text.startswith(" -}}", p) or (
            p < n and text[p] in _SPACE and text.startswith("-}}", p + 1)
        ):
            return True, True
        return text.startswith("}}", p), False

    def at_terminator(p: int) -> bool:
        if p >= n:
            return True
        return text[p] in _SPACE + ".,|:)(" or text.startswith("}}", p)

    while True:
        # Text up to the next action.
        start = pos
        left = text.find("{{", pos)
        if left < 0:
            if pos < n:
                emit("text", pos, n)
            tokens.append(Token("eof", n, "", line_at(n)))
            return tokens
        trim = text.startswith("-", left + 2) and left + 3 < n and text[left + 3] in _SPACE
        end = left
        if trim:
            while end > start and text[end - 1] in _SPACE:
                end -= 1
        if end > start:
            emit("text", start, end)
        pos = left + 2
        after_marker = 2 if trim else 0
        if text.startswith("/*", pos + after_marker):
            pos += after_marker + 2
            close = text.find("*/", pos)
            if close < 0:
                return error("unclosed comment", left)
            pos = close + 2
            delim, trim_right = at_right(pos)
            if not delim:
                return error("comment ends before closing delimiter", left)
            pos += (2 if trim_right else 0) + 2
            if trim_right:
                while pos < n and text[pos] in _SPACE:
                    pos += 1
            continue
        emit("left", left, pos)
        pos += after_marker
        depth = 0
        # Inside the action.
        while True:
            delim, trim_right = at_right(pos)
            if delim:
                if depth:
                    return error("unclosed left paren", pos)
                if trim_right:
                    pos += 2
                emit("right", pos, pos + 2)
                pos += 2
                if trim_right:
                    while pos < n and text[pos] in _SPACE:
                        pos += 1
                break
            if pos >= n:
                return error("unclosed action", pos)
            char = text[pos]
            start = pos
            if char in _SPACE:
                while pos < n and text[pos] in _SPACE:
                    pos += 1
                if text.startswith("-}}", pos) and text[pos - 1] in _SPACE:
                    pos -= 1  # the space before a trim marker belongs to the delimiter
                    if pos == start:
                        continue
                emit("space", start, pos)
                continue
            pos += 1
            if char == "=":
                emit("assign", start, pos)
            elif char == ":":
                if not text.startswith("=", pos):
                    return error("expected :=", start)
                pos += 1
                emit("declare", start, pos)
            elif char == "|":
                emit("pipe", start, pos)
            elif char in "\"'":
                kind = "string" if char == '"' else "char"
                while True:
                    if pos >= n or text[pos] == "\n":
                        what = "quoted string" if kind == "string" else "character constant"
                        return error(f"unterminated {what}", start)
                    if text[pos] == "\\":
                        pos += 1
                        if pos >= n or text[pos] == "\n":
                            continue
                    elif text[pos] == char:
                        pos += 1
                        break
                    pos += 1
                emit(kind, start, pos)
            elif char == "`":
                close = text.find("`", pos)
                if close < 0:
                    return error("unterminated raw quoted string", start)
                pos = close + 1
                emit("rawstring", start, pos)
            elif char in "$." and not (char == "." and pos < n and text[pos].isdigit()):
                if at_terminator(pos):
                    emit("variable" if char == "$" else "dot", start, pos)
                    continue
                while pos < n and _is_alnum(text[pos]):
                    pos += 1
                if not at_terminator(pos):
                    return error(f"bad character {_rune(text[pos])}", pos)
                emit("variable" if char == "$" else "field", start, pos)
            elif char in "+-." or char.isdigit():
                pos, ok = _scan_number(text, start)
                if not ok or go_number(text[start:pos]) is None:
                    return error(f"bad number syntax: {quote(text[start:pos])}", start)
                emit("number", start, pos)
            elif _is_alnum(char):
                while pos < n and _is_alnum(text[pos]):
                    pos += 1
                if not at_terminator(pos):
                    return error(f"bad character {_rune(text[pos])}", pos)
                word = text[start:pos]
                kind = word if word in _KEYWORDS else "ident"
                if word in ("true", "false"):
                    kind = "bool"
                emit(kind, start, pos)
            elif char == "(":
                emit("lparen", start, pos)
                depth += 1
            elif char == ")":
                emit("rparen", start, pos)
                depth -= 1
                if depth < 0:
                    return error(f"unexpected right paren {_rune(char)}", start)
            elif ord(char) < 0x80 and char.isprintable():
                emit("charop", start, pos)
            else:
                return error(f"unrecognized character in action: {_rune(char)}", start)


def _scan_number(text: str, pos: int) -> tuple[int, bool]:
    """Go's scanNumber: the end of a number literal, and False when a letter or digit follows
    it (that character included, as Go reports it)."""
    n = len(text)
    if pos < n and text[pos] in "+-":
        pos += 1
    digits, exponent = "0123456789_", "eE"
    prefix = text[pos : pos + 2].lower()
    if prefix in ("0x", "0o", "0b"):
        pos += 2
        digits = {"0x": "0123456789abcdefABCDEF_", "0o": "01234567_", "0b": "01_"}[prefix]
        exponent = "pP" if prefix == "0x" else ""
    while pos < n and text[pos] in digits:
        pos += 1
    if pos < n and text[pos] == ".":
        pos += 1
        while pos < n and text[pos] in digits:
            pos += 1
    if exponent and pos < n and text[pos] in exponent:
        pos += 1
        if pos < n and text[pos] in "+-":
            pos += 1
        while pos < n and text[pos] in "0123456789_":
            pos += 1
    if pos < n and _is_alnum(text[pos]):
        return pos + 1, False
    return pos, True


def go_number(text: str) -> int | float | None:
    """The value of a Go number literal, or None when it is not one."""
    body = text.lstrip("+-")
    if not body or "__" in body or body.startswith("_") or body.endswith("_"):
        return None
    negative = text.startswith("-")
    try:
        value: int | float
        if len(body) > 1 and body[0] == "0" and body[1].isdigit():
            is_float = "." in body or "e" in body.lower()
            value = float(body) if is_float else int(body.replace("_", ""), 8)
        else:
            value = int(body, 0)
    except ValueError:
        try:
            value = float(body.replace("_", ""))
        except ValueError:
            return None
    return -value if negative else value
