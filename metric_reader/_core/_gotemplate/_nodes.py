"""The tree of a parsed template (``_parse``) that the executor (``_exec``) runs: Go's
parse nodes, those alert templates can hold. ``str()`` of a node is Go's, for messages.

Plain classes with ``__slots__``, not dataclasses: defining these eleven as dataclasses
cost every ``check`` and ``test`` (which parse the rules' templates) ~4 ms at start.
:class:`_Node` gives them a dataclass' ``==`` and ``repr``, field by field, in the order
of ``__slots__`` (hence not sorted).
"""

# ruff: noqa: RUF023

from __future__ import annotations


class _Node:
    __slots__: tuple[str, ...] = ()

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"


class Text(_Node):
    __slots__ = ("pos", "text")

    def __init__(self, pos: int, text: str) -> None:
        self.pos = pos
        self.text = text


class Field(_Node):
    __slots__ = ("pos", "names")

    def __init__(self, pos: int, names: tuple[str, ...]) -> None:
        self.pos = pos
        self.names = names

    def __str__(self) -> str:
        return "".join("." + name for name in self.names)


class Variable(_Node):
    __slots__ = ("pos", "names")

    def __init__(self, pos: int, names: tuple[str, ...]) -> None:
        self.pos = pos
        self.names = names  # "$x", then fields

    def __str__(self) -> str:
        return ".".join(self.names)


class Chain(_Node):
    __slots__ = ("pos", "node", "names")

    def __init__(self, pos: int, node: Operand, names: tuple[str, ...]) -> None:
        self.pos = pos
        self.node = node
        self.names = names

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return inner + "".join("." + name for name in self.names)


class Identifier(_Node):
    __slots__ = ("pos", "name")

    def __init__(self, pos: int, name: str) -> None:
        self.pos = pos
        self.name = name

    def __str__(self) -> str:
        return self.name


class Literal(_Node):
    """A constant: dot, nil, bool, number (untyped: int or float), string."""

    __slots__ = ("pos", "kind", "value", "source")

    def __init__(self, pos: int, kind: str, value: object, source: str) -> None:
        self.pos = pos
        self.kind = kind  # "dot", "nil", "bool", "number", "string"
        self.value = value
        self.source = source

    def __str__(self) -> str:
        return self.source


class Command(_Node):
    __slots__ = ("pos", "args")

    def __init__(self, pos: int, args: list[Operand] | None = None) -> None:
        self.pos = pos
        self.args = [] if args is None else args

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


class Pipe(_Node):
    __slots__ = ("pos", "line", "decl", "is_assign", "cmds")

    def __init__(
        self,
        pos: int,
        line: int,
        decl: list[str] | None = None,
        is_assign: bool = False,
        cmds: list[Command] | None = None,
    ) -> None:
        self.pos = pos
        self.line = line
        self.decl = [] if decl is None else decl
        self.is_assign = is_assign
        self.cmds = [] if cmds is None else cmds

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


Operand = Field | Variable | Chain | Identifier | Literal | Pipe


class Action(_Node):
    __slots__ = ("pos", "pipe")

    def __init__(self, pos: int, pipe: Pipe) -> None:
        self.pos = pos
        self.pipe = pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


class Branch(_Node):
    """``if``, ``with`` or ``range``."""

    __slots__ = ("kind", "pos", "pipe", "body", "otherwise")

    def __init__(
        self, kind: str, pos: int, pipe: Pipe, body: list[Node], otherwise: list[Node] | None
    ) -> None:
        self.kind = kind
        self.pos = pos
        self.pipe = pipe
        self.body = body
        self.otherwise = otherwise

    def __str__(self) -> str:
        return "{{" + self.kind + " " + str(self.pipe) + "}}"


class LoopControl(_Node):
    __slots__ = ("kind", "pos")

    def __init__(self, kind: str, pos: int) -> None:
        self.kind = kind  # "break" or "continue"
        self.pos = pos

    def __str__(self) -> str:
        return "{{" + self.kind + "}}"


Node = Text | Action | Branch | LoopControl
