"""Binary operators and unary minus, as Prometheus 2.42's engine applies them
(``VectorBinop``, ``VectorscalarBinop``, ``VectorAnd``/``Or``/``Unless``, ``resultMetric``):

- scalar op scalar is a scalar (a comparison needs ``bool`` and gives 0 or 1);
- vector op scalar applies to each sample; a comparison keeps the samples for which it
  holds, with the vector's value (also when the scalar is on the left), or with ``bool``
  gives 0 or 1 for all; arithmetic and ``bool`` drop the metric name;
- vector op vector matches the samples whose label sets, without the metric name, are equal
  (``on(...)``: on those labels only; ``ignoring(...)``: without those too); one-to-one
  unless ``group_left``/``group_right`` says which side may have many; the result has the
  labels of the "many" side (one-to-one: only the ``on`` labels, or without the ``ignoring``
  ones), the ``group_x(...)`` labels copied from the "one" side;
- ``and``, ``or``, ``unless`` keep samples of the left (and, for ``or``, of the right) by the
  same matching, unchanged;
- the errors are Prometheus' own: duplicate series on the "one" side, multiple matches.
"""

from __future__ import annotations

from ._arithmetic import ARITHMETIC, COMPARISON, DROPS_NAME
from ._node import Env, Node, check_unique, labels_text
from ._values import NAME, EvaluationError, Labels, Sample, Scalar, Value, Vector, without_name

ONE_TO_ONE, MANY_TO_ONE, ONE_TO_MANY, MANY_TO_MANY = "1:1", "n:1", "1:n", "n:n"
_CACHE_LIMIT = 65536
"""Label sets remembered per operator (signatures, result labels): a rule evaluated at every
step meets the same series again."""


class Unary(Node):
    """``-expr``: the metric name dropped."""

    __slots__ = ("expr",)

    def __init__(self, expr: Node) -> None:
        self.expr = expr

    def eval(self, env: Env, t: int) -> Value:
        value = self.expr.eval(env, t)
        if isinstance(value, Scalar):
            return Scalar(-value.value)
        assert isinstance(value, list)
        return check_unique([Sample(without_name(s.labels), -s.value, s.t) for s in value])


class Binary(Node):
    __slots__ = (
        "_nameless",
        "_results",
        "_signatures",
        "_vectors_of",
        "apply",
        "card",
        "compare",
        "drop",
        "ignoring",
        "include",
        "lhs",
        "matching",
        "on",
        "op",
        "return_bool",
        "rhs",
    )

    def __init__(
        self,
        op: str,
        lhs: Node,
        rhs: Node,
        *,
        return_bool: bool,
        card: str,
        on: bool,
        matching: list[str],
        include: list[str],
    ) -> None:
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        self.return_bool = return_bool
        self.card = card
        self.on = on
        self.matching = frozenset(matching) if on else frozenset([*matching, NAME])
        """The labels a signature keeps (``on``) or leaves out (``ignoring``, and the name)."""
        self.ignoring = frozenset(() if on else matching)
        self.include = include
        self._signatures: dict[Labels, Labels] = {}
        self._nameless: dict[Labels, Labels] = {}
        self._results: dict[tuple[Labels, Labels], Labels] = {}
        self.compare = COMPARISON.get(op)
        self.apply = ARITHMETIC.get(op)
        self.drop = op in DROPS_NAME or return_bool
        """Whether the result loses the metric name (vector and scalar)."""
        sets = {"and": self._and, "or": self._or, "unless": self._unless}
        self._vectors_of = sets.get(op, self._vectors)

    def eval(self, env: Env, t: int) -> Value:
        lhs = self.lhs.eval(env, t)
        rhs = self.rhs.eval(env, t)
        if type(lhs) is list:
            if type(rhs) is list:
                return check_unique(self._vectors_of(lhs, rhs))
            assert isinstance(rhs, Scalar)
            return check_unique(self._vector_scalar(lhs, rhs.value, swap=False))
        assert isinstance(lhs, Scalar)
        if type(rhs) is list:
            return check_unique(self._vector_scalar(rhs, lhs.value, swap=True))
        assert isinstance(rhs, Scalar)
        return Scalar(self._scalars(lhs.value, rhs.value))

    def _scalars(self, lhs: float, rhs: float) -> float:
        if self.compare is not None:
            return 1.0 if self.compare(lhs, rhs) else 0.0
        assert self.apply is not None
        return self.apply(lhs, rhs)

    def _without_name(self, labels: Labels) -> Labels:
        found = self._nameless.get(labels)
        if found is None:
            if len(self._nameless) >= _CACHE_LIMIT:
                self._nameless.clear()
            found = self._nameless[labels] = without_name(labels)
        return found

    def _vector_scalar(self, vector: Vector, scalar: float, *, swap: bool) -> Vector:
        out: Vector = []
        compare = self.compare
        drop = self.drop
        without_name = self._without_name
        if compare is not None:
            for sample in vector:
                keep = compare(scalar, sample.value) if swap else compare(sample.value, scalar)
                if self.return_bool:
                    value = 1.0 if keep else 0.0
                elif keep:
                    value = sample.value
                else:
                    continue
                labels = without_name(sample.labels) if drop else sample.labels
                out.append(Sample(labels, value, sample.t))
            return out
        apply = self.apply
        assert apply is not None
        for sample in vector:
            value = apply(scalar, sample.value) if swap else apply(sample.value, scalar)
            labels = without_name(sample.labels) if drop else sample.labels
            out.append(Sample(labels, value, sample.t))
        return out

    def _signature(self, labels: Labels) -> Labels:
        found = self._signatures.get(labels)
        if found is None:
            if len(self._signatures) >= _CACHE_LIMIT:
                self._signatures.clear()
            names = self.matching
            if self.on:
                found = tuple(pair for pair in labels if pair[0] in names)
            else:
                found = tuple(pair for pair in labels if pair[0] not in names)
            self._signatures[labels] = found
        return found

    def _and(self, lhs: Vector, rhs: Vector) -> Vector:
        if not lhs or not rhs:
            return []
        right = {self._signature(s.labels) for s in rhs}
        return [s for s in lhs if self._signature(s.labels) in right]

    def _or(self, lhs: Vector, rhs: Vector) -> Vector:
        if not lhs or not rhs:
            return lhs + rhs
        left = {self._signature(s.labels) for s in lhs}
        return lhs + [s for s in rhs if self._signature(s.labels) not in left]

    def _unless(self, lhs: Vector, rhs: Vector) -> Vector:
        if not lhs or not rhs:
            return list(lhs)
        right = {self._signature(s.labels) for s in rhs}
        return [s for s in lhs if self._signature(s.labels) not in right]

    def _vectors(self, lhs: Vector, rhs: Vector) -> Vector:
        if not lhs or not rhs:
            return []
        swapped = self.card == ONE_TO_MANY
        if swapped:
            lhs, rhs = rhs, lhs
        right: dict[Labels, Sample] = {}
        for sample in rhs:
            signature = self._signature(sample.labels)
            duplicate = right.get(signature)
            if duplicate is not None:
                self._duplicate(sample.labels, duplicate.labels)
            right[signature] = sample
        compare = self.compare
        apply = self.apply
        matched: dict[Labels, set[Labels] | None] = {}
        out: Vector = []
        for sample in lhs:
            signature = self._signature(sample.labels)
            other = right.get(signature)
            if other is None:
                continue
            left_value, right_value = sample.value, other.value
            if swapped:
                left_value, right_value = right_value, left_value
            if compare is not None:
                keep = compare(left_value, right_value)
                value = left_value
            else:
                assert apply is not None
                keep = True
                value = apply(left_value, right_value)
            if self.return_bool:
                value = 1.0 if keep else 0.0
            elif not keep:
                continue
            labels = self._result_labels(sample.labels, other.labels)
            if self.card == ONE_TO_ONE:
                if signature in matched:
                    raise EvaluationError(
                        "multiple matches for labels: many-to-one matching must be explicit "
                        "(group_left/group_right)"
                    )
                matched[signature] = None
            else:
                inserted = matched.get(signature)
                if inserted is None:
                    inserted = matched[signature] = set()
                elif labels in inserted:
                    raise EvaluationError(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                    )
                inserted.add(labels)
            out.append(Sample(labels, value, sample.t))
        return out

    def _duplicate(self, labels: Labels, other: Labels) -> None:
        side = "left" if self.card == ONE_TO_MANY else "right"
        if self.on:
            group = tuple(pair for pair in labels if pair[0] in self.matching)
        else:
            group = tuple(pair for pair in labels if pair[0] not in self.matching)
        raise EvaluationError(
            f"found duplicate series for the match group {labels_text(group)} on the {side} "
            f"hand-side of the operation: [{labels_text(labels)}, {labels_text(other)}];"
            "many-to-many matching not allowed: matching labels must be unique on one side"
        )

    def _result_labels(self, many: Labels, one: Labels) -> Labels:
        key = (many, one)
        found = self._results.get(key)
        if found is None:
            if len(self._results) >= _CACHE_LIMIT:
                self._results.clear()
            found = self._compute_labels(many, one)
            self._results[key] = found
        return found

    def _compute_labels(self, many: Labels, one: Labels) -> Labels:
        result = dict(many)
        if self.op in DROPS_NAME or self.return_bool:
            result.pop(NAME, None)
        if self.card == ONE_TO_ONE and self.on:
            result = {name: value for name, value in result.items() if name in self.matching}
        elif self.card == ONE_TO_ONE:
            result = {name: value for name, value in result.items() if name not in self.ignoring}
        if self.include:
            others = dict(one)
            for name in self.include:
                value = others.get(name, "")
                if value:
                    result[name] = value
                else:
                    result.pop(name, None)
            if self.return_bool:
                result.pop(NAME, None)
        return tuple(sorted(result.items()))
