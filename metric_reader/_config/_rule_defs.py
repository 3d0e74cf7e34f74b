"""Prometheus rule files, read: groups of alerting and recording rules as frozen values that
remember their file and line.

Named tuples, not frozen dataclasses: as immutable, and ten times cheaper to define, which
``check`` and ``test`` do at every start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import NamedTuple

TemplateCheck = Callable[[str], "str | None"]
"""Checks one label or annotation template of an alerting rule: the problem, or None."""


class AlertRuleDef(NamedTuple):
    """An alerting rule (``alert:``). ``labels`` are the rule's own: the group's apply under
    them (``RuleGroupDef.labels_of``). Label values and annotations are templates, as written."""

    name: str
    expr: str
    for_: float
    """Seconds the condition must hold before the alert fires; 0: at once."""
    keep_firing_for: float
    """Seconds the alert keeps firing after the condition is gone; 0: none."""
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    file: Path
    line: int
    """Where the rule's ``alert:`` name is."""
    group: str


class RecordingRuleDef(NamedTuple):
    """A recording rule (``record:``), checked as Prometheus 2.42 checks it: ``name`` is a
    metric name. ``labels`` are the rule's own, as written (not templates: Prometheus sets
    them as they are)."""

    name: str
    expr: str
    file: Path
    line: int
    """Where the rule's ``record:`` name is."""
    group: str
    labels: Mapping[str, str]


class RuleGroupDef(NamedTuple):
    name: str
    file: Path
    interval: float | None
    """Seconds between evaluations; None: the default (also for ``interval: 0``, as in
    Prometheus)."""
    limit: int
    """Most alerts each alerting rule of the group may have at once: in Prometheus a rule
    that would have more fails that evaluation and drops its alerts. 0: no limit (a
    negative limit is 0, as in Prometheus)."""
    labels: Mapping[str, str]
    """Added to every rule of the group; a rule's own labels win (Prometheus 3.0)."""
    rules: tuple[AlertRuleDef | RecordingRuleDef, ...]
    """Alerting and recording rules in the order of the file: Prometheus evaluates them in
    that order, a recording rule's output visible to the rules after it."""
    query_offset: float | None = None
    """Seconds to evaluate in the past (Prometheus 2.53); None: the default."""

    @property
    def alerts(self) -> tuple[AlertRuleDef, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, AlertRuleDef))

    @property
    def recording(self) -> tuple[RecordingRuleDef, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, RecordingRuleDef))

    def labels_of(self, alert: AlertRuleDef) -> dict[str, str]:
        """The labels ``alert`` gets: the group's, then its own over them."""
        return {**self.labels, **alert.labels}
