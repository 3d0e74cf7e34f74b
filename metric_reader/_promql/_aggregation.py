"""Aggregation operators, computed as Prometheus 2.42's ``aggregation()`` computes them, in
the same order, so that float results are the same to the last bit:

- the groups, in the order of their first sample; a group's labels are the ``by`` labels,
  or all but the ``without`` labels and the metric name;
- ``sum`` adds in order; ``avg`` keeps Prometheus' incremental mean (with its care for
  infinities); ``stddev``/``stdvar`` Welford's running variance; ``min``/``max`` replace a
  NaN by any later value; ``group`` is 1; ``count`` and ``count_values`` count;
- ``topk``/``bottomk`` select with Go's ``container/heap`` and Prometheus' comparison, so
  ties and NaNs choose the same samples; their results keep the samples' labels;
- ``quantile`` interpolates between the sorted values (NaNs first) as Prometheus does;
- ``count_values`` writes the value as Go's ``strconv.FormatFloat(v, 'f', -1, 64)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

from .._core import is_label_name, quote
from ._node import Env, Node, check_unique, go_float
from ._quantile import quantile
from ._values import NAME, EvaluationError, Labels, Sample, Scalar, String, Value, Vector

_MAX_INT64 = 9223372036854774784.0
"""The largest float64 that converts to an int64 (Prometheus' ``maxInt64``)."""
_CACHE_LIMIT = 65536


class Aggregation(Node):
    __slots__ = ("_groups", "expr", "grouping", "op", "param", "without")

    def __init__(
        self, op: str, expr: Node, param: Node | None, grouping: list[str], *, without: bool
    ) -> None:
        self.op = op
        self.expr = expr
        self.param = param
        self.grouping = frozenset(grouping)
        self.without = without
        self._groups: dict[Labels, Labels] = {}

    def eval(self, env: Env, t: int) -> Value:
        param = self.param.eval(env, t) if self.param is not None else None
        vector = self.expr.eval(env, t)
        assert isinstance(vector, list)
        reduce = _REDUCERS.get(self.op)
        if reduce is None:
            return self._special(vector, param, t)
        if not vector:
            return []
        groups: dict[Labels, list[float]] = {}
        group = self._group
        for sample in vector:
            key = group(sample.labels)
            values = groups.get(key)
            if values is None:
                groups[key] = [sample.value]
            else:
                values.append(sample.value)
        return [Sample(key, reduce(values), t) for key, values in groups.items()]

    def _special(self, vector: Vector, param: Value | None, t: int) -> Vector:
        """``topk``, ``bottomk``, ``count_values``, ``quantile``: those with a parameter."""
        if self.op in ("topk", "bottomk"):
            assert isinstance(param, Scalar)
            return check_unique(self._top(vector, param.value, t, bottom=self.op == "bottomk"))
        if self.op == "count_values":
            assert isinstance(param, String)
            return check_unique(self._count_values(vector, param.value, t))
        assert self.op == "quantile" and isinstance(param, Scalar)
        groups: dict[Labels, list[float]] = {}
        for sample in vector:
            groups.setdefault(self._group(sample.labels), []).append(sample.value)
        return [
            Sample(key, quantile(param.value, list(values)), t) for key, values in groups.items()
        ]

    def _group(self, labels: Labels) -> Labels:
        found = self._groups.get(labels)
        if found is None:
            if len(self._groups) >= _CACHE_LIMIT:
                self._groups.clear()
            found = self._group_of(labels, self.grouping)
            self._groups[labels] = found
        return found

    def _group_of(self, labels: Labels, grouping: frozenset[str]) -> Labels:
        if self.without:
            return tuple(p for p in labels if p[0] not in grouping and p[0] != NAME)
        return tuple(p for p in labels if p[0] in grouping)

    def _count_values(self, vector: Vector, label: str, t: int) -> Vector:
        if not is_label_name(label):
            raise EvaluationError(f"invalid label name {quote(label)}")
        grouping = self.grouping if self.without else self.grouping | {label}
        counts: dict[Labels, int] = {}
        for sample in vector:
            labels = dict(sample.labels)
            labels[label] = format_value(sample.value)
            key = self._group_of(tuple(sorted(labels.items())), grouping)
            counts[key] = counts.get(key, 0) + 1
        return [Sample(key, float(count), t) for key, count in counts.items()]

    def _top(self, vector: Vector, k_value: float, t: int, *, bottom: bool) -> Vector:
        if not -(2.0**63) <= k_value <= _MAX_INT64:  # NaN too
            raise EvaluationError(f"Scalar value {go_float(k_value)} overflows int64")
        k = int(k_value)
        if k < 1:
            return []
        less = _greater if bottom else _less
        heaps: dict[Labels, list[Sample]] = {}
        for sample in vector:
            key = self._group(sample.labels)
            heap = heaps.get(key)
            if heap is None:
                heaps[key] = [sample]
                continue
            top = heap[0].value
            beaten = (top > sample.value) if bottom else (top < sample.value)
            if len(heap) < k or beaten or math.isnan(top):
                if len(heap) == k:
                    if k == 1:
                        heap[0] = sample
                        continue
                    _pop(heap, less)
                _push(heap, sample, less)
        out: Vector = []
        for heap in heaps.values():
            # Go's sort.Reverse of the heap's order: the best first, NaNs last.
            numbers = [s for s in heap if not math.isnan(s.value)]
            numbers.sort(key=lambda s: s.value, reverse=not bottom)
            numbers.extend(s for s in heap if math.isnan(s.value))
            out.extend(Sample(s.labels, s.value, t) for s in numbers)
        return out


def _less(a: Sample, b: Sample) -> bool:
    """``vectorByValueHeap.Less``: NaN is the least."""
    return math.isnan(a.value) or a.value < b.value


def _greater(a: Sample, b: Sample) -> bool:
    """``vectorByReverseValueHeap.Less``."""
    return math.isnan(a.value) or a.value > b.value


def _push(heap: list[Sample], sample: Sample, less: Callable[[Sample, Sample], bool]) -> None:
    """Go's ``heap.Push``."""
    heap.append(sample)
    j = len(heap) - 1
    while j > 0:
        i = (j - 1) // 2
        if not less(heap[j], heap[i]):
            break
        heap[i], heap[j] = heap[j], heap[i]
        j = i


def _pop(heap: list[Sample], less: Callable[[Sample, Sample], bool]) -> None:
    """Go's ``heap.Pop``, the popped element dropped."""
    n = len(heap) - 1
    heap[0], heap[n] = heap[n], heap[0]
    i = 0
    while True:
        j = 2 * i + 1
        if j >= n:
            break
        if j + 1 < n and less(heap[j + 1], heap[j]):
            j += 1
        if not less(heap[j], heap[i]):
            break
        heap[i], heap[j] = heap[j], heap[i]
        i = j
    heap.pop()


def _sum(values: list[float]) -> float:
    total = values[0]
    for value in values[1:]:
        total += value
    return total


def _avg(values: list[float]) -> float:
    mean = values[0]
    count = 1
    for value in values[1:]:
        count += 1
        if math.isinf(mean):
            if math.isinf(value) and (mean > 0) == (value > 0):
                continue
            if not math.isinf(value) and not math.isnan(value):
                continue
        mean += value / count - mean / count
    return mean


def _max(values: list[float]) -> float:
    best = values[0]
    for value in values[1:]:
        if best < value or math.isnan(best):
            best = value
    return best


def _min(values: list[float]) -> float:
    best = values[0]
    for value in values[1:]:
        if best > value or math.isnan(best):
            best = value
    return best


def _stdvar(values: list[float]) -> float:
    mean = values[0]
    total = 0.0
    count = 1
    for value in values[1:]:
        count += 1
        delta = value - mean
        mean += delta / count
        total += delta * (value - mean)
    return total / count


def _stddev(values: list[float]) -> float:
    return math.sqrt(_stdvar(values))


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "sum": _sum,
    "avg": _avg,
    "max": _max,
    "min": _min,
    "count": lambda values: float(len(values)),
    "group": lambda values: 1.0,
    "stdvar": _stdvar,
    "stddev": _stddev,
}


def format_value(value: float) -> str:
    """Go's ``strconv.FormatFloat(value, 'f', -1, 64)``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return format(Decimal(repr(value)).normalize(), "f")
