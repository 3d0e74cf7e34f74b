"""Selectors and subqueries, as Prometheus 2.42's engine reads series (``engine.go``):

- an instant vector selector at ``t`` takes each series' latest sample at or before
  ``t - offset``, if it is at most the lookback old (a sample exactly 5m old counts, as in
  Prometheus 2) and not a staleness marker (a marker ends the series there);
- a range vector selector takes the samples at ``t - offset - range <= time <= t - offset``
  (Prometheus 2's closed window), staleness markers left out;
- ``@ T`` evaluates the selector or subquery at ``T`` whatever the time of the step;
  ``@ start()`` and ``@ end()`` are the instant query's time, inside subqueries too;
- a subquery ``expr[range:step] offset o`` evaluates ``expr`` at the times that are whole
  multiples of ``step`` (absolute, from 1970) within ``[t - o - range, t - o]``; without a
  step, at the query's default step.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

from ._node import MAX_SUBQUERY_STEPS, Env, Node
from ._storage import Storage, StoredSeries
from ._values import NAME, EvaluationError, Labels, Matrix, Sample, Scalar, Series, Vector

Matcher = tuple[str, Callable[[str], bool]]
"""A label name and the test its value (``""`` when absent) must pass."""


class At:
    """Where a selector or subquery is evaluated: at the step's time, at a fixed time (``@
    T``), or at the query's time (``@ start()``, ``@ end()``); ``offset`` before that."""

    __slots__ = ("fixed", "offset", "query_time")

    def __init__(self, offset: int, fixed: int | None, query_time: bool) -> None:
        self.offset = offset
        self.fixed = fixed
        self.query_time = query_time

    def time(self, env: Env, t: int) -> int:
        if self.query_time:
            return env.query_time - self.offset
        if self.fixed is not None:
            return self.fixed - self.offset
        return t - self.offset


class Selection:
    """The series of a selector, chosen again only when the storage has gained series."""

    __slots__ = ("_chosen", "_generation", "_storage", "matchers", "name")

    def __init__(self, name: str | None, matchers: list[Matcher]) -> None:
        self.name = name
        """The metric name when the selector fixes it (an index lookup), else None."""
        self.matchers = matchers
        self._storage: Storage | None = None
        self._generation = -1
        self._chosen: list[StoredSeries] = []

    def series(self, storage: Storage) -> list[StoredSeries]:
        if storage is not self._storage or storage.generation != self._generation:
            candidates = storage.all() if self.name is None else storage.named(self.name)
            chosen = [one for one in candidates if self._matches(one.labels)]
            chosen.sort(key=lambda one: one.labels)  # Prometheus' order: by label set
            self._chosen = chosen
            self._storage = storage
            self._generation = storage.generation
        return self._chosen

    def _matches(self, labels: Labels) -> bool:
        values = dict(labels)
        return all(test(values.get(name, "")) for name, test in self.matchers)


class VectorSelector(Node):
    __slots__ = ("at", "selection")

    def __init__(self, selection: Selection, at: At) -> None:
        self.selection = selection
        self.at = at

    def eval(self, env: Env, t: int) -> Vector:
        return self.samples(env, self.at.time(env, t), t)

    def samples(self, env: Env, ref: int, t: int | None) -> Vector:
        """Each series' sample for time ``ref``, stamped ``t`` (None: its own time)."""
        oldest = ref - env.lookback
        out: Vector = []
        for one in self.selection.series(env.storage):
            times = one.times
            i = bisect_right(times, ref) - 1
            if i < 0 or times[i] < oldest:
                continue
            value = one.values[i]
            if value is not None:
                out.append(Sample(one.labels, value, times[i] if t is None else t))
        return out


class MatrixSelector(Node):
    __slots__ = ("range", "selector")

    def __init__(self, selector: VectorSelector, range_ms: int) -> None:
        self.selector = selector
        self.range = range_ms

    def eval(self, env: Env, t: int) -> Matrix:
        end = self.selector.at.time(env, t)
        start = end - self.range
        out: list[Series] = []
        for one in self.selector.selection.series(env.storage):
            times = one.times
            first = bisect_left(times, start)
            last = bisect_right(times, end, first)
            if first == last:
                continue
            if one.markers == 0:
                window = Series(one.labels, times[first:last], one.values[first:last])  # type: ignore[arg-type]
            else:
                window = Series(one.labels)
                for at, value in zip(times[first:last], one.values[first:last], strict=True):
                    if value is not None:
                        window.times.append(at)
                        window.values.append(value)
                if not window.times:
                    continue
            out.append(window)
        return Matrix(out, start, end)


class Subquery(Node):
    __slots__ = ("at", "expr", "range", "step")

    def __init__(self, expr: Node, range_ms: int, step: int | None, at: At) -> None:
        self.expr = expr
        self.range = range_ms
        self.step = step
        self.at = at

    def eval(self, env: Env, t: int) -> Matrix:
        end = self.at.time(env, t)
        start = end - self.range
        step = self.step or env.subquery_step
        first = -(-start // step) * step  # the first multiple of the step in the window
        steps = (end - first) // step + 1
        env.steps_left -= max(steps, 0)
        if env.steps_left < 0:
            raise EvaluationError(
                "query processing would load too many samples into memory in query execution "
                f"(subqueries of more than {MAX_SUBQUERY_STEPS:,} steps in all)"
            )
        collected: dict[Labels, Series] = {}
        for at in range(first, end + 1, step):
            value = self.expr.eval(env, at)
            if isinstance(value, Scalar):
                value = [Sample((), value.value, at)]
            elif not isinstance(value, list):
                raise EvaluationError("subquery is only allowed on instant vector")
            for sample in value:
                series = collected.get(sample.labels)
                if series is None:
                    series = collected[sample.labels] = Series(sample.labels)
                series.times.append(at)
                series.values.append(sample.value)
        return Matrix(list(collected.values()), start, end)


def name_of(matchers: list[tuple[str, str, str]]) -> str | None:
    """The metric name an equality matcher on ``__name__`` fixes, if any."""
    for name, op, value in matchers:
        if name == NAME and op == "=":
            return value
    return None
