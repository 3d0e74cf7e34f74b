"""What every PromQL function needs: its arguments by type, and its result checked as
Prometheus' engine checks a function's result."""

from __future__ import annotations

from typing import Any

import promql_parser

from ._values import EvaluationError, Matrix, Scalar, String, Value, Vector

SAME_LABELSET = "vector cannot contain metrics with the same labelset"


def scalar_arg(value: Value) -> float:
    if isinstance(value, Scalar):
        return value.value
    raise TypeError(f"expected a scalar argument, got {type(value).__name__}")


def vector_arg(value: Value) -> Vector:
    if isinstance(value, list):
        return value
    raise TypeError(f"expected an instant vector argument, got {type(value).__name__}")


def matrix_arg(value: Value) -> Matrix:
    if isinstance(value, Matrix):
        return value
    raise TypeError(f"expected a range vector argument, got {type(value).__name__}")


def string_arg(value: Value) -> str:
    if isinstance(value, String):
        return value.value
    raise TypeError(f"expected a string argument, got {type(value).__name__}")


def checked(vector: Vector) -> Vector:
    """``vector``, unless two of its samples have the same labels: Prometheus' engine
    refuses a function's result then (``label_replace`` making two series one,
    ``rate({__name__=~"a|b"}[5m])`` over ``a{x="1"}`` and ``b{x="1"}``)."""
    if len(vector) > 1 and len({sample.labels for sample in vector}) < len(vector):
        raise EvaluationError(SAME_LABELSET)
    return vector


def unwrapped(expr: Any) -> Any:
    """``expr`` without the parentheses around it (Prometheus' ``unwrapParenExpr``)."""
    while isinstance(expr, promql_parser.ParenExpr):
        expr = expr.expr
    return expr
