"""The functions of instant vectors and scalars, as Prometheus 2.42 computes them
(promql/functions.go): arithmetic (``abs``, ``ln``, ``clamp``, ``round``, trigonometry...),
the calendar (``hour``, ``day_of_week``...), ``time``, ``vector``, ``scalar``,
``timestamp``, ``sort``. All drop the metric name, but ``sort`` and ``sort_desc``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from . import _gomath as gm
from ._function_args import checked, scalar_arg, vector_arg
from ._gotime import Civil, civil, days_in_month
from ._values import Context, Function, Sample, Scalar, Value, without_name


def simple(compute: Callable[[float], float]) -> Function:
    """A function applying ``compute`` to each sample's value (Prometheus' ``simpleFunc``)."""

    def function(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
        return checked(
            [
                Sample(without_name(sample.labels), compute(sample.value), ctx.t)
                for sample in vector_arg(args[0])
            ]
        )

    return function


def _sgn(v: float) -> float:
    if v < 0:
        return -1.0
    if v > 0:
        return 1.0
    return v  # 0, -0 and NaN


def _clamp(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    low, high = scalar_arg(args[1]), scalar_arg(args[2])
    if high < low:
        return []
    return simple(lambda v: gm.go_max(low, gm.go_min(high, v)))(args[:1], exprs, ctx)


def _clamp_max(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    high = scalar_arg(args[1])
    return simple(lambda v: gm.go_min(high, v))(args[:1], exprs, ctx)


def _clamp_min(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    low = scalar_arg(args[1])
    return simple(lambda v: gm.go_max(low, v))(args[:1], exprs, ctx)


def _round(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """To the nearest multiple of ``to_nearest`` (1 unless given), ties rounded up; by the
    inverse, as Prometheus does ("fewer floating point accuracy issues")."""
    to_nearest = scalar_arg(args[1]) if len(args) >= 2 else 1.0
    inverse = gm.go_divide(1.0, to_nearest)
    return simple(lambda v: gm.go_divide(gm.go_floor(v * inverse + 0.5), inverse))(
        args[:1], exprs, ctx
    )


def _time(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    return Scalar(ctx.t / 1000)


def _pi(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    return Scalar(math.pi)


def _vector(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    return [Sample((), scalar_arg(args[0]), ctx.t)]


def _scalar(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    vector = vector_arg(args[0])
    return Scalar(vector[0].value if len(vector) == 1 else math.nan)


def _timestamp(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """Each sample's own time, in seconds (the evaluator gives a selector's samples their
    own ``t``; for other expressions ``t`` is the evaluation time)."""
    return checked(
        [
            Sample(without_name(sample.labels), sample.t / 1000, ctx.t)
            for sample in vector_arg(args[0])
        ]
    )


def _sort(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """Ascending, NaN last."""
    return sorted(vector_arg(args[0]), key=lambda s: (math.isnan(s.value), s.value))


def _sort_desc(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """Descending, NaN last."""
    return sorted(vector_arg(args[0]), key=lambda s: (math.isnan(s.value), -s.value))


def date_function(field: Callable[[Civil], int]) -> Function:
    """``field`` of each value read as Unix seconds (of the evaluation time without an
    argument), in UTC, as Prometheus' ``dateWrapper``."""

    def function(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
        if not args:
            seconds = abs(ctx.t) // 1000 * (1 if ctx.t >= 0 else -1)  # Go: truncated
            return [Sample((), float(field(civil(seconds))), ctx.t)]
        return checked(
            [
                Sample(
                    without_name(sample.labels),
                    float(field(civil(gm.to_int64(sample.value)))),
                    ctx.t,
                )
                for sample in vector_arg(args[0])
            ]
        )

    return function


INSTANT_FUNCTIONS: dict[str, Function] = {
    "abs": simple(math.fabs),
    "ceil": simple(gm.go_ceil),
    "floor": simple(gm.go_floor),
    "exp": simple(gm.go_exp),
    "sqrt": simple(gm.go_sqrt),
    "ln": simple(gm.go_log),
    "log2": simple(gm.go_log2),
    "log10": simple(gm.go_log10),
    "sin": simple(gm.go_sin),
    "cos": simple(gm.go_cos),
    "tan": simple(gm.go_tan),
    "asin": simple(gm.go_asin),
    "acos": simple(gm.go_acos),
    "atan": simple(math.atan),
    "sinh": simple(gm.go_sinh),
    "cosh": simple(gm.go_cosh),
    "tanh": simple(math.tanh),
    "asinh": simple(math.asinh),
    "acosh": simple(gm.go_acosh),
    "atanh": simple(gm.go_atanh),
    "rad": simple(lambda v: v * math.pi / 180),
    "deg": simple(lambda v: v * 180 / math.pi),
    "sgn": simple(_sgn),
    "pi": _pi,
    "clamp": _clamp,
    "clamp_max": _clamp_max,
    "clamp_min": _clamp_min,
    "round": _round,
    "time": _time,
    "vector": _vector,
    "scalar": _scalar,
    "timestamp": _timestamp,
    "sort": _sort,
    "sort_desc": _sort_desc,
    "days_in_month": date_function(lambda c: days_in_month(c.year, c.month)),
    "day_of_month": date_function(lambda c: c.day),
    "day_of_week": date_function(lambda c: c.weekday),
    "day_of_year": date_function(lambda c: c.year_day),
    "hour": date_function(lambda c: c.hour),
    "minute": date_function(lambda c: c.minute),
    "month": date_function(lambda c: c.month),
    "year": date_function(lambda c: c.year),
}
