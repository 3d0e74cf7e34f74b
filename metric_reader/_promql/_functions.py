"""Every PromQL function of Prometheus 2.42, by name, on float samples (native histograms
are not held here: ``histogram_count``, ``histogram_sum`` and ``histogram_fraction`` give
nothing, as Prometheus gives for classic series).

Each is called with its arguments evaluated (a ``Matrix`` with its window for a range
vector, ``Scalar`` for a number, ``String`` for a string), the argument expressions as
parsed and the evaluation context, and returns what Prometheus' function returns, its
result checked as Prometheus' engine checks it (two samples with the same labels are an
``EvaluationError``). ``timestamp`` of a selector is the evaluator's to special-case: it
gives the samples with their own times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._functions_instant import INSTANT_FUNCTIONS
from ._functions_labels import LABEL_FUNCTIONS
from ._functions_range import RANGE_FUNCTIONS
from ._quantile import histogram_quantile
from ._values import Context, Function, Value


def _native_histograms_only(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """``histogram_count``, ``histogram_sum``, ``histogram_fraction``: they skip float
    samples, and native histograms are not held here."""
    return []


FUNCTIONS: dict[str, Function] = {
    **INSTANT_FUNCTIONS,
    **RANGE_FUNCTIONS,
    **LABEL_FUNCTIONS,
    "histogram_quantile": histogram_quantile,
    "histogram_count": _native_histograms_only,
    "histogram_sum": _native_histograms_only,
    "histogram_fraction": _native_histograms_only,
}
