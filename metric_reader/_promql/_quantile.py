"""Quantiles as Prometheus 2.42 estimates them (promql/quantile.go): ``quantile`` of values
(``quantile_over_time``, the ``quantile`` aggregation) and ``histogram_quantile`` of
classic ``le`` buckets (native histograms are not held here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._function_args import checked, scalar_arg, vector_arg
from ._gomath import parse_float
from ._values import NAME, Context, Labels, Sample, Value, Vector

BUCKET_LABEL = "le"


def quantile(q: float, values: list[float]) -> float:
    """The ``q`` quantile of ``values``, interpolated between the two nearest ranks; NaN for
    no values; ±Inf for q out of [0, 1]. ``values`` is sorted in place (NaN first)."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    values.sort(key=_nan_first)
    n = float(len(values))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[int(lower)] * (1 - weight) + values[int(upper)] * weight


def _nan_first(value: float) -> tuple[bool, float]:
    return (not math.isnan(value), value)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, as Prometheus'
    ``bucketQuantile``: NaN without a +Inf bucket, with fewer than two buckets or no
    observations; counts made monotonic; linear interpolation within the bucket."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets.sort(key=lambda bucket: bucket[0])
    if not (math.isinf(buckets[-1][0]) and buckets[-1][0] > 0):
        return math.nan
    buckets = _coalesced(buckets)
    counts = _monotonic([count for _, count in buckets])
    if len(buckets) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = _search(len(buckets) - 1, counts, rank)
    if b == len(buckets) - 1:
        return buckets[-2][0]
    if b == 0 and buckets[0][0] <= 0:
        return buckets[0][0]
    bucket_start = 0.0
    bucket_end = buckets[b][0]
    count = counts[b]
    if b > 0:
        bucket_start = buckets[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return bucket_start + (bucket_end - bucket_start) * _ratio(rank, count)


def _search(n: int, counts: list[float], rank: float) -> int:
    """Go's ``sort.Search(n, func(i) { return counts[i] >= rank })``, step for step (its
    answer with NaN counts depends on the steps)."""
    low, high = 0, n
    while low < high:
        middle = (low + high) >> 1
        if not counts[middle] >= rank:
            low = middle + 1
        else:
            high = middle
    return low


def _ratio(rank: float, count: float) -> float:
    if count != 0:
        return rank / count
    return math.nan if rank == 0 or math.isnan(rank) else math.copysign(math.inf, rank)


def _coalesced(buckets: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Buckets of the same upper bound merged, their counts added."""
    out: list[tuple[float, float]] = []
    last_bound, last_count = buckets[0]
    for bound, count in buckets[1:]:
        if bound == last_bound:
            last_count += count
        else:
            out.append((last_bound, last_count))
            last_bound, last_count = bound, count
    out.append((last_bound, last_count))
    return out


def _monotonic(counts: list[float]) -> list[float]:
    """Each count at least the one before (``ensureMonotonic``): a bucket scraped at another
    moment than its neighbours may count fewer."""
    highest = counts[0]
    for i in range(1, len(counts)):
        if counts[i] > highest:
            highest = counts[i]
        elif counts[i] < highest:
            counts[i] = highest
    return counts


def histogram_quantile(args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value:
    """``histogram_quantile(q, buckets)``: the series grouped by their labels but ``le``
    (the metric name included), each group's quantile labelled without ``le`` and the
    name. A sample without an ``le`` Go's ParseFloat reads is skipped."""
    q = scalar_arg(args[0])
    groups: dict[Labels, tuple[Labels, list[tuple[float, float]]]] = {}
    for sample in vector_arg(args[1]):
        bound_text = next((value for name, value in sample.labels if name == BUCKET_LABEL), "")
        bound = parse_float(bound_text)
        if bound is None:
            continue
        key = tuple(pair for pair in sample.labels if pair[0] != BUCKET_LABEL)
        group = groups.get(key)
        if group is None:
            group = (tuple(pair for pair in key if pair[0] != NAME), [])
            groups[key] = group
        group[1].append((bound, sample.value))
    out: Vector = [
        Sample(labels, bucket_quantile(q, buckets), ctx.t) for labels, buckets in groups.values()
    ]
    return checked(out)
