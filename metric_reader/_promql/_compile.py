"""An expression parsed by ``promql_parser`` turned, once, into this package's nodes: the
regex matchers compiled from their original regexes, durations and ``@`` times in
milliseconds, parentheses gone. Evaluating the nodes reads no parser object again (reading
one of those builds Python objects anew each time)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import promql_parser

from .._config import ParsedPromQL
from .._core import compile_label_regex
from ._aggregation import Aggregation
from ._calls import Call, Literal, Timestamp
from ._functions import FUNCTIONS
from ._node import Node
from ._operators import MANY_TO_MANY, MANY_TO_ONE, ONE_TO_MANY, ONE_TO_ONE, Binary, Unary
from ._selectors import At, Matcher, MatrixSelector, Selection, Subquery, VectorSelector
from ._values import NAME, EvaluationError, Scalar, String

_CARDS = (  # the parser's enums are not hashable
    (promql_parser.VectorMatchCardinality.OneToOne, ONE_TO_ONE),
    (promql_parser.VectorMatchCardinality.ManyToOne, MANY_TO_ONE),
    (promql_parser.VectorMatchCardinality.OneToMany, ONE_TO_MANY),
    (promql_parser.VectorMatchCardinality.ManyToMany, MANY_TO_MANY),
)
_SET_OPERATORS = frozenset(("and", "or", "unless"))


def compile_expression(parsed: ParsedPromQL) -> Node:
    return _Compiler(parsed).node(parsed.ast)


def milliseconds(delta: timedelta | None) -> int:
    if delta is None:
        return 0
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


class _Compiler:
    def __init__(self, parsed: ParsedPromQL) -> None:
        self.parsed = parsed

    def node(self, expr: Any) -> Node:
        kind = type(expr).__name__
        method = getattr(self, f"_{kind}", None)
        if method is None:
            raise EvaluationError(f"{kind} is not evaluated here")
        node: Node = method(expr)
        return node

    def _ParenExpr(self, expr: Any) -> Node:
        return self.node(expr.expr)

    def _NumberLiteral(self, expr: Any) -> Node:
        return Literal(Scalar(expr.val))

    def _StringLiteral(self, expr: Any) -> Node:
        return Literal(String(expr.val))

    def _UnaryExpr(self, expr: Any) -> Node:
        return Unary(self.node(expr.expr))

    def _BinaryExpr(self, expr: Any) -> Node:
        op = str(expr.op)
        modifier = expr.modifier
        card = MANY_TO_MANY if op in _SET_OPERATORS else ONE_TO_ONE
        on, matching, include, return_bool = False, [], [], False
        if modifier is not None:
            card = next(ours for theirs, ours in _CARDS if theirs == modifier.card)
            return_bool = modifier.return_bool
            if modifier.matching is not None:
                on = modifier.matching.type == promql_parser.LabelModifierType.Include
                matching = list(modifier.matching.labels)
            include = list(modifier.group_labels or [])
        return Binary(
            op,
            self.node(expr.lhs),
            self.node(expr.rhs),
            return_bool=return_bool,
            card=card,
            on=on,
            matching=matching,
            include=include,
        )

    def _AggregateExpr(self, expr: Any) -> Node:
        modifier = expr.modifier
        without = modifier is not None and modifier.type == promql_parser.AggModifierType.Without
        grouping = list(modifier.labels) if modifier is not None else []
        param = self.node(expr.param) if expr.param is not None else None
        return Aggregation(str(expr.op), self.node(expr.expr), param, grouping, without=without)

    def _Call(self, expr: Any) -> Node:
        name = expr.func.name
        args = list(expr.args)
        function = FUNCTIONS.get(name)
        if function is None:
            raise EvaluationError(f"function {name}() is not evaluated here")
        if name == "timestamp" and args:
            inner = args[0]
            while isinstance(inner, promql_parser.ParenExpr):
                inner = inner.expr
            if isinstance(inner, promql_parser.VectorSelector):
                return Timestamp(function, self._VectorSelector(inner), args)
        return Call(name, function, [self.node(arg) for arg in args], args)

    def _VectorSelector(self, expr: Any) -> VectorSelector:
        at = self._at(expr.offset, expr.at)
        pairs: list[tuple[str, str, str]] = []
        if expr.name is not None:
            pairs.append((NAME, "=", expr.name))
        if expr.matchers.or_matchers:
            raise EvaluationError("parse error: `or` between label matchers is Prometheus 3's")
        for matcher in expr.matchers.matchers:
            op = next(ours for theirs, ours in _OPS if theirs == matcher.op)
            pairs.append((matcher.name, op, matcher.value))
        matchers: list[Matcher] = [(name, self._test(op, value)) for name, op, value in pairs]
        name = next((value for label, op, value in pairs if label == NAME and op == "="), None)
        return VectorSelector(Selection(name, matchers), at)

    def _MatrixSelector(self, expr: Any) -> Node:
        return MatrixSelector(self._VectorSelector(expr.vector_selector), milliseconds(expr.range))

    def _SubqueryExpr(self, expr: Any) -> Node:
        step = milliseconds(expr.step) if expr.step is not None else None
        at = self._at(expr.offset, expr.at)
        return Subquery(self.node(expr.expr), milliseconds(expr.range), step or None, at)

    def _at(self, offset: timedelta | None, at: Any) -> At:
        if at is None:
            return At(milliseconds(offset), None, False)
        if at.type != promql_parser.AtModifierType.At:  # start() or end()
            return At(milliseconds(offset), None, True)
        rank = round(at.at.timestamp())  # the stand-in: see parse_for_evaluation
        return At(milliseconds(offset), self.parsed.at_times[rank - 1], False)

    def _test(self, op: str, value: str) -> Any:
        if op == "=":
            return lambda given: given == value
        if op == "!=":
            return lambda given: given != value
        matches = compile_label_regex(self.parsed.regexes.get(value, value))
        if op == "=~":
            return matches
        return lambda given: not matches(given)


_OPS = (
    (promql_parser.MatchOp.Equal, "="),
    (promql_parser.MatchOp.NotEqual, "!="),
    (promql_parser.MatchOp.Re, "=~"),
    (promql_parser.MatchOp.NotRe, "!~"),
)
