"""What every node of an evaluated expression shares: the evaluation's environment, the
node's one method, and the checks Prometheus makes on every intermediate result.

An expression is turned once into a tree of these nodes (``_compile``); ``eval(env, t)``
gives a node's value at time ``t``, the query's time or one step of a subquery.
"""

from __future__ import annotations

import math
from decimal import Decimal

from .._core import quote
from ._storage import Storage
from ._values import EvaluationError, Labels, Value, Vector

MAX_SUBQUERY_STEPS = 1_000_000
"""Subquery steps one query may evaluate, all its subqueries (nested ones too) together:
``[1000d:1ms]`` would take 10^11, and promtool runs out of memory on it. Past it the query
fails, as Prometheus fails a query past its ``--query.max-samples``."""


class Env:
    """What one instant query is evaluated with (a plain class: one is made per
    evaluation, and a dataclass' ``__init__`` costs more than the evaluation of ``x``)."""

    __slots__ = ("lookback", "query_time", "steps_left", "storage", "subquery_step")

    def __init__(self, storage: Storage, query_time: int, lookback: int, subquery_step: int):
        self.storage = storage
        self.query_time = query_time
        """The instant query's time: what ``@ start()`` and ``@ end()`` are, inside
        subqueries too."""
        self.lookback = lookback
        """Milliseconds an instant vector selector looks back for a sample (5m)."""
        self.subquery_step = subquery_step
        """A subquery's step when it gives none (promtool: the evaluation interval)."""
        self.steps_left = MAX_SUBQUERY_STEPS
        """Subquery steps this query may still evaluate, nested ones included."""


class Node:
    """One node of an expression."""

    __slots__ = ()

    def eval(self, env: Env, t: int) -> Value:
        raise NotImplementedError


def check_unique(vector: Vector) -> Vector:
    """``vector`` itself, or Prometheus' error when two of its samples share a label set
    (a metric name dropped from ``{__name__=~"a|b"}``, say)."""
    if len(vector) > 1 and len({sample.labels for sample in vector}) != len(vector):
        raise EvaluationError("vector cannot contain metrics with the same labelset")
    return vector


def labels_text(labels: Labels) -> str:
    """Prometheus' ``Labels.String()``: ``{a="1", b="2"}``."""
    return "{" + ", ".join(f"{name}={quote(value)}" for name, value in labels) + "}"


def go_float(value: float) -> str:
    """Go's ``%v`` of a float64 (``1e+20``, ``123456``, ``1.5e-05``, ``NaN``, ``+Inf``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1, value) < 0 else ""
    if value == 0:
        return sign + "0"
    _, digit_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(map(str, digit_tuple))
    exp = len(digits) + exponent - 1
    if exp < -4 or exp >= 6:  # strconv's 'g' at the shortest precision
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return sign + format(Decimal(repr(abs(value))).normalize(), "f")
