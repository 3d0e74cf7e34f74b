"""The functions that make labels, as Prometheus 2.42 (promql/functions.go):
``label_replace``, ``label_join``, ``absent`` and ``absent_over_time``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import promql_parser

from .._core import is_label_name
from ._function_args import checked, matrix_arg, string_arg, unwrapped, vector_arg
from ._replace_regex import compile_replace_regex
from ._values import NAME, Context, EvaluationError, Labels, Sample, Value, Vector


def _with_label(labels: Labels, name: str, value: str) -> Labels:
    """``labels`` with ``name`` set to ``value``, or removed for an empty value."""
    kept = [pair for pair in labels if pair[0] != name]
    if value:
        kept.append((name, value))
        kept.sort()
    return tuple(kept)


def _label(labels: Labels, name: str) -> str:
    return next((value for label, value in labels if label == name), "")


def _label_replace(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """``label_replace(v, dst, replacement, src, regex)``: where the whole of ``src``
    matches ``regex``, ``dst`` set to ``replacement`` with ``$1``/``${name}`` expanded."""
    vector = vector_arg(args[0])
    dst, replacement, src, regex = (string_arg(arg) for arg in args[1:5])
    compiled = compile_replace_regex(regex)
    if compiled is None:
        raise EvaluationError(f"invalid regular expression in label_replace(): {regex}")
    if not is_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_replace(): {dst}")

    def replaced(labels: Labels) -> Labels:
        value = compiled.replace(replacement, _label(labels, src))
        return labels if value is None else _with_label(labels, dst, value)

    return _relabelled(vector, replaced, ctx.t)


def _label_join(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """``label_join(v, dst, separator, src...)``: ``dst`` set to the sources' values joined
    (a missing source counts as empty; an empty result removes ``dst``)."""
    vector = vector_arg(args[0])
    dst, separator = string_arg(args[1]), string_arg(args[2])
    sources = [string_arg(arg) for arg in args[3:]]
    for source in sources:
        if not is_label_name(source):
            raise EvaluationError(f"invalid source label name in label_join(): {source}")
    if not is_label_name(dst):
        raise EvaluationError(f"invalid destination label name in label_join(): {dst}")

    def joined(labels: Labels) -> Labels:
        return _with_label(labels, dst, separator.join(_label(labels, s) for s in sources))

    return _relabelled(vector, joined, ctx.t)


def _relabelled(vector: Vector, relabel: Callable[[Labels], Labels], t: int) -> Value:
    """Each sample with its labels changed by ``relabel`` (once per label set), checked for
    label sets made equal."""
    done: dict[Labels, Labels] = {}
    out: Vector = []
    for sample in vector:
        labels = done.get(sample.labels)
        if labels is None:
            labels = done[sample.labels] = relabel(sample.labels)
        out.append(Sample(labels, sample.value, t))
    return checked(out)


def absent_labels(expr: Any) -> Labels:
    """The labels ``absent(expr)`` gives (``createLabelsForAbsentFunction``): those of the
    selector's equality matchers, but a label matched twice or by another operator, and
    the metric name; none for an expression that is not a selector."""
    expr = unwrapped(expr)
    if isinstance(expr, promql_parser.MatrixSelector):
        expr = expr.vector_selector
    if not isinstance(expr, promql_parser.VectorSelector):
        return ()
    labels: dict[str, str] = {}
    seen: set[str] = set()
    for matcher in expr.matchers.matchers:
        if matcher.name == NAME:
            continue
        if matcher.op == promql_parser.MatchOp.Equal and matcher.name not in seen:
            labels[matcher.name] = matcher.value
            seen.add(matcher.name)
        else:
            labels.pop(matcher.name, None)
    return tuple(sorted((name, value) for name, value in labels.items() if value != ""))


def _absent(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    if vector_arg(args[0]):
        return []
    return [Sample(absent_labels(exprs[0]), 1.0, ctx.t)]


def _absent_over_time(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """1 labelled as ``absent`` gives, unless some series has a sample in the window (a
    subquery's window too: then the labels are none, as Prometheus gives)."""
    if any(series.times for series in matrix_arg(args[0]).series):
        return []
    return [Sample(absent_labels(exprs[0]), 1.0, ctx.t)]


LABEL_FUNCTIONS = {
    "label_replace": _label_replace,
    "label_join": _label_join,
    "absent": _absent,
    "absent_over_time": _absent_over_time,
}
