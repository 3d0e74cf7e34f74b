"""Go's text/template parser (Go 1.19, the Go of Prometheus 2.42), without
``define``/``template``/``block``: alert templates are one template each. It reads the
lexer's tokens (``_lex``) into a tree of nodes (``_nodes``).

Error texts are Go's: ``template: NAME:LINE: unexpected "}" in operand``.
"""

from __future__ import annotations

from collections.abc import Container
from typing import NamedTuple

from ._fmt import quote
from ._lex import Token, go_number, lex
from ._nodes import (
    Action,
    Branch,
    Chain,
    Command,
    Field,
    Identifier,
    Literal,
    LoopControl,
    Node,
    Operand,
    Pipe,
    Text,
    Variable,
)


class ParseError(ValueError):
    """A template Go's parser refuses; the message is Go's."""


class _EndOrElse(NamedTuple):  # not a dataclass: cheaper to define
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
                raise self.error(f"unexpected . after term {quote(str(node))}")
            return Chain(pos, node, tuple(names))
        return node

    def term(self) -> Operand | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == "ident":
            if token.val not in self.functions:
                raise self.error(f"function {quote(token.val)} not defined")
            return Identifier(token.pos, token.val)
        if kind == "dot":
            return Literal(token.pos, "dot", None, ".")
        if kind == "nil":
            return Literal(token.pos, "nil", None, "nil")
        if kind == "variable":
            names = tuple(token.val.split("."))
            if names[0] not in self.vars:
                raise self.error(f"undefined variable {quote(names[0])}")
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
    value = go_number(text)
    assert value is not None  # the lexer checked it
    is_hex = text.lstrip("+-")[:2].lower() == "0x"
    if isinstance(value, float) or (not is_hex and any(c in text for c in ".eEpP")):
        return float(value)
    return value


def _unquote(text: str, parser: Parser) -> str:
    if text.startswith("`"):
        return text[1:-1]
    import ast  # here: 2 ms to import, and most templates quote no string

    try:
        value = ast.literal_eval(text if text[0] == '"' else '"' + text[1:-1] + '"')
    except (SyntaxError, ValueError):
        raise parser.error("invalid syntax") from None
    if not isinstance(value, str):
        raise parser.error("invalid syntax")
    return value
