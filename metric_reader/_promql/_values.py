"""The values PromQL evaluates to, as this package holds them.

Labels are a tuple of ``(name, value)`` pairs sorted by name, ``__name__`` included when a
series has one: hashable, cheap to compare and to sort (Prometheus orders label sets the
same way). Times are whole milliseconds since the epoch, as Prometheus' are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from .._core import record, record_field

Labels = tuple[tuple[str, str], ...]
"""Sorted by name; ``__name__`` included when the series has one."""

NAME = "__name__"


def labels_from(mapping: dict[str, str] | Sequence[tuple[str, str]]) -> Labels:
    pairs = mapping.items() if isinstance(mapping, dict) else mapping
    return tuple(sorted((name, value) for name, value in pairs if value != ""))


def without_name(labels: Labels) -> Labels:
    """Prometheus' ``DropMetricName``."""
    return tuple(pair for pair in labels if pair[0] != NAME)


@record(slots=True)
class Sample:
    """One element of an instant vector."""

    labels: Labels
    value: float
    t: int
    """The evaluation time, except where Prometheus keeps a sample's own (``timestamp()``)."""


Vector = list[Sample]


@record(slots=True)
class Series:
    """One series of a range vector: its samples in the window, staleness markers left out."""

    labels: Labels
    times: list[int] = record_field(default_factory=list)
    values: list[float] = record_field(default_factory=list)


@record(slots=True)
class Matrix:
    """A range vector (a matrix selector's or a subquery's result) and its window: the
    samples at ``start`` <= t <= ``end`` (Prometheus 2's closed range)."""

    series: list[Series]
    start: int
    end: int


class Scalar(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    value: float


class String(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    value: str


Value = Vector | Matrix | Scalar | String


class EvaluationError(Exception):
    """An expression Prometheus would fail to evaluate, with Prometheus' message
    (``vector cannot contain metrics with the same labelset``, ``found duplicate series
    for the match group ...``)."""


class Context(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    """What a function is evaluated with besides its arguments."""

    t: int
    """The evaluation time, milliseconds."""


class Function(Protocol):
    """A PromQL function: its arguments evaluated (a matrix argument with its window), the
    argument expressions as parsed (``promql_parser`` nodes: ``absent()`` reads the
    matchers of its selector, ``label_replace`` its strings), the context; it returns the
    value Prometheus' function returns (a ``Vector``, or a ``Scalar`` for ``time()``,
    ``scalar()`` and ``pi()``)."""

    def __call__(self, args: list[Value], exprs: Sequence[Any], ctx: Context) -> Value: ...
