"""PromQL evaluated in process over series held in memory, as Prometheus 2.42 evaluates it:
what ``metric-reader test`` runs rules and ``promql_expr_test`` on.

``Query(expr)`` parses an expression once (``promql_parser``, prepared as
``metric_reader._config`` prepares it to check rule files, with the original regexes and
``@`` times kept); ``Query.evaluate(t, storage)`` gives its value as an instant query at
``t`` (ms) over the series of a ``Storage``. The semantics are Prometheus 2.42's
(``promql/engine.go``): see ``_selectors`` (lookback, staleness, windows, ``offset``,
``@``, subqueries), ``_operators`` (binary operators, vector matching), ``_aggregation``
and ``_calls``; the functions are ``_functions.FUNCTIONS``.

Not evaluated here (``EvaluationError`` from ``Query``, saying so): an expression of more
than ``MAX_TOKENS`` (1000) tokens, ``x @ start() [5m:1m]`` (``@ start()``/``@ end()`` written
before a subquery's range), a function missing from ``FUNCTIONS``. Native histograms do
not exist here: every sample is a float.
"""

from ._query import Query
from ._storage import Storage
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
    "Query",
    "Sample",
    "Scalar",
    "Series",
    "Storage",
    "String",
    "Value",
    "Vector",
    "labels_from",
    "without_name",
]
