"""The tree of a parsed template (``_parse``) that the executor (``_exec``) runs: Go's
parse nodes, those alert templates can hold. ``str()`` of a node is Go's, for messages."""

from __future__ import annotations

from dataclasses import dataclass, field


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
