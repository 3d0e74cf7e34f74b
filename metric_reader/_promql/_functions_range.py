"""The functions of a range vector, as Prometheus 2.42 computes them (promql/functions.go):
``rate``, ``increase``, ``delta``, ``irate``, ``idelta``, ``deriv``, ``predict_linear``,
``holt_winters``, ``resets``, ``changes`` and the ``*_over_time`` family
(``absent_over_time`` is with ``absent``).

Each is computed series by series, over the samples in the window; a series without a
sample in the window gives nothing, and the metric name is dropped, except by
``last_over_time`` (as the engine does). The float arithmetic is Prometheus' own, in its
order: its Kahan-Neumaier sums where it uses them, its extrapolation to the window's edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import islice
from typing import Any

from ._function_args import checked
from ._gomath import format_f, go_divide
from ._quantile import quantile
from ._values import (
    Context,
    EvaluationError,
    Function,
    Matrix,
    Sample,
    Scalar,
    Series,
    Value,
    Vector,
    without_name,
)

Compute = Callable[[Series, Matrix, list[float], Context], float | None]
"""One series' value: the series, its matrix (for the window), the scalar arguments, the
context; None for no sample."""


def range_function(compute: Compute, keep_name: bool = False) -> Function:
    """A function applying ``compute`` to each series of its range-vector argument."""

    def function(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
        params = [arg.value for arg in args if isinstance(arg, Scalar)]
        matrix = next(arg for arg in args if isinstance(arg, Matrix))
        out: Vector = []
        for series in matrix.series:
            if not series.times:
                continue
            value = compute(series, matrix, params, ctx)
            if value is not None:
                labels = series.labels if keep_name else without_name(series.labels)
                out.append(Sample(labels, value, ctx.t))
        return checked(out)

    return function


def on_values(aggregate: Callable[[list[float]], float]) -> Compute:
    """A ``Compute`` of the values alone (Prometheus' ``aggrOverTime``)."""
    return lambda series, _matrix, _params, _ctx: aggregate(series.values)


def kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    """Prometheus' ``kahanSumInc`` (Neumaier's variant)."""
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def _seconds(milliseconds: int) -> float:
    """Go's ``time.Duration.Seconds()`` of a duration in milliseconds."""
    whole, rest = divmod(milliseconds, 1000)
    return float(whole) + float(rest * 1_000_000) / 1e9


def _extrapolated_rate(
    series: Series, matrix: Matrix, is_counter: bool, is_rate: bool
) -> float | None:
    times, values = series.times, series.values
    count = len(times)
    if count < 2:
        return None
    first = values[0]
    result = values[-1] - first
    if is_counter:
        previous = first
        for value in islice(values, 1, None):
            if value < previous:
                result += previous  # a counter reset
            previous = value
    to_start = (times[0] - matrix.start) / 1000
    to_end = (matrix.end - times[-1]) / 1000
    sampled = (times[-1] - times[0]) / 1000
    average = sampled / (count - 1)
    if is_counter and result > 0 and first >= 0:
        # a counter is never negative: extrapolate no further back than its zero
        to_zero = sampled * (first / result)
        if to_zero < to_start:
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    factor = interval / sampled
    if is_rate:
        factor /= _seconds(matrix.end - matrix.start)
    return result * factor


def _rate(series: Series, matrix: Matrix, _params: list[float], _ctx: Context) -> float | None:
    return _extrapolated_rate(series, matrix, True, True)


def _increase(series: Series, matrix: Matrix, _p: list[float], _c: Context) -> float | None:
    return _extrapolated_rate(series, matrix, True, False)


def _delta(series: Series, matrix: Matrix, _p: list[float], _c: Context) -> float | None:
    return _extrapolated_rate(series, matrix, False, False)


def _instant_value(series: Series, is_rate: bool) -> float | None:
    if len(series.times) < 2:
        return None
    last, previous = series.values[-1], series.values[-2]
    result = last if is_rate and last < previous else last - previous
    interval = series.times[-1] - series.times[-2]
    if interval == 0:
        return None
    return result / (interval / 1000) if is_rate else result


def _irate(series: Series, _m: Matrix, _p: list[float], _c: Context) -> float | None:
    return _instant_value(series, True)


def _idelta(series: Series, _m: Matrix, _p: list[float], _c: Context) -> float | None:
    return _instant_value(series, False)


def linear_regression(series: Series, intercept_time: int) -> tuple[float, float]:
    """The least-squares slope, and the intercept at ``intercept_time`` (ms)."""
    n = sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = series.values[0]
    const_y = True
    for i, (t, v) in enumerate(zip(series.times, series.values, strict=True)):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_time) / 1e3
        sum_x, c_x = kahan_inc(x, sum_x, c_x)
        sum_y, c_y = kahan_inc(v, sum_y, c_y)
        sum_xy, c_xy = kahan_inc(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = kahan_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = go_divide(cov_xy, var_x)
    return slope, sum_y / n - slope * sum_x / n


def _deriv(series: Series, _m: Matrix, _p: list[float], _c: Context) -> float | None:
    if len(series.times) < 2:
        return None
    # near the samples' own times, for precision (prometheus#2674)
    return linear_regression(series, series.times[0])[0]


def _predict_linear(series: Series, _m: Matrix, params: list[float], ctx: Context) -> float | None:
    if len(series.times) < 2:
        return None
    slope, intercept = linear_regression(series, ctx.t)
    return slope * params[0] + intercept


def _holt_winters(series: Series, _m: Matrix, params: list[float], _c: Context) -> float | None:
    sf, tf = params
    if sf <= 0 or sf >= 1:
        raise EvaluationError(
            f"invalid smoothing factor. Expected: 0 < sf < 1, got: {format_f(sf)}"
        )
    if tf <= 0 or tf >= 1:
        raise EvaluationError(f"invalid trend factor. Expected: 0 < tf < 1, got: {format_f(tf)}")
    values = series.values
    if len(values) < 2:
        return None
    s0, s1 = 0.0, values[0]
    b = values[1] - values[0]
    for i in range(1, len(values)):
        x = sf * values[i]
        if i > 1:  # calcTrendValue: the first trend is the first difference itself
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def _resets(values: list[float]) -> float:
    count = 0
    previous = values[0]
    for value in islice(values, 1, None):
        if value < previous:
            count += 1
        previous = value
    return float(count)


def _changes(values: list[float]) -> float:
    count = 0
    previous = values[0]
    for value in islice(values, 1, None):
        if value != previous and not (math.isnan(value) and math.isnan(previous)):
            count += 1
        previous = value
    return float(count)


def _avg(values: list[float]) -> float:
    mean = count = c = 0.0
    for v in values:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue  # Inf of the same sign: the mean stays
            if not math.isinf(v) and not math.isnan(v):
                continue  # Inf + x - Inf would be NaN
        mean, c = kahan_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def _sum(values: list[float]) -> float:
    total = c = 0.0
    for v in values:
        total, c = kahan_inc(v, total, c)
    return total if math.isinf(total) else total + c


def _max(values: list[float]) -> float:
    result = values[0]
    for v in values:
        if v > result or math.isnan(result):
            result = v
    return result


def _min(values: list[float]) -> float:
    result = values[0]
    for v in values:
        if v < result or math.isnan(result):
            result = v
    return result


def _variance(values: list[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in values:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _stddev(values: list[float]) -> float:
    variance = _variance(values)
    return math.sqrt(variance) if variance >= 0 or math.isnan(variance) else math.nan


def _quantile_over_time(series: Series, _m: Matrix, params: list[float], _c: Context) -> float:
    return quantile(params[0], list(series.values))


def _last(series: Series, _m: Matrix, _p: list[float], _c: Context) -> float:
    return series.values[-1]


RANGE_FUNCTIONS: dict[str, Function] = {
    "rate": range_function(_rate),
    "increase": range_function(_increase),
    "delta": range_function(_delta),
    "irate": range_function(_irate),
    "idelta": range_function(_idelta),
    "deriv": range_function(_deriv),
    "predict_linear": range_function(_predict_linear),
    "holt_winters": range_function(_holt_winters),
    "resets": range_function(on_values(_resets)),
    "changes": range_function(on_values(_changes)),
    "avg_over_time": range_function(on_values(_avg)),
    "count_over_time": range_function(on_values(lambda values: float(len(values)))),
    "sum_over_time": range_function(on_values(_sum)),
    "max_over_time": range_function(on_values(_max)),
    "min_over_time": range_function(on_values(_min)),
    "stdvar_over_time": range_function(on_values(_variance)),
    "stddev_over_time": range_function(on_values(_stddev)),
    "quantile_over_time": range_function(_quantile_over_time),
    "last_over_time": range_function(_last, keep_name=True),
    "present_over_time": range_function(on_values(lambda _values: 1.0)),
}
