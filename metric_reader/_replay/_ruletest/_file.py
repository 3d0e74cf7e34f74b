"""Rule unit-test files (``metric-reader test FILE...``): promtool's test-file format, plus
metric-reader's ``config_file``, ``action_test`` and ``plugin_failures``. The format is
described in docs/rule-tests.md.

A file is read whole: every problem is one line, ``FILE:LINE:COL: message``, and all of
them are reported together (``ConfigError``), unknown keys with the known key they are a
slip of. What promtool only warns about (a ``rule_files`` pattern that matches nothing, a
series given twice) is kept in ``RuleTestFile.warnings``.

This module reads; what a file is read into is ``_model``'s, exported from here too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..._config import (
    BadGlobPattern,
    RuleFileReader,
    YamlSyntaxError,
    compose_yaml,
    glob_escape,
    go_glob,
    go_join,
    go_quoted,
    yaml_is_null,
    yaml_kind,
    yaml_place,
    yaml_scalar_text,
)
from ..._core import ConfigError
from ._model import (
    ActionKind,
    ActionTest,
    AlertRuleTest,
    CallOutcome,
    ExpAction,
    ExpAlert,
    ExpSample,
    InputSeries,
    PromqlExprTest,
    RuleName,
    RuleTestFile,
    RuleTestGroup,
    ScriptedApproval,
    ScriptedFailure,
)
from ._series_desc import (
    MAX_VALUES,
    STALE,
    SeriesDescError,
    SeriesValue,
    Stale,
    parse_series_description,
)

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = [
    "STALE",
    "ActionKind",
    "ActionTest",
    "AlertRuleTest",
    "ExpAction",
    "ExpAlert",
    "ExpSample",
    "InputSeries",
    "PromqlExprTest",
    "RuleName",
    "RuleTestFile",
    "RuleTestGroup",
    "ScriptedApproval",
    "ScriptedFailure",
    "SeriesValue",
    "Stale",
    "read_rule_test_file",
]

DEFAULT_EVALUATION_INTERVAL = 60.0
"""promtool's: one minute."""
SCRIPTED_FAILURE = "scripted failure (plugin_failures)"

_FILE_KEYS = ("rule_files", "config_file", "evaluation_interval", "group_eval_order", "tests")
_GROUP_KEYS = (
    "name",
    "interval",
    "input_series",
    "alert_rule_test",
    "promql_expr_test",
    "external_labels",
    "external_url",
    "action_test",
    "plugin_failures",
)
_SERIES_KEYS = ("series", "values")
_ALERT_TEST_KEYS = ("eval_time", "alertname", "exp_alerts")
_EXP_ALERT_KEYS = ("exp_labels", "exp_annotations")
_EXPR_TEST_KEYS = ("expr", "eval_time", "exp_samples")
_EXP_SAMPLE_KEYS = ("labels", "value")
_ACTION_TEST_KEYS = ("eval_time", "rules", "exp_actions")
_EXP_ACTION_KEYS = (
    "at",
    "plugin",
    "kind",
    "rule",
    "labels",
    "value",
    "annotations",
    "failed",
    "outcome",
    "reason",
)
_FAILURE_KEYS = ("plugin", "times", "from", "until", "error", "approve_at", "rule", "labels")

_KINDS: tuple[ActionKind, ...] = (
    "fire",
    "repeat",
    "resolve",
    "storm",
    "unverified",
    "gave_up",
    "approval_request",
)
_OUTCOMES: tuple[CallOutcome, ...] = ("executed", "failed", "suppressed", "shadow")
_REASONS = ("budget", "breaker", "storm", "muted", "silenced", "paused", "inhibited", "approval")
_SPECIAL_NUMBERS = {
    # YAML's spellings (yaml.v2 decodes them into a float64) and Prometheus'.
    ".nan": math.nan,
    ".inf": math.inf,
    "+.inf": math.inf,
    "-.inf": -math.inf,
    "nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
}
_NODES = dict[str, tuple["Node", "Node"]]


def read_rule_test_file(path: Path) -> RuleTestFile:
    """The test file at ``path``; ``ConfigError`` naming every problem in it."""
    reader = _TestFileReader(path)
    result = reader.read_file()
    if reader.problems or result is None:
        raise ConfigError(*reader.problems)
    return result


class _TestFileReader(RuleFileReader):
    def __init__(self, path: Path) -> None:
        super().__init__(path, None)
        self.warnings: list[str] = []

    def warn(self, node: Node, message: str) -> None:
        line, column = yaml_place(node)
        self.warnings.append(f"{self.path}:{line}:{column}: {message}")

    def read_file(self) -> RuleTestFile | None:
        text = self._text()
        if text is None:
            return None
        try:
            root = compose_yaml(text)
        except YamlSyntaxError as exc:
            self.problems.append(f"{self.path}:{exc.line}:{exc.column}: {exc.message}")
            return None
        top = self._fields(root, "a test file", _FILE_KEYS)
        if top is None:
            return None
        rule_files = self._rule_files(top)
        config_file = self._config_file(top)
        interval = self._duration(top, "evaluation_interval", "") or DEFAULT_EVALUATION_INTERVAL
        order = self._group_eval_order(top)
        groups = [self._test_group(node, interval) for node in self._list(top, "tests", "tests")]
        return RuleTestFile(
            path=self.path,
            rule_files=tuple(rule_files),
            config_file=config_file,
            evaluation_interval=interval,
            group_eval_order=tuple(order),
            tests=tuple(group for group in groups if group is not None),
            warnings=tuple(self.warnings),
        )

    # --- helpers -------------------------------------------------------------------------

    def _list(self, fields: _NODES, key: str, what: str) -> list[Node]:
        """A list's items; [] when absent or null, or (noted) not a list."""
        from yaml.nodes import SequenceNode

        node = fields.get(key, (None, None))[1]
        if node is None or yaml_is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.report(node, f"{what}: expected a list, got {yaml_kind(node)}")
            return []
        return list(node.value)

    def _node(self, fields: _NODES, key: str) -> Node | None:
        node = fields.get(key, (None, None))[1]
        return None if node is None or yaml_is_null(node) else node

    def _eval_time(self, fields: _NODES, prefix: str) -> float:
        return self._duration(fields, "eval_time", prefix) or 0.0

    def _number(self, node: Node, what: str) -> float | None:
        """A float64 as yaml.v2 decodes one, or as Prometheus writes one (``NaN``, ``+Inf``)."""
        from yaml.nodes import ScalarNode

        text = str(node.value).strip() if isinstance(node, ScalarNode) else None
        if text is not None and text.lower() in _SPECIAL_NUMBERS:
            return _SPECIAL_NUMBERS[text.lower()]
        try:
            if text and "inf" not in text.lower() and "nan" not in text.lower():
                return float(text)
        except ValueError:
            pass
        self.report(node, f"{what}: expected a number, got {yaml_kind(node)}")
        return None

    def _whole(self, node: Node, what: str) -> int | None:
        from yaml.nodes import ScalarNode

        text = str(node.value) if isinstance(node, ScalarNode) and not node.style else ""
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            self.report(node, f"{what}: expected a whole number from 1, got {yaml_kind(node)}")
            return None
        return int(text)

    # --- the file ------------------------------------------------------------------------

    def _rule_files(self, top: _NODES) -> list[Path]:
        """The files of the patterns, as promtool globs them: relative to the test file, in
        the order given; a pattern that matches nothing is a warning."""
        base = glob_escape(str(self.path.parent))
        found: list[Path] = []
        for node in self._list(top, "rule_files", "rule_files"):
            pattern = yaml_scalar_text(node, self.report, "rule_files")
            if not pattern:
                continue
            full = pattern if os.path.isabs(pattern) else go_join(base, pattern)
            try:
                matches = go_glob(full)
            except BadGlobPattern as exc:
                self.report(node, f"rule_files: {go_quoted(pattern)}: {exc}")
                continue
            if not matches:
                self.warn(node, f"rule_files: no file matches pattern {go_quoted(pattern)}")
            found.extend(Path(match) for match in matches)
        return found

    def _config_file(self, top: _NODES) -> Path | None:
        node = self._node(top, "config_file")
        if node is None:
            return None
        text = yaml_scalar_text(node, self.report, "config_file")
        if not text:
            return None
        path = Path(text) if os.path.isabs(text) else self.path.parent / text
        if not path.is_file():
            self.report(node, f"config_file: {go_quoted(text)} is not a file")
            return None
        return path

    def _group_eval_order(self, top: _NODES) -> list[str]:
        order: list[str] = []
        for node in self._list(top, "group_eval_order", "group_eval_order"):
            name = yaml_scalar_text(node, self.report, "group_eval_order")
            if name is None:
                continue
            if name in order:
                self.report(node, f"group name repeated in evaluation order: {name}")
            order.append(name)
        return order

    # --- a test group --------------------------------------------------------------------

    def _test_group(self, node: Node, evaluation_interval: float) -> RuleTestGroup | None:
        fields = self._fields(node, "a test group", _GROUP_KEYS)
        if fields is None:
            return None
        name = self._text_of(fields, "name", "name")
        prefix = f"test group {go_quoted(name)}: " if name else ""
        interval = self._duration(fields, "interval", prefix) or evaluation_interval
        series = self._input_series(fields, prefix)
        values = sum(len(one.values) for one in series)
        if values > MAX_VALUES:
            self.report(
                fields["input_series"][1],
                f"{prefix}input_series: {values:,} values in all, more than the "
                f"{MAX_VALUES:,} one test group may hold",
            )
        external_labels = self._labels(fields, "external_labels", prefix, names_of="label")
        alert_tests = tuple(
            test
            for item in self._list(fields, "alert_rule_test", f"{prefix}alert_rule_test")
            if (test := self._alert_test(item, prefix)) is not None
        )
        expr_tests = tuple(
            expr_test
            for item in self._list(fields, "promql_expr_test", f"{prefix}promql_expr_test")
            if (expr_test := self._expr_test(item, prefix)) is not None
        )
        action_tests = tuple(
            action_test
            for item in self._list(fields, "action_test", f"{prefix}action_test")
            if (action_test := self._action_test(item, prefix)) is not None
        )
        scripted = [
            script
            for item in self._list(fields, "plugin_failures", f"{prefix}plugin_failures")
            if (script := self._plugin_failure(item, prefix)) is not None
        ]
        return RuleTestGroup(
            name=name,
            interval=interval,
            input_series=tuple(series),
            alert_rule_tests=alert_tests,
            promql_expr_tests=expr_tests,
            action_tests=action_tests,
            plugin_failures=tuple(s for s in scripted if isinstance(s, ScriptedFailure)),
            approvals=tuple(s for s in scripted if isinstance(s, ScriptedApproval)),
            external_labels={label: value for label, (value, _) in external_labels.items()},
            external_url=self._text_of(fields, "external_url", f"{prefix}external_url"),
            line=yaml_place(node)[0],
        )

    def _input_series(self, fields: _NODES, prefix: str) -> list[InputSeries]:
        by_labels: dict[tuple[tuple[str, str], ...], InputSeries] = {}
        for node in self._list(fields, "input_series", f"{prefix}input_series"):
            series = self._one_series(node, prefix)
            if series is None:
                continue
            key = tuple(sorted(series.labels.items()))
            if key in by_labels:
                self.warn(
                    node,
                    f"{prefix}series given twice (first at line {by_labels[key].line}): "
                    "the later one is used, as promtool does",
                )
                del by_labels[key]
            by_labels[key] = series
        return list(by_labels.values())

    def _one_series(self, node: Node, prefix: str) -> InputSeries | None:
        fields = self._fields(node, "an input series", _SERIES_KEYS)
        if fields is None:
            return None
        series_text = self._text_of(fields, "series", f"{prefix}series")
        values_text = self._text_of(fields, "values", f"{prefix}values")
        for key, text in (("series", series_text), ("values", values_text)):
            if "\n" in text:
                at = fields[key][1]
                self.report(at, f"{prefix}{key}: must be one line (promtool reads one per series)")
                return None
        # promtool reads the two joined; a mistake in the metric is the series' even when
        # the values would be read into it (a brace not closed).
        key, offset = "series", 0
        try:
            parse_series_description(series_text)
            key, offset = "values", len(series_text) + 1
            labels, values = parse_series_description(f"{series_text} {values_text}")
        except SeriesDescError as exc:
            at = fields[key][1] if key in fields else node
            where = max(exc.offset - offset, 0) + 1
            self.report(at, f"{prefix}{key}: at character {where}: {exc.message}")
            return None
        if "__name__" not in labels:
            at = fields["series"][1] if "series" in fields else node
            self.report(at, f"{prefix}series: {go_quoted(series_text)} has no metric name")
            return None
        return InputSeries(labels, tuple(values), yaml_place(node)[0])

    def _alert_test(self, node: Node, prefix: str) -> AlertRuleTest | None:
        fields = self._fields(node, "an alert_rule_test", _ALERT_TEST_KEYS)
        if fields is None:
            return None
        eval_time = self._eval_time(fields, prefix)
        alertname = self._text_of(fields, "alertname", f"{prefix}alertname")
        if not alertname:
            self.report(
                node,
                f"{prefix}an item under alert_rule_test misses required attribute alertname",
            )
            return None
        expected = []
        for item in self._list(fields, "exp_alerts", f"{prefix}exp_alerts"):
            alert_fields = self._fields(item, "an expected alert", _EXP_ALERT_KEYS)
            if alert_fields is None:
                continue
            labels = self._labels(alert_fields, "exp_labels", prefix, names_of="label")
            notes = self._labels(alert_fields, "exp_annotations", prefix, names_of="annotation")
            expected.append(
                ExpAlert(
                    labels={name: value for name, (value, _) in labels.items()},
                    annotations={name: value for name, (value, _) in notes.items()},
                    line=yaml_place(item)[0],
                )
            )
        return AlertRuleTest(eval_time, alertname, tuple(expected), yaml_place(node)[0])

    def _expr_test(self, node: Node, prefix: str) -> PromqlExprTest | None:
        fields = self._fields(node, "a promql_expr_test", _EXPR_TEST_KEYS)
        if fields is None:
            return None
        expr = self._text_of(fields, "expr", f"{prefix}expr")
        if not expr.strip():
            self.report(node, f"{prefix}promql_expr_test: expr must be set")
        eval_time = self._eval_time(fields, prefix)
        samples = []
        for item in self._list(fields, "exp_samples", f"{prefix}exp_samples"):
            sample_fields = self._fields(item, "an expected sample", _EXP_SAMPLE_KEYS)
            if sample_fields is None:
                continue
            labels = self._metric(sample_fields, prefix)
            value_node = self._node(sample_fields, "value")
            value = 0.0 if value_node is None else self._number(value_node, f"{prefix}value")
            if labels is not None and value is not None:
                samples.append(ExpSample(labels, value, yaml_place(item)[0]))
        return PromqlExprTest(expr, eval_time, tuple(samples), yaml_place(node)[0])

    def _metric(self, fields: _NODES, prefix: str) -> dict[str, str] | None:
        """``labels`` of an expected sample: ``name{label="value"}`` without values."""
        text = self._text_of(fields, "labels", f"{prefix}labels")
        at = self._node(fields, "labels")
        try:
            labels, values = parse_series_description(text)
        except SeriesDescError as exc:
            if at is not None:
                self.report(at, f"{prefix}labels {go_quoted(text)}: {exc}")
            return None
        if values and at is not None:
            self.report(at, f"{prefix}labels {go_quoted(text)}: labels only, no values")
            return None
        return labels

    # --- metric-reader's own -------------------------------------------------------------

    def _action_test(self, node: Node, prefix: str) -> ActionTest | None:
        fields = self._fields(node, "an action_test", _ACTION_TEST_KEYS)
        if fields is None:
            return None
        eval_time = self._eval_time(fields, prefix)
        if "exp_actions" not in fields:
            self.report(node, f"{prefix}action_test: exp_actions must be given ([] for none)")
        expected = [
            action
            for item in self._list(fields, "exp_actions", f"{prefix}exp_actions")
            if (action := self._exp_action(item, prefix)) is not None
        ]
        rules = self._rule_names(fields, prefix) if "rules" in fields else None
        return ActionTest(eval_time, tuple(expected), rules, yaml_place(node)[0])

    def _rule_names(self, fields: _NODES, prefix: str) -> tuple[RuleName, ...]:
        """``rules``: names of rules or alerts, each once (whether a rule has it is the
        runner's to say: it knows the configuration)."""
        count = len(self.problems)
        items = self._list(fields, "rules", f"{prefix}rules")
        if not items and len(self.problems) == count:
            self.report(
                fields["rules"][1],
                f"{prefix}rules: name at least one rule or alert (leave rules out for all)",
            )
        names: list[RuleName] = []
        for item in items:
            name = yaml_scalar_text(item, self.report, f"{prefix}rules")
            if name == "":
                self.report(item, f"{prefix}rules: a name must not be empty")
            if not name:
                continue
            if any(known.name == name for known in names):
                self.report(item, f"{prefix}rules: {go_quoted(name)} given twice")
                continue
            line, column = yaml_place(item)
            names.append(RuleName(name, f"{self.path}:{line}:{column}"))
        return tuple(names)

    def _exp_action(self, node: Node, prefix: str) -> ExpAction | None:
        fields = self._fields(node, "an expected action", _EXP_ACTION_KEYS)
        if fields is None:
            return None
        count = len(self.problems)
        plugin = self._text_of(fields, "plugin", f"{prefix}plugin")
        if not plugin:
            self.report(node, f"{prefix}an expected action needs its plugin")
        kind_text = self._text_of(fields, "kind", f"{prefix}kind")
        if kind_text not in _KINDS:
            self.report(
                fields["kind"][1] if "kind" in fields else node,
                f"{prefix}kind: expected one of {', '.join(_KINDS)}, got {go_quoted(kind_text)}",
            )
        labels = self._labels(fields, "labels", prefix, names_of="label")
        value_node = self._node(fields, "value")
        value = None if value_node is None else self._number(value_node, f"{prefix}value")
        annotations = None
        if "annotations" in fields:
            found = self._labels(fields, "annotations", prefix, names_of="annotation")
            annotations = {name: text for name, (text, _) in found.items()}
        at = self._duration(fields, "at", prefix)
        rule = self._text_of(fields, "rule", f"{prefix}rule") if "rule" in fields else None
        failed = self._flag(fields, "failed", prefix)
        outcome, reason = self._outcome(fields, node, failed, prefix)
        if len(self.problems) > count:
            return None
        return ExpAction(
            plugin=plugin,
            kind=cast(ActionKind, kind_text),
            labels={name: text for name, (text, _) in labels.items()},
            value=value,
            annotations=annotations,
            at=at,
            rule=rule,
            failed=failed or outcome == "failed",
            line=yaml_place(node)[0],
            outcome=outcome,
            reason=reason,
        )

    def _outcome(
        self, fields: _NODES, node: Node, failed: bool, prefix: str
    ) -> tuple[CallOutcome | None, str | None]:
        """``outcome`` (and its ``reason``) of an expected action, when given."""
        outcome: CallOutcome | None = None
        if "outcome" in fields:
            text = self._text_of(fields, "outcome", f"{prefix}outcome")
            if text in _OUTCOMES:
                outcome = text
            else:
                self.report(
                    fields["outcome"][1],
                    f"{prefix}outcome: expected one of {', '.join(_OUTCOMES)}, "
                    f"got {go_quoted(text)}",
                )
        if failed and outcome not in (None, "failed"):
            self.report(node, f"{prefix}failed: true is outcome failed, not {outcome}")
        if "reason" not in fields:
            return outcome, None
        reason = self._text_of(fields, "reason", f"{prefix}reason")
        if outcome != "suppressed":
            self.report(fields["reason"][1], f"{prefix}reason: only with outcome suppressed")
        elif reason not in _REASONS:
            self.report(
                fields["reason"][1],
                f"{prefix}reason: expected one of {', '.join(_REASONS)}, got {go_quoted(reason)}",
            )
        return outcome, reason

    def _flag(self, fields: _NODES, key: str, prefix: str) -> bool:
        node = self._node(fields, key)
        if node is None:
            return False
        text = yaml_scalar_text(node, self.report, f"{prefix}{key}")
        if text is not None and text.lower() in ("true", "false"):
            return text.lower() == "true"
        self.report(node, f"{prefix}{key}: expected true or false, got {yaml_kind(node)}")
        return False

    def _plugin_failure(self, node: Node, prefix: str) -> ScriptedFailure | ScriptedApproval | None:
        fields = self._fields(node, "a plugin failure", _FAILURE_KEYS)
        if fields is None:
            return None
        count = len(self.problems)
        if "approve_at" in fields:
            return self._approval(fields, node, prefix)
        for key in ("rule", "labels"):
            if key in fields:
                self.report(fields[key][0], f"{prefix}{key}: only with approve_at")
        plugin = self._text_of(fields, "plugin", f"{prefix}plugin")
        if not plugin:
            self.report(node, f"{prefix}a plugin failure needs its plugin")
        times_node = self._node(fields, "times")
        times = None if times_node is None else self._whole(times_node, f"{prefix}times")
        start = self._duration(fields, "from", prefix)
        end = self._duration(fields, "until", prefix)
        if times_node is not None and ("from" in fields or "until" in fields):
            self.report(node, f"{prefix}a plugin failure takes times, or from and until: not both")
        elif times_node is None and "from" not in fields:
            self.report(node, f"{prefix}a plugin failure needs times, or from (and until)")
        if start is not None and end is not None and end <= start:
            self.report(fields["until"][1], f"{prefix}until must be after from")
        error = self._text_of(fields, "error", f"{prefix}error") or SCRIPTED_FAILURE
        if len(self.problems) > count:
            return None
        return ScriptedFailure(plugin, times, start, end, error, yaml_place(node)[0])

    def _approval(self, fields: _NODES, node: Node, prefix: str) -> ScriptedApproval | None:
        """``approve_at`` (with ``rule`` and ``labels``, to choose): the approval requests
        pending then are approved."""
        count = len(self.problems)
        for key in ("plugin", "times", "from", "until", "error"):
            if key in fields:
                self.report(fields[key][0], f"{prefix}{key}: not with approve_at")
        at = self._duration(fields, "approve_at", prefix)
        rule = self._text_of(fields, "rule", f"{prefix}rule") if "rule" in fields else None
        labels = self._labels(fields, "labels", prefix, names_of="label")
        if len(self.problems) > count or at is None:
            return None
        return ScriptedApproval(
            at, rule, {name: text for name, (text, _) in labels.items()}, yaml_place(node)[0]
        )
