"""``metric-reader test FILE...``: rule unit tests, in promtool's test-file format.

Each test group is evaluated in process as promtool evaluates it (``_evaluation``: the
input series in memory, PromQL evaluated as Prometheus 2.42 does, recording rules written
back, ``ALERTS``), every alert and rule replayed by the engine's replay (the service's own
steps), and what they did is compared with the test's ``alert_rule_test``,
``promql_expr_test`` and ``action_test``.

What a group costs is bounded before it runs: its rules' evaluations, each counted once
per input series (what a rule tracks at most), are at most ``MAX_SERIES_EVALUATIONS``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..._config import (
    RuleConfig,
    Settings,
    format_prometheus_duration,
    go_quoted,
    load_settings,
    with_external,
)
from ..._core import ConfigError, MetricReaderError, format_duration, record_replace
from ..._core._gotemplate import format_float, quote
from ._file import read_rule_test_file
from ._model import (
    ActionTest,
    AlertRuleTest,
    ExpAction,
    PromqlExprTest,
    RuleTestFile,
    RuleTestGroup,
)

if TYPE_CHECKING:  # imported where used: a file refused as it is read never loads them
    from ..._engine import ReplayedCall, Replayer, State, Step
    from ..._promql import Storage

PLACEHOLDER_ENDPOINT = "http://127.0.0.1:9"
"""Where a rule without a Prometheus would read: never asked, a test reads its own data."""
MAX_SERIES_EVALUATIONS = 2_000_000
"""A test group's rules' evaluations (from 0 to its latest ``eval_time``, at each rule's
interval) times its input series, at most: what the replay records (the state of each
series at each evaluation, about 100 bytes) stays within 200 MB, its time within half a
minute."""


class GroupOutcome:
    """A test group's name and the failures of its tests (a plain class: cheaper to define
    than a dataclass, at every ``metric-reader test``)."""

    __slots__ = ("failures", "name")

    def __init__(self, name: str, failures: list[str] | None = None) -> None:
        self.name = name
        self.failures = [] if failures is None else failures


def run_test_file(path: Path) -> tuple[list[str], list[GroupOutcome]]:
    """The file's warnings and the outcome of each test group; a file that could not be run
    has one outcome, unnamed, holding its problems."""
    try:
        test_file = read_rule_test_file(path)
        settings = _settings(test_file)
        rules_of = _rules_by_name(settings)
        _check_rule_names(test_file, rules_of)
    except ConfigError as exc:
        return [], [GroupOutcome("", str(exc).splitlines())]
    outcomes = []
    for group in test_file.tests:
        outcome = GroupOutcome(group.name)
        try:
            _run_group(test_file, _for_group(settings, group), rules_of, group, outcome)
        except MetricReaderError as exc:
            outcome.failures.append(_group_prefix(group) + str(exc))
        outcomes.append(outcome)
    return list(test_file.warnings), outcomes


def _settings(test_file: RuleTestFile) -> Settings:
    """The rules to test: a ``config_file``'s as the service would run them (its own
    intervals), and the ``rule_files``' alerts at ``evaluation_interval`` unless their
    group says otherwise (as promtool). Nothing of the environment is read: the service's
    own settings (``METRIC_NAME``, ``LOG_LEVEL``...) neither change a test nor fail it. A
    file with neither (or whose patterns match nothing) tests no rule, as promtool's: its
    ``promql_expr_test`` still run."""
    env: dict[str, str] = {}
    if test_file.config_file is not None:
        env["CONFIG_FILE"] = str(test_file.config_file)
    else:
        env["PROMETHEUS_ENDPOINT"] = PLACEHOLDER_ENDPOINT
        env["POLLING_INTERVAL"] = format_duration(test_file.evaluation_interval)
    if test_file.rule_files:
        env["RULE_FILES"] = ",".join(str(path.resolve()) for path in test_file.rule_files)
    return load_settings(env, rules="RULE_FILES" in env or "CONFIG_FILE" in env)


def _for_group(settings: Settings, group: RuleTestGroup) -> Settings:
    """The rules with the group's ``external_labels`` and ``external_url`` where it gives
    them (else the ``config_file``'s), as promtool loads each group's rules with its own:
    in the templates only, not added to the alerts' labels (Prometheus' notifier adds
    them, and a plugin finds them in its events)."""
    labels = group.external_labels or settings.external_labels
    url = group.external_url or settings.external_url
    if labels == settings.external_labels and url == settings.external_url:
        return settings
    return record_replace(
        settings,
        rules=tuple(with_external(rule, labels, url) for rule in settings.rules),
        external_labels=labels,
        external_url=url,
    )


def _rules_by_name(settings: Settings) -> dict[str, frozenset[str]]:
    """The names an ``action_test``'s ``rules`` may give, in the configuration's order: each
    rule's, and each alert's, to the names of the rules they stand for."""
    rules_of: dict[str, frozenset[str]] = {}
    for rule in settings.rules:
        rules_of[rule.name] = rules_of.get(rule.name, frozenset()) | {rule.name}
        if rule.alert is not None:
            alert = rule.alert.name
            rules_of[alert] = rules_of.get(alert, frozenset()) | {rule.name}
    return rules_of


def _check_rule_names(test_file: RuleTestFile, rules_of: Mapping[str, frozenset[str]]) -> None:
    """``ConfigError`` for every name in an ``action_test``'s ``rules`` that is neither a
    rule's nor an alert's, each one line that says which names there are."""
    problems = [
        f"{given.place}: {_group_prefix(group)}rules: no rule or alert is named "
        f"{go_quoted(given.name)} (known: {', '.join(rules_of)})"
        for group in test_file.tests
        for test in group.action_tests
        for given in test.rules or ()
        if given.name not in rules_of
    ]
    if problems:
        raise ConfigError(*problems)


def _group_prefix(group: RuleTestGroup) -> str:
    """What begins a message about a test group's content, as the file's reader writes it."""
    return f"test group {go_quoted(group.name)}: " if group.name else ""


def _run_group(
    test_file: RuleTestFile,
    settings: Settings,
    rules_of: Mapping[str, frozenset[str]],
    group: RuleTestGroup,
    outcome: GroupOutcome,
) -> None:
    end = group.max_eval_time()
    _check_size(settings, group, end)
    from ._evaluation import evaluate_group

    run = evaluate_group(
        settings,
        group,
        test_file.evaluation_interval,
        test_file.group_eval_order,
        _replayer_maker(settings, group),
        from_config_file=test_file.config_file is not None,
    )
    if run.failure is not None:
        outcome.failures.append(_rule_error(*run.failure))
        return
    for test in group.alert_rule_tests:
        outcome.failures += _check_alerts(test, run.replayers)
    step = round(test_file.evaluation_interval * 1000)
    for expr_test in group.promql_expr_tests:
        outcome.failures += _check_expression(expr_test, run.storage, step)
    governed = any(
        exp.outcome is not None for test in group.action_tests for exp in test.exp_actions
    )
    calls = _calls(run.replayers, governed)
    for action_test in group.action_tests:
        outcome.failures += _check_actions(action_test, calls, rules_of)


def _check_size(settings: Settings, group: RuleTestGroup, end: float) -> None:
    """``ConfigError`` when the group would cost more than ``MAX_SERIES_EVALUATIONS``."""
    series = max(1, len(group.input_series))
    evaluations = {
        rule.name: _evaluation_count(end, rule.polling_interval) for rule in settings.rules
    }
    if sum(evaluations.values()) * series <= MAX_SERIES_EVALUATIONS:
        return
    name, most = max(evaluations.items(), key=lambda item: item[1])
    raise ConfigError(
        f"{sum(evaluations.values()):,} evaluations up to eval_time "
        f"{format_prometheus_duration(end)} ({most:,} of rule {name!r}) for "
        f"{len(group.input_series)} input series: a test group may hold at most "
        f"{MAX_SERIES_EVALUATIONS:,} evaluations times input series"
    )


def _evaluation_count(end: float, interval: float) -> int:
    """Evaluations at multiples of ``interval`` from 0 to ``end``, both included."""
    return math.floor(end / interval) + 1 if interval > 0 else 1


def _replayer_maker(settings: Settings, group: RuleTestGroup) -> Callable[[RuleConfig], Replayer]:
    """Replayers whose plugin calls succeed unless ``plugin_failures`` says they fail, the
    calls of every rule counted together, in the order they are made; the group's rules
    share one governor configured from the settings, as the service's (budgets count the
    calls of every rule)."""
    from ..._engine import Governor, Observation, Replayer, Rule

    counts: dict[str, int] = {}
    governor = Governor(quiet=True)
    rules: list[Rule] = []

    def succeeds(plugin: str | None, at: float) -> bool:
        if plugin is None:
            return True
        counts[plugin] = counts.get(plugin, 0) + 1
        return not any(
            failure.plugin == plugin and failure.fails(counts[plugin], at)
            for failure in group.plugin_failures
        )

    approvals = sorted(group.approvals, key=lambda a: a.at)

    class Approving(Replayer):
        """Approves the requests ``approve_at`` says before the evaluation it falls on."""

        def step(self, read: Observation) -> None:
            while approvals and approvals[0].at <= read.at:
                scripted = approvals.pop(0)
                for request in governor.approvals:
                    if request.state == "pending" and scripted.approves(
                        request.rule, dict(request.series)
                    ):
                        governor.approvals.decide(request.id, True, scripted.at, "approve_at")
            super().step(read)

    def make(rule: RuleConfig) -> Replayer:
        replayer = Approving(rule, settings.routes, succeeds, governor)
        rules.append(replayer.rule)
        governor.configure(
            settings.limits,
            settings.plugin_guards,
            rules,
            settings.time_intervals,
            settings.inhibit_rules,
        )
        return replayer

    return make


# --- alert_rule_test -----------------------------------------------------------------------

_Labels = tuple[tuple[str, str], ...]
"""A label set as Prometheus' ``labels.Labels``: sorted by name, so that tuples compare as
``labels.Compare`` does."""


class UnderGroupName(str):
    """A failure that promtool prints under its test group's name (``    name: NAME,``), when
    the group has one: an ``alert_rule_test``'s, and so an ``action_test``'s."""

    __slots__ = ()


def _check_alerts(test: AlertRuleTest, replayers: Sequence[Replayer]) -> list[str]:
    from ..._engine import State

    got = []
    for replayer in replayers:
        rule = replayer.rule
        config = rule.config
        name = config.alert.name if config.alert is not None else config.name
        if name != test.alertname:
            continue
        for labels, history in replayer.result.series.items():
            state, value = _state_at(history.steps, test.eval_time)
            if state is State.FIRING:
                alert = rule.alert_labels(labels, "base", value)
                notes = rule.annotations(labels, value)
                got.append((_label_set(alert), _label_set(notes)))
    expected = [
        (_label_set({**e.labels, "alertname": test.alertname}), _label_set(e.annotations))
        for e in test.exp_alerts
    ]
    if sorted(got) == sorted(expected):
        return []
    return [
        UnderGroupName(
            f"    alertname: {test.alertname}, "
            f"time: {format_prometheus_duration(test.eval_time)}, \n"
            f"        exp:{_alert_list(sorted(expected))}, \n"
            f"        got:{_alert_list(sorted(got))}"
        )
    ]


def _state_at(steps: Sequence[Step], at: float) -> tuple[State, float]:
    from ..._engine import State

    state, value = State.OK, math.nan
    for step in steps:
        if step.at > at:
            break
        state = step.base
        if step.value is not None:
            value = step.value
    return state, value


def _label_set(labels: Mapping[str, str]) -> _Labels:
    return tuple(sorted(labels.items()))


def _text_labels(labels: Mapping[str, str] | _Labels) -> str:
    """Prometheus' ``labels.Labels.String()``: ``{a="1", b="2"}``, sorted by name."""
    items = labels.items() if isinstance(labels, Mapping) else labels
    inner = ", ".join(f"{name}={quote(value)}" for name, value in sorted(items))
    return "{" + inner + "}"


def _alert_list(alerts: Sequence[tuple[_Labels, _Labels]]) -> str:
    """promtool's ``labelsAndAnnotations.String()``, indented as it prints it."""
    if not alerts:
        return "[]"
    rows = ",".join(
        f"\n            {index}:\n              Labels:{_text_labels(labels)}"
        f"\n              Annotations:{_text_labels(notes)}"
        for index, (labels, notes) in enumerate(alerts)
    )
    return "[" + rows + "\n            ]"


def _rule_error(rule: str, at: float, error: str) -> str:
    """promtool's line for a rule whose evaluation failed (which ends the test group)."""
    return f"    rule: {rule}, time: {go_duration(at)}, err: {error}"


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5s``, ``1m0s``, ``26h3m0s``, ``10ms``."""
    ns = round(seconds * 1e9)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000_000_000:
        for unit, size in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if ns < size * 1000:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{hours}h" if hours else ""
    text += f"{minutes}m" if hours or minutes else ""
    return sign + text + _decimal(rest, 1_000_000_000) + "s"


def _decimal(count: int, size: int) -> str:
    """``count / size`` written exactly, without trailing zeros (``1500, 1000`` → ``1.5``)."""
    whole, part = divmod(count, size)
    if not part:
        return str(whole)
    digits = len(str(size)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0")


# --- promql_expr_test ----------------------------------------------------------------------


def _check_expression(test: PromqlExprTest, storage: Storage, step: int) -> list[str]:
    from ..._promql import EvaluationError, Query
    from ._evaluation import as_vector

    at = round(test.eval_time * 1000)
    try:
        vector = as_vector(Query(test.expr, subquery_step=step).evaluate(at, storage), at)
    except EvaluationError as exc:
        return [_expression_error(test, str(exc))]
    got = sorted((_label_set(dict(one.labels)), one.value) for one in vector)
    expected = sorted((_label_set(s.labels), s.value) for s in test.exp_samples)
    if len(got) == len(expected) and all(
        g[0] == e[0] and _same_value(g[1], e[1]) for g, e in zip(got, expected, strict=True)
    ):
        return []
    return [
        f"    expr: {quote(test.expr)}, time: {format_prometheus_duration(test.eval_time)},\n"
        f"        exp: {_samples_text(expected)}\n"
        f"        got: {_samples_text(got)}"
    ]


def _expression_error(test: PromqlExprTest, error: str) -> str:
    """promtool's line for an expression that could not be evaluated."""
    return (
        f"    expr: {quote(test.expr)}, time: {format_prometheus_duration(test.eval_time)}, "
        f"err: {error}"
    )


def _samples_text(samples: Sequence[tuple[_Labels, float]]) -> str:
    """promtool's ``parsedSamplesString``: ``{a="1"} 1.5E+00, ...``, ``nil`` for none."""
    if not samples:
        return "nil"
    return ", ".join(f"{_text_labels(labels)} {_go_e_float(value)}" for labels, value in samples)


def _go_e_float(value: float) -> str:
    """``strconv.FormatFloat(value, 'E', -1, 64)``: ``1.5E+00``, ``NaN``, ``+Inf``."""
    text = format_float(value, "e")
    return text.upper() if math.isfinite(value) else text


def _same_value(got: float, expected: float) -> bool:
    """An expression test's value: exactly the one expected, as promtool compares them; a
    NaN expected is matched by a NaN (promtool 2.42 never matches it: NaN != NaN)."""
    return got == expected or (math.isnan(got) and math.isnan(expected))


def _same_number(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --- action_test ---------------------------------------------------------------------------


class _Call(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    at: float
    plugin: str
    kind: str
    rule: str
    labels: Mapping[str, str]
    value: float
    annotations: Mapping[str, str]
    failed: bool
    outcome: str = "executed"
    """``executed``, ``failed``, ``shadow`` or ``suppressed``."""
    reason: str = ""
    detail: str = ""

    def text(self) -> str:
        outcome = ", failed" if self.failed else ""
        if self.outcome == "shadow":
            outcome = ", shadow"
        elif self.outcome == "suppressed":
            outcome = f", suppressed ({self.reason}: {self.detail})"
        return (
            f"at {format_prometheus_duration(self.at)}: {self.kind} by {self.plugin}, "
            f"rule {self.rule}, labels {_text_labels(self.labels)}, value {self.value:g}{outcome}"
        )


def _calls(replayers: Sequence[Replayer], governed: bool = False) -> list[_Call]:
    """The plugin calls made; ``governed`` (a test of the file gives an ``outcome``): those
    shadowed and those the governor held back (once per call and reason) as well."""
    calls = [
        _as_call(replayer.rule.name, call)
        for replayer in replayers
        for call in replayer.result.calls
        if call.plugin is not None and (governed or call.outcome != "shadow")
    ]
    if governed:
        calls += [
            _Call(
                entry.at,
                entry.plugin,
                entry.kind,
                entry.rule,
                dict(entry.series) if entry.kind != "storm" else {"alertname": entry.rule},
                entry.value,
                dict(entry.annotations),
                False,
                "suppressed",
                entry.reason,
                entry.detail,
            )
            for replayer in replayers
            for entry in replayer.result.history
            if entry.outcome == "suppressed" and entry.plugin
        ]
    calls.sort(key=lambda c: (c.at, c.plugin, c.rule, sorted(c.labels.items())))
    return calls


def _as_call(rule: str, call: ReplayedCall) -> _Call:
    event = call.event
    assert call.plugin is not None
    return _Call(
        call.at,
        call.plugin,
        event.kind,
        rule,
        dict(event.labels),
        event.value,
        dict(event.annotations),
        not call.ok,
        "shadow" if call.outcome == "shadow" else "executed" if call.ok else "failed",
    )


def _check_actions(
    test: ActionTest, calls: Sequence[_Call], rules_of: Mapping[str, frozenset[str]]
) -> list[str]:
    scope = None
    if test.rules is not None:
        scope = frozenset().union(*(rules_of[given.name] for given in test.rules))
    made = [
        call
        for call in calls
        if call.at <= test.eval_time and (scope is None or call.rule in scope)
    ]
    expected = test.exp_actions
    differs = _first_difference(expected, made)
    if differs is None:
        return []
    exp_rows = "".join(
        _row(index, _expected_text(exp), index == differs) for index, exp in enumerate(expected)
    )
    got_rows = "".join(
        _row(index, call.text(), index == differs) for index, call in enumerate(made)
    )
    rules = "" if test.rules is None else f" of {', '.join(r.name for r in test.rules)}"
    return [
        UnderGroupName(
            f"    action_test{rules} at {format_prometheus_duration(test.eval_time)} "
            f"(line {test.line}), \n"
            f"        exp:[{exp_rows}\n            ], \n"
            f"        got:[{got_rows}\n            ]"
        )
    ]


def _first_difference(expected: Sequence[ExpAction], made: Sequence[_Call]) -> int | None:
    """The index of the first expected call that was not made as expected (the first extra
    call when all expected ones were); None when the calls are those expected."""
    for index, (exp, call) in enumerate(zip(expected, made, strict=False)):
        if not _matches(exp, call):
            return index
    if len(expected) == len(made):
        return None
    return min(len(expected), len(made))


def _row(index: int, text: str, marked: bool) -> str:
    """One entry of an exp or got list; the first that differs is marked ``>``."""
    return f"\n          {'>' if marked else ' '} {index}: {text}"


def _matches(exp: ExpAction, call: _Call) -> bool:
    if exp.outcome is None:  # a call made, as before outcomes
        outcome_matches = call.outcome in ("executed", "failed") and exp.failed == call.failed
    else:
        outcome_matches = exp.outcome == call.outcome and (
            exp.reason is None or exp.reason == call.reason
        )
    return (
        exp.plugin == call.plugin
        and exp.kind == call.kind
        and dict(exp.labels) == dict(call.labels)
        and outcome_matches
        and (exp.at is None or _same_number(exp.at, call.at))
        and (exp.rule is None or exp.rule == call.rule)
        and (exp.value is None or _same_number(exp.value, call.value))
        and (exp.annotations is None or dict(exp.annotations) == dict(call.annotations))
    )


def _expected_text(exp: ExpAction) -> str:
    parts = []
    if exp.at is not None:
        parts.append(f"at {format_prometheus_duration(exp.at)}:")
    parts.append(f"{exp.kind} by {exp.plugin},")
    if exp.rule is not None:
        parts.append(f"rule {exp.rule},")
    parts.append(f"labels {_text_labels(exp.labels)}")
    if exp.value is not None:
        parts[-1] += ","
        parts.append(f"value {exp.value:g}")
    if exp.outcome in ("shadow", "suppressed"):
        parts[-1] += f", {exp.outcome}"
        if exp.reason is not None:
            parts[-1] += f" ({exp.reason})"
    elif exp.failed:
        parts[-1] += ", failed"
    return " ".join(parts)
