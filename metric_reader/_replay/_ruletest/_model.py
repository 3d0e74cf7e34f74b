"""What a rule-test file says, once read (``_file``): frozen values the runner replays, each
part with the line it was written at, for the messages of a test that fails.

Named tuples, not frozen dataclasses: as immutable, and defining one costs a tenth of
defining a frozen dataclass, which every ``metric-reader test`` does for each of these
before it reads its file."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple

from ._series_desc import SeriesValue, Stale

ActionKind = Literal[
    "fire", "repeat", "resolve", "storm", "unverified", "gave_up", "approval_request"
]
CallOutcome = Literal["executed", "failed", "suppressed", "shadow"]
"""What became of a call (the action history's outcomes a replay has: its calls take no
time, so none times out)."""


class InputSeries(NamedTuple):
    labels: Mapping[str, str]
    """``__name__`` included."""
    values: tuple[SeriesValue, ...]
    """One per step of the group's interval, from time 0: None is a missing sample."""
    line: int

    def samples(self, interval: float) -> list[tuple[float, float | Stale]]:
        """(time in seconds from 0, value) of each step that has a sample."""
        return [
            (step * interval, value) for step, value in enumerate(self.values) if value is not None
        ]


class ExpAlert(NamedTuple):
    labels: Mapping[str, str]
    """As written: promtool adds ``alertname`` (the test's) before comparing."""
    annotations: Mapping[str, str]
    line: int


class AlertRuleTest(NamedTuple):
    eval_time: float
    alertname: str
    exp_alerts: tuple[ExpAlert, ...]
    """The complete set of the alerts of that name firing at ``eval_time``."""
    line: int


class ExpSample(NamedTuple):
    labels: Mapping[str, str]
    """``__name__`` included when the expected series has one."""
    value: float
    line: int


class PromqlExprTest(NamedTuple):
    expr: str
    eval_time: float
    exp_samples: tuple[ExpSample, ...]
    line: int


class ExpAction(NamedTuple):
    """One plugin call expected; a field left out (None) is not compared."""

    plugin: str
    kind: ActionKind
    labels: Mapping[str, str]
    value: float | None
    annotations: Mapping[str, str] | None
    at: float | None
    """Seconds from 0 when the call was made."""
    rule: str | None
    failed: bool
    """The call failed (as ``plugin_failures`` scripts it)."""
    line: int
    outcome: CallOutcome | None = None
    """None: a call made (``executed``, or ``failed`` by ``failed``), as before outcomes;
    given, what became of it (a file giving it anywhere lists every call the governor held
    back or shadowed as well)."""
    reason: str | None = None
    """For ``suppressed``: budget, breaker, storm, muted, silenced or paused (None: not
    compared)."""


class RuleName(NamedTuple):
    """A name in an ``action_test``'s ``rules``: a rule's, or an alert's (then every rule of
    the rule files alerting under it)."""

    name: str
    place: str
    """``FILE:LINE:COL`` of the name, for the message when no rule has it."""


class ActionTest(NamedTuple):
    eval_time: float
    exp_actions: tuple[ExpAction, ...]
    """Every plugin call of the rules in scope made up to ``eval_time`` (inclusive), in the
    order made."""
    rules: tuple[RuleName, ...] | None
    """The rules whose calls are compared; None: every rule's."""
    line: int


class ScriptedFailure(NamedTuple):
    """Calls of ``plugin`` that fail: its first ``times`` calls, or those made at a time in
    [``start``, ``end``) (``end`` None: to the end of the test)."""

    plugin: str
    times: int | None
    start: float | None
    end: float | None
    error: str
    line: int

    def fails(self, call_number: int, at: float) -> bool:
        """Whether the plugin's ``call_number``-th call (from 1), made at ``at``, fails."""
        if self.times is not None:
            return call_number <= self.times
        assert self.start is not None
        return self.start <= at and (self.end is None or at < self.end)


class ScriptedApproval(NamedTuple):
    """``approve_at`` in ``plugin_failures``: the approval requests (``mode = "approve"``)
    pending at ``at``, of ``rule`` (None: every rule) and series with ``labels`` (a
    subset), are approved then, as ``metric-reader approve ID`` would."""

    at: float
    rule: str | None
    labels: Mapping[str, str]
    line: int

    def approves(self, rule: str, series: Mapping[str, str]) -> bool:
        return (self.rule is None or self.rule == rule) and all(
            series.get(name) == value for name, value in self.labels.items()
        )


class RuleTestGroup(NamedTuple):
    name: str
    interval: float
    """Seconds between the steps of the input series (the file's evaluation interval
    unless given)."""
    input_series: tuple[InputSeries, ...]
    alert_rule_tests: tuple[AlertRuleTest, ...]
    promql_expr_tests: tuple[PromqlExprTest, ...]
    action_tests: tuple[ActionTest, ...]
    plugin_failures: tuple[ScriptedFailure, ...]
    external_labels: Mapping[str, str]
    external_url: str
    line: int
    approvals: tuple[ScriptedApproval, ...] = ()
    """``approve_at`` entries of ``plugin_failures``."""

    def max_eval_time(self) -> float:
        """The latest ``eval_time`` of the group's tests: how long to run it for."""
        tests: list[AlertRuleTest | PromqlExprTest | ActionTest] = [
            *self.alert_rule_tests,
            *self.promql_expr_tests,
            *self.action_tests,
        ]
        return max((test.eval_time for test in tests), default=0.0)


class RuleTestFile(NamedTuple):
    path: Path
    rule_files: tuple[Path, ...]
    """The files the ``rule_files`` patterns match (relative to the test file), in order."""
    config_file: Path | None
    """A metric-reader TOML configuration (relative to the test file)."""
    evaluation_interval: float
    group_eval_order: tuple[str, ...]
    tests: tuple[RuleTestGroup, ...]
    warnings: tuple[str, ...]
