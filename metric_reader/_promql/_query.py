"""An expression parsed once and evaluated as an instant query at any time, over any
``Storage``: what a rule test does at every step of its series."""

from __future__ import annotations

from .._config import parse_for_evaluation
from ._node import Env, Node
from ._storage import Storage
from ._values import EvaluationError, Sample, Value


class Query:
    """An expression parsed once."""

    def __init__(self, expr: str, *, lookback: int = 300_000, subquery_step: int = 60_000) -> None:
        """``EvaluationError`` with promtool's message when Prometheus refuses ``expr``, or
        saying what of it is not evaluated here (a function not available)."""
        try:
            parsed = parse_for_evaluation(expr)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
        from ._compile import compile_expression  # loads the parser's classes

        self.expr = expr
        self.lookback = lookback
        self.subquery_step = subquery_step
        self._root: Node = compile_expression(parsed)

    def evaluate(self, t: int, storage: Storage) -> Value:
        """The instant query at ``t`` (ms); ``EvaluationError`` where Prometheus fails."""
        value = self._root.eval(Env(storage, t, self.lookback, self.subquery_step), t)
        if isinstance(value, list):
            for sample in value:
                if sample.t != t:  # timestamp()'s samples: Prometheus stamps them all t
                    return [Sample(s.labels, s.value, t) for s in value]
        return value
