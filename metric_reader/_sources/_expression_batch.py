"""Expression rules answered together: one instant query for the ``QUERY`` rules and rule-file
alerts of a group (one Prometheus, one interval).

Each distinct expression that returns an instant vector is tagged with a label of its own and
the tagged expressions are joined with ``or``::

    label_replace(EXPR
    , "__mr_rule", "17;$1", "__mr_rule", "(?s)(.*)") or label_replace(...) or ...

``label_replace`` keeps every label and the metric name; the tag makes the series of two
expressions differ, and ``or`` keeps every series of its right side whose labels (without
``__name__``) no series of its left side has, so the answer is the union of the expressions'
answers, each series once, in the order each expression returned them. The answer is split
by the tag, which is removed before any rule sees a sample. ``$1`` keeps what a series' own
``__mr_rule`` label held (``17;`` when it had none: Prometheus drops empty labels), so such a
label is given back as it was. The newline after ``EXPR`` ends a ``#`` comment it may end in.

What is not batched, and is read with its own query as before: an expression whose type is not
an instant vector (a scalar or a string: ``label_replace`` takes neither, a range vector fails
alone too) and one that cannot be parsed here (``parse_for_evaluation``). What fails or times
out only when batched is found at run time (``_expression_reader``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .._config import parse_for_evaluation
from .._core import Sample, labels_of

TAG = "__mr_rule"
"""The label each expression's series are tagged with in a batch."""
MAX_EXPRESSIONS = 128
"""Distinct expressions per query: Prometheus evaluates the terms of an ``or`` one after
another, so a larger batch answers later; 1,000 rules are still only 8 requests."""
MAX_QUERY_BYTES = 32 * 1024
"""The longest batched query (UTF-8 bytes, before form encoding), a single expression
longer than that read alone: well within what Prometheus and proxies take in a POST form."""


@lru_cache(maxsize=16384)  # a reload plans the same expressions again
def batchable(expr: str) -> bool:
    """Whether ``expr`` may be read in a batch: an instant vector, by its parse."""
    try:
        ast = parse_for_evaluation(expr).ast
    except ValueError:
        return False
    return _value_type(ast) == "vector"


def _value_type(node: Any) -> str | None:
    """``vector``, ``scalar``, ``matrix`` or ``string``: what ``node`` evaluates to, as
    Prometheus types it; None for a node not known here."""
    kind = type(node).__name__
    if kind in ("ParenExpr", "UnaryExpr"):
        return _value_type(node.expr)
    if kind in ("VectorSelector", "AggregateExpr"):
        return "vector"
    if kind in ("MatrixSelector", "SubqueryExpr"):
        return "matrix"
    if kind == "NumberLiteral":
        return "scalar"
    if kind == "StringLiteral":
        return "string"
    if kind == "BinaryExpr":
        sides = (_value_type(node.lhs), _value_type(node.rhs))
        if None in sides:
            return None
        return "vector" if "vector" in sides else "scalar"
    if kind == "Call":
        return str(node.func.return_type).rsplit(".", 1)[-1].lower()
    return None


def tagged(expr: str, index: int) -> str:
    """``expr`` with each of its series tagged ``<index>;<its own tag label, if any>``."""
    return f'label_replace({expr}\n, "{TAG}", "{index};$1", "{TAG}", "(?s)(.*)")'


@dataclass(frozen=True)
class ExpressionBatch:
    """Distinct expressions answered by one query (one alone: its own query, untagged)."""

    expressions: tuple[str, ...]
    promql: str = field(init=False)

    def __post_init__(self) -> None:
        if len(self.expressions) == 1:
            promql = self.expressions[0]
        else:
            promql = " or ".join(tagged(expr, i) for i, expr in enumerate(self.expressions))
        object.__setattr__(self, "promql", promql)

    def split(self, series: Iterable[tuple[Mapping[str, str], float]]) -> dict[str, list[Sample]]:
        """The samples of each expression in the answer ``series`` of ``promql`` (full label
        sets, the tag included), by expression; ``ValueError`` for a series whose tag is not
        one this batch wrote (not an answer to this query)."""
        out: dict[str, list[Sample]] = {expr: [] for expr in self.expressions}
        for metric, value in series:
            tag = metric.get(TAG, "")
            index, sep, own = tag.partition(";")
            if not sep or not index.isdigit() or int(index) >= len(self.expressions):
                raise ValueError(f"a series without a tag of this batch: {dict(metric)!r}")
            labels = dict(metric)
            if own:
                labels[TAG] = own
            else:
                del labels[TAG]
            out[self.expressions[int(index)]].append(Sample(labels_of(labels), value))
        return out

    def halves(self) -> tuple[ExpressionBatch, ExpressionBatch] | None:
        """The batch split in two (None for one expression)."""
        if len(self.expressions) < 2:
            return None
        middle = len(self.expressions) // 2
        return ExpressionBatch(self.expressions[:middle]), ExpressionBatch(
            self.expressions[middle:]
        )


def plan_expression_batches(
    expressions: Sequence[str],
    max_expressions: int = MAX_EXPRESSIONS,
    max_bytes: int = MAX_QUERY_BYTES,
) -> list[ExpressionBatch]:
    """``expressions`` (distinct, each ``batchable``) as batches, in order, each at most
    ``max_expressions`` long and its query at most ``max_bytes`` (a longer expression alone)."""
    batches: list[ExpressionBatch] = []
    current: list[str] = []
    size = 0
    for expr in expressions:
        cost = len(tagged(expr, len(current)).encode()) + len(" or ")
        if current and (len(current) >= max_expressions or size + cost > max_bytes):
            batches.append(ExpressionBatch(tuple(current)))
            current, size = [], 0
            cost = len(tagged(expr, 0).encode()) + len(" or ")
        current.append(expr)
        size += cost
    if current:
        batches.append(ExpressionBatch(tuple(current)))
    return batches
