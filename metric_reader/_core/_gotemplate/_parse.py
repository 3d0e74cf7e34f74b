"""Go's text/template lexer and parser (Go 1.19, the Go of Prometheus 2.42), without
``define``/``template``/``block``: alert templates are one template each.

Error texts are Go's: ``template: NAME:LINE: unexpected "}" in operand``.
"""

from __future__ import annotations

import ast
from collections.abc import Container
from dataclasses import dataclass, field


class ParseError(ValueError):
    """A template Go's parser refuses; the message is Go's."""


_SPACE = " \t\r\n"
_KEYWORDS = {
    "block", "break", "continue", "define", "else", "end", "if", "range", "nil",
    "template", "with",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
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
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


def _go_quote(text: str) -> str:
    from ._fmt import quote

    return quote(text)


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
                if not ok or _number(text[start:pos]) is None:
                    return error(f"bad number syntax: {_go_quote(text[start:pos])}", start)
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


def _number(text: str) -> int | float | None:
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


# --------------------------------------------------------------------------------------------
# Nodes


@dataclass
class Text:
    pos: int
    text: str


@dataclass
class Field:
    pos: int
    names: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + name for name in self.names)


@dataclass
class Variable:
    pos: int
    names: tuple[str, ...]  # "$x", then fields

    def __str__(self) -> str:
        return ".".join(self.names)


@dataclass
class Chain:
    pos: int
    node: Operand
    names: tuple[str, ...]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + name for name in self.names)


@dataclass
class Identifier:
    pos: int
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass
class Literal:
    """A constant: dot, nil, bool, number (untyped: int or float), string."""

    pos: int
    kind: str  # "dot", "nil", "bool", "number", "string"
    value: object
    source: str

    def __str__(self) -> str:
        return self.source


@dataclass
class Command:
    pos: int
    args: list[Operand] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


@dataclass
class Pipe:
    pos: int
    line: int
    decl: list[str] = field(default_factory=list)
    is_assign: bool = False
    cmds: list[Command] = field(default_factory=list)

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


Operand = Field | Variable | Chain | Identifier | Literal | Pipe


@dataclass
class Action:
    pos: int
    pipe: Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass
class Branch:
    """``if``, ``with`` or ``range``."""

    kind: str
    pos: int
    pipe: Pipe
    body: list[Node]
    otherwise: list[Node] | None

    def __str__(self) -> str:
        return "{{" + self.kind + " " + str(self.pipe) + "}}"


@dataclass
class LoopControl:
    kind: str  # "break" or "continue"
    pos: int

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


Node = Text | Action | Branch | LoopControl


@dataclass
class _EndOrElse:
    kind: str  # "end" or "else"
    pos: int
    line: int
    else_if: bool = False

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


class Parser:
    """Go's parse.Tree for one template: ``Parser(text, name, functions).parse()``."""

    def __init__(self, text: str, name: str, functions: Container[str]) -> None:
        self.tokens = lex(text)
        self.index = 0
        self.name = name
        self.functions = functions
        self.vars = ["$"]
        self.range_depth = 0
        self.last_line = 1

    # -- tokens

    def next(self) -> Token:
        token = self.tokens[min(self.index, len(self.tokens) - 1)]
        self.index += 1
        self.last_line = token.line
        return token

    def backup(self, count: int = 1) -> None:
        self.index -= count

    def peek(self) -> Token:
        return self.tokens[min(self.index, len(self.tokens) - 1)]

    def next_non_space(self) -> Token:
        token = self.next()
        while token.kind == "space":
            token = self.next()
        return token

    def peek_non_space(self) -> Token:
        token = self.next_non_space()
        self.backup()
        return token

    def error(self, message: str) -> ParseError:
        return ParseError(f"template: {self.name}:{self.last_line}: {message}")

    def unexpected(self, token: Token, context: str) -> ParseError:
        if token.kind == "error":
            return self.error(str(token))
        return self.error(f"unexpected {token} in {context}")

    def expect(self, kind: str, context: str) -> Token:
        token = self.next_non_space()
        if token.kind != kind:
            raise self.unexpected(token, context)
        return token

    # -- grammar

    def parse(self) -> list[Node]:
        root: list[Node] = []
        while self.peek().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _EndOrElse):
                raise self.error(f"unexpected {node}")
            root.append(node)
        return root

    def item_list(self) -> tuple[list[Node], _EndOrElse]:
        nodes: list[Node] = []
        while self.peek_non_space().kind != "eof":
            node = self.text_or_action()
            if isinstance(node, _EndOrElse):
                return nodes, node
            nodes.append(node)
        raise self.error("unexpected EOF")

    def text_or_action(self) -> Node | _EndOrElse:
        token = self.next_non_space()
        if token.kind == "text":
            return Text(token.pos, token.val)
        if token.kind == "left":
            return self.action()
        raise self.unexpected(token, "input")

    def action(self) -> Node | _EndOrElse:
        token = self.next_non_space()
        if token.kind in ("if", "with", "range"):
            return self.control(token.kind)
        if token.kind == "end":
            return _EndOrElse("end", self.expect("right", "end").pos, token.line)
        if token.kind == "else":
            peek = self.peek_non_space()
            if peek.kind == "if":
                return _EndOrElse("else", peek.pos, peek.line, else_if=True)
            return _EndOrElse("else", self.expect("right", "else").pos, token.line)
        if token.kind in ("break", "continue"):
            self.expect("right", token.kind)
            if not self.range_depth:
                raise self.error(f"{{{{{token.kind}}}}} outside {{{{range}}}}")
            return LoopControl(token.kind, token.pos)
        if token.kind in ("define", "template", "block"):
            raise self.error(f"{{{{{token.kind}}}}} is not supported in alert templates")
        self.backup()
        start = self.peek()
        return Action(start.pos, self.pipeline("command", "right"))

    def control(self, kind: str) -> Branch:
        mark = len(self.vars)
        pipe = self.pipeline(kind, "right")
        if kind == "range":
            self.range_depth += 1
        body, end = self.item_list()
        if kind == "range":
            self.range_depth -= 1
        otherwise: list[Node] | None = None
        if end.kind == "else":
            if kind == "if" and end.else_if:
                self.next_non_space()  # the "if"
                otherwise = [self.control("if")]
            else:
                otherwise, end = self.item_list()
                if end.kind != "end":
                    raise self.error(f"expected end; found {end}")
        del self.vars[mark:]
        return Branch(kind, pipe.pos, pipe, body, otherwise)

    def pipeline(self, context: str, end: str) -> Pipe:
        start = self.peek_non_space()
        pipe = Pipe(start.pos, start.line)
        while True:  # declarations
            restart = self.index
            variable = self.next_non_space()
            if variable.kind != "variable":
                self.index = restart
                break
            following = self.peek_non_space()
            if following.kind in ("assign", "declare"):
                pipe.is_assign = following.kind == "assign"
                self.next_non_space()
                pipe.decl.append(variable.val)
                self.vars.append(variable.val)
                break
            if following.kind == "charop" and following.val == ",":
                self.next_non_space()
                pipe.decl.append(variable.val)
                self.vars.append(variable.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in ("variable", "right", "rparen"):
                        continue
                    raise self.error("range can only initialize variables")
                raise self.error(f"too many declarations in {context}")
            self.index = restart  # an operand, not a declaration
            break
        while True:
            token = self.next_non_space()
            if token.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.kind in (
                "bool", "char", "dot", "field", "ident", "number", "nil", "rawstring",
                "string", "variable", "lparen",
            ):  # fmt: skip
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, pipe: Pipe, context: str) -> None:
        if not pipe.cmds:
            raise self.error(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            first = cmd.args[0]
            if isinstance(first, Literal):
                raise self.error(f"non executable command in pipeline stage {stage}")

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == "space":
                continue
            if token.kind in ("right", "rparen"):
                self.backup()
            elif token.kind != "pipe":
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.error("empty command")
        return cmd

    def operand(self) -> Operand | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == "field":
            pos = self.peek().pos
            names: list[str] = []
            while self.peek().kind == "field":
                names.extend(self.next().val[1:].split("."))
            # Go gives a dotted field or variable the position of its second token.
            if isinstance(node, Field):
                return Field(pos, (*node.names, *names))
            if isinstance(node, Variable):
                return Variable(pos, (*node.names, *names))
            if isinstance(node, Literal):
                raise self.error(f"unexpected . after term {_go_quote(str(node))}")
            return Chain(pos, node, tuple(names))
        return node

    def term(self) -> Operand | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == "ident":
            if token.val not in self.functions:
                raise self.error(f"function {_go_quote(token.val)} not defined")
            return Identifier(token.pos, token.val)
        if kind == "dot":
            return Literal(token.pos, "dot", None, ".")
        if kind == "nil":
            return Literal(token.pos, "nil", None, "nil")
        if kind == "variable":
            names = tuple(token.val.split("."))
            if names[0] not in self.vars:
                raise self.error(f"undefined variable {_go_quote(names[0])}")
            return Variable(token.pos, names)
        if kind == "field":
            return Field(token.pos, tuple(token.val[1:].split(".")))
        if kind == "bool":
            return Literal(token.pos, "bool", token.val == "true", token.val)
        if kind == "number":
            return Literal(token.pos, "number", _ideal(token.val), token.val)
        if kind == "char":
            return Literal(token.pos, "number", ord(_unquote(token.val, self)), token.val)
        if kind == "lparen":
            return self.pipeline("parenthesized pipeline", "rparen")
        if kind in ("string", "rawstring"):
            return Literal(token.pos, "string", _unquote(token.val, self), token.val)
        self.backup()
        return None


def _ideal(text: str) -> int | float:
    """Go's idealConstant: a float when written with . e p (not hex), else an int."""
    value = _number(text)
    assert value is not None  # the lexer checked it
    is_hex = text.lstrip("+-")[:2].lower() == "0x"
    if isinstance(value, float) or (not is_hex and any(c in text for c in ".eEpP")):
        return float(value)
    return value


def _unquote(text: str, parser: Parser) -> str:
    if text.startswith("`"):
        return text[1:-1]
    try:
        value = ast.literal_eval(text if text[0] == '"' else '"' + text[1:-1] + '"')
    except (SyntaxError, ValueError):
        raise parser.error("invalid syntax") from None
    if not isinstance(value, str):
        raise parser.error("invalid syntax")
    return value
