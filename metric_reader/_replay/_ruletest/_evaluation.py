"""A rule-test group evaluated as ``promtool test rules`` (2.42) evaluates it, in process.

The input series go into an in-memory store (``_promql.Storage``). At each evaluation
time, from 0 to the group's latest ``eval_time``, the rule files' groups are evaluated in
order (``group_eval_order`` first), each group's rules in the order of the file:

- a recording rule's expression is evaluated and its result written back, named after the
  rule, with the rule's labels; a series it wrote at the previous evaluation and not at
  this one gets a staleness marker, as Prometheus' rule groups write them;
- an alerting rule's expression is read by the rule's replayer (the engine's evaluation
  step, the service's own state machines and routes) and the alerts it then holds are
  written as ``ALERTS`` and ``ALERTS_FOR_STATE``, with staleness markers too; while a fix
  of the rule judged by a ``verify_query`` is pending, that query is evaluated too, at the
  same instant, and given to the step with the read.

So an alert reading a recorded series, a ``promql_expr_test`` on a recorded series and
``count(ALERTS)`` see what promtool's see. A metric-reader ``config_file``'s own rules are
evaluated at their own polling intervals, after the rule files' groups at an instant.

An expression Prometheus fails to evaluate (``many-to-many matching not allowed``) ends the
group with promtool's line ``rule: NAME, time: T, err: E``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import NamedTuple

from ..._config import (
    PrometheusQuery,
    RecordingRuleConfig,
    RuleConfig,
    RuleGroupConfig,
    Settings,
)
from ..._core import Sample, Selector
from ..._engine import EvaluationStep, Observation, Replayer, State
from ..._promql import (
    NAME,
    EvaluationError,
    Labels,
    Query,
    Scalar,
    Storage,
    Value,
    Vector,
)
from ..._promql import (
    Sample as PromSample,
)
from ._model import RuleTestGroup
from ._series_desc import Stale
from ._series_store import SeriesStore

ALERTS = "ALERTS"
ALERTS_FOR_STATE = "ALERTS_FOR_STATE"


def input_storage(group: RuleTestGroup) -> Storage:
    """The group's input series, stored as Prometheus would hold them."""
    storage = Storage()
    step = round(group.interval * 1000)
    for series in group.input_series:
        given = [(index, value) for index, value in enumerate(series.values) if value is not None]
        storage.add(
            tuple(sorted(series.labels.items())),
            [index * step for index, _ in given],
            [None if isinstance(value, Stale) else value for _, value in given],
        )
    return storage


def as_vector(value: Value, at: int) -> Vector:
    """A rule's or a test's result as a vector: a scalar is one sample without labels, as
    Prometheus' rule query function makes it; anything else fails."""
    if isinstance(value, list):
        return value
    if isinstance(value, Scalar):
        return [PromSample((), value.value, at)]
    raise EvaluationError("rule result is not a vector or scalar")  # promtool's words


class _Written:
    """The series a rule wrote at its previous evaluation: those it does not write again
    get a staleness marker."""

    __slots__ = ("before",)

    def __init__(self) -> None:
        self.before: set[Labels] = set()

    def write(self, storage: Storage, at: int, samples: Iterable[tuple[Labels, float]]) -> None:
        now = set()
        for labels, value in samples:
            storage.append(labels, at, value)
            now.add(labels)
        for labels in self.before - now:
            storage.append(labels, at, None)
        self.before = now


class _Recording:
    __slots__ = ("interval_ms", "query", "rule", "written")

    def __init__(self, rule: RecordingRuleConfig, query: Query, interval_ms: int) -> None:
        self.rule = rule
        self.query = query
        self.interval_ms = interval_ms
        self.written = _Written()

    @property
    def name(self) -> str:
        return self.rule.record

    def evaluate(self, at: int, storage: Storage) -> None:
        vector = as_vector(self.query.evaluate(at, storage), at)
        out: dict[Labels, float] = {}
        for sample in vector:
            labels = dict(sample.labels)
            labels[NAME] = self.rule.record
            labels.update(self.rule.labels)
            key = tuple(sorted((k, v) for k, v in labels.items() if v != ""))
            if key in out:
                raise EvaluationError(
                    "vector contains metrics with the same labelset after applying rule labels"
                )
            out[key] = sample.value
        self.written.write(storage, at, out.items())


class _Alerting:
    """A rule the engine replays: a rule file's alert, or a configuration's own rule."""

    __slots__ = ("interval_ms", "queries", "read", "replayer", "subquery_step", "written")

    def __init__(
        self,
        replayer: Replayer,
        read: Callable[[int, Storage], list[Sample] | None],
        interval_ms: int,
        subquery_step: int = 0,
    ) -> None:
        self.replayer = replayer
        self.read = read
        self.interval_ms = interval_ms
        self.written = _Written()
        self.subquery_step = subquery_step
        self.queries: dict[str, Query] = {}
        """The ``verify_query`` texts it read, parsed once."""

    @property
    def name(self) -> str:
        return self.replayer.rule.name

    def evaluate(self, at: int, storage: Storage) -> None:
        samples = self.read(at, storage)
        self.replayer.step(Observation(at / 1000, samples, self._verify(at, storage)))
        self.written.write(storage, at, self._alerts())

    def _verify(self, at: int, storage: Storage) -> dict[str, list[Sample] | None]:
        """The answer at ``at`` of each ``verify_query`` a fix of the rule is judged by
        now (none unless one is pending), evaluated on the store as the rule's own query
        is; one Prometheus would fail to evaluate ends the group, as the rule's would."""
        answers: dict[str, list[Sample] | None] = {}
        for text in EvaluationStep.verify_queries(self.replayer.rule):
            query = self.queries.get(text)
            if query is None:
                query = self.queries[text] = Query(text, subquery_step=self.subquery_step)
            answers[text] = _samples(as_vector(query.evaluate(at, storage), at))
        return answers

    def _alerts(self) -> Iterable[tuple[Labels, float]]:
        for alert in self.replayer.rule.alerts():
            state = "firing" if alert.state is State.FIRING else "pending"
            labels = {k: v for k, v in alert.labels.items() if v != ""}
            yield _sorted({**labels, NAME: ALERTS, "alertstate": state}), 1.0
            yield _sorted({**labels, NAME: ALERTS_FOR_STATE}), float(int(alert.active_at))


def _sorted(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


Unit = _Recording | _Alerting


class GroupRun(NamedTuple):
    """What evaluating a group left: the replayers (what each rule did) and the store
    (input, recorded and ``ALERTS`` series) the expression tests read."""

    replayers: list[Replayer]
    storage: Storage
    failure: tuple[str, float, str] | None = None
    """The rule whose evaluation failed, when (seconds) and why: the group ended there."""


def evaluate_group(
    settings: Settings,
    group: RuleTestGroup,
    evaluation_interval: float,
    group_eval_order: Sequence[str],
    make_replayer: Callable[[RuleConfig], Replayer],
    from_config_file: bool,
) -> GroupRun:
    """Every rule of ``settings`` evaluated over ``group``'s input series, from 0 to its
    latest ``eval_time``, as promtool evaluates them (see the module's docstring)."""
    storage = input_storage(group)
    store = cache(  # built only for a selector rule
        lambda: SeriesStore(group.input_series, group.interval, lookback_includes_start=True)
    )
    every_ms = round(evaluation_interval * 1000)  # and subqueries' default step, as promtool
    replayers: list[Replayer] = []
    units: dict[str, _Alerting] = {}
    for rule in settings.rules:
        replayer = make_replayer(rule)
        replayers.append(replayer)
        interval_ms = round(rule.polling_interval * 1000)
        if rule.alert is not None and not from_config_file:
            interval_ms = every_ms  # promtool evaluates every group at evaluation_interval
        read = _reader(rule, store, every_ms)
        units[rule.name] = _Alerting(replayer, read, interval_ms, subquery_step=every_ms)
    ordered: list[Unit] = []
    for rule_group in _ordered_groups(settings.rule_groups, group_eval_order):
        for node in rule_group.rules:
            if isinstance(node, RecordingRuleConfig):
                query = Query(node.expr, subquery_step=every_ms)
                ordered.append(_Recording(node, query, every_ms))
            elif (alerting := units.pop(node.name, None)) is not None:
                ordered.append(alerting)
    ordered += units.values()
    end = round(group.max_eval_time() * 1000)
    steps = {unit.interval_ms for unit in ordered}
    instants = sorted({at for every in steps for at in range(0, end + 1, max(every, 1))})
    for at in instants:
        for unit in ordered:
            if at % unit.interval_ms:
                continue
            try:
                unit.evaluate(at, storage)
            except EvaluationError as exc:
                return GroupRun(replayers, storage, (unit.name, at / 1000, str(exc)))
    return GroupRun(replayers, storage)


def _ordered_groups(
    groups: Sequence[RuleGroupConfig], order: Sequence[str]
) -> list[RuleGroupConfig]:
    """The groups in ``group_eval_order`` (those it does not name first, in file order, as
    promtool puts them at rank 0)."""
    rank = {name: index for index, name in enumerate(order)}
    return sorted(groups, key=lambda g: rank.get(g.name, 0))


def _reader(
    rule: RuleConfig, store: Callable[[], SeriesStore], subquery_step: int
) -> Callable[[int, Storage], list[Sample] | None]:
    source = rule.source
    if isinstance(source, PrometheusQuery):
        query = Query(source.query, subquery_step=subquery_step)

        def read(at: int, storage: Storage) -> list[Sample] | None:
            return _samples(as_vector(query.evaluate(at, storage), at))

        return read
    selector: Selector = source.selector

    def select(at: int, storage: Storage) -> list[Sample] | None:
        return store().select(selector, at / 1000)

    return select


def _samples(vector: Vector) -> list[Sample]:
    """A vector as a rule reads it: labels without the metric name."""
    return [
        Sample(tuple(pair for pair in one.labels if pair[0] != NAME), one.value) for one in vector
    ]
