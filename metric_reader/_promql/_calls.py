"""Literals and function calls. A function gets its arguments evaluated (a range vector as a
``Matrix``), the argument expressions as parsed, and the evaluation time; its result may
not hold two samples of one label set (Prometheus' check after every call).

``timestamp()`` of a vector selector (parentheses around it allowed) is Prometheus'
special case: the selector's samples keep their own times, which the function returns
(``@`` and ``offset`` apply as anywhere: Prometheus 2.42 answers ``timestamp(m @ 100 offset
1m)`` with a sample at or before 40 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._node import Env, Node, check_unique
from ._selectors import VectorSelector
from ._values import Context, Function, Value


class Literal(Node):
    """A number or a string."""

    __slots__ = ("value",)

    def __init__(self, value: Value) -> None:
        self.value = value

    def eval(self, env: Env, t: int) -> Value:
        return self.value


class Call(Node):
    __slots__ = ("args", "exprs", "function", "name")

    def __init__(self, name: str, function: Function, args: list[Node], exprs: Sequence[Any]):
        self.name = name
        self.function = function
        self.args = args
        self.exprs = exprs

    def eval(self, env: Env, t: int) -> Value:
        values = [arg.eval(env, t) for arg in self.args]
        result = self.function(values, self.exprs, Context(t))
        return check_unique(result) if isinstance(result, list) else result


class Timestamp(Node):
    __slots__ = ("exprs", "function", "selector")

    def __init__(self, function: Function, selector: VectorSelector, exprs: Sequence[Any]):
        self.function = function
        self.selector = selector
        self.exprs = exprs

    def eval(self, env: Env, t: int) -> Value:
        samples = self.selector.samples(env, self.selector.at.time(env, t), None)
        result = self.function([samples], self.exprs, Context(t))
        return check_unique(result) if isinstance(result, list) else result
