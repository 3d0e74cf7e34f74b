"""PromQL evaluated in process over series held in memory, as Prometheus 2.42 evaluates it:
what ``metric-reader test`` runs rules and ``promql_expr_test`` on."""

from ._values import (
    NAME,
    Context,
    EvaluationError,
    Function,
    Labels,
    Matrix,
    Sample,
    Scalar,
    Series,
    String,
    Value,
    Vector,
    labels_from,
    without_name,
)

__all__ = [
    "NAME",
    "Context",
    "EvaluationError",
    "Function",
    "Labels",
    "Matrix",
    "Sample",
    "Scalar",
    "Series",
    "String",
    "Value",
    "Vector",
    "labels_from",
    "without_name",
]
