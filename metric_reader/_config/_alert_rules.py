"""The groups of Prometheus rule files (``rule_files``, ``RULE_FILES``), their alerting rules
as rules; their recording rules are kept, in order, for ``metric-reader test`` (the service
leaves them to Prometheus).

Each alerting rule is a rule that runs its ``expr`` on the Prometheus endpoint: every series
of the result is an alert of its own, pending until it has been in the result for ``for``,
then firing; a series that leaves the result ends its alert at once (``missing_value_behavior
= "resolve"``), or after ``keep_firing_for``. The rule file's ``rules.toml`` defaults apply
(``prometheus_endpoint``, ``polling_interval`` when the group has no ``interval``,
``action_plugin``, ``backoff_delay``); the group's ``limit`` is the rule's series limit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._core import any_value, format_duration, record_replace
from .._core._gotemplate import TemplateError, check_template
from ._problems import Given, Problems
from ._prom_duration import go_quoted
from ._rule_builder import Scope, build_rule
from ._rule_files import (
    AlertRuleDef,
    RecordingRuleDef,
    RuleGroupDef,
    expand_rule_file_globs,
    load_rule_files,
)
from ._types import AlertDefinition, RecordingRuleConfig, RuleConfig, RuleGroupConfig

if TYPE_CHECKING:  # routes are read only when the configuration gives some
    from ._routes import Route

_RULE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")
"""What a group's name may hold that a rule's name may not (spaces, slashes)."""
ALWAYS = ">=-Inf"
"""The threshold of an alert: any value of a series in the result holds the condition."""
_CHECKED_APART = "alert"
"""The name given to ``build_rule``, whose names are those of ``[[rules]]`` (letters, digits,
``_.:-``): an alert's name is free text, as in Prometheus 2.42 (``Database backup failed``,
``MysqlTooManyConnections(>80%)``), and its rule takes it once built."""
NOT_FOR_ALERTS = ("scrape_url", "threshold", "clear_threshold", "missing_value_behavior")
"""Defaults of the rule file that an alerting rule does not take (its ``expr`` decides)."""


class _AlertScope(Scope):
    def __init__(self, where: str) -> None:
        self.where = where

    def name(self, key: str) -> str:
        return key

    def about(self) -> str:
        return f"{self.where}: "


def read_rule_files(patterns: Sequence[str], base: Path, source: str) -> tuple[RuleGroupDef, ...]:
    """The groups of the files ``patterns`` name (relative to ``base``); ``ConfigError`` with
    every problem of every file, templates included."""
    paths = expand_rule_file_globs(patterns, base, source)
    return load_rule_files(paths, check_templates=_template_problem)


def _template_problem(text: str) -> str | None:
    try:
        check_template(text, "__alert_check")
    except TemplateError as exc:
        return str(exc)
    return None


def rule_groups(
    groups: Sequence[RuleGroupDef],
    defaults: Mapping[str, Given],
    routes: tuple[Route, ...],
    problems: Problems,
) -> tuple[RuleGroupConfig, ...]:
    """``groups`` with each alerting rule as a rule named after its alert (``GROUP:ALERT``
    when two rules have an alert of that name, ``GROUP:ALERT-N`` for the N-th of one group)
    and each recording rule as a ``RecordingRuleConfig``, in their order. A group or rule
    with mistakes (added to ``problems``) is left out."""
    names = _unique_names(groups)
    given = defaults.get("action_plugin")
    fallback = str(given.value).strip() or None if given is not None else None
    taken = {key: value for key, value in defaults.items() if key not in NOT_FOR_ALERTS}
    taken = {key: value for key, value in taken.items() if not key.startswith("hard.")}
    out: list[RuleGroupConfig] = []
    for group in groups:
        if group.query_offset:
            problems.add(
                f"{group.file}: group {group.name!r}: query_offset is not supported by "
                "metric-reader: its queries are evaluated at the time of the tick"
            )
            continue
        rules: list[RuleConfig | RecordingRuleConfig] = []
        for rule in group.rules:
            if isinstance(rule, RecordingRuleDef):
                rules.append(_recording(group, rule, len(out), len(rules)))
                continue
            config = _alert_rule(group, rule, names[id(rule)], taken, fallback, routes, problems)
            if config is not None:
                rules.append(config)
        out.append(
            RuleGroupConfig(group.name, group.file, group.interval, group.limit, tuple(rules))
        )
    return tuple(out)


def _recording(
    group: RuleGroupDef, rule: RecordingRuleDef, group_index: int, index: int
) -> RecordingRuleConfig:
    return RecordingRuleConfig(
        record=rule.name,
        expr=rule.expr,
        labels=tuple({**group.labels, **rule.labels}.items()),
        group=group.name,
        group_index=group_index,
        index=index,
        file=rule.file,
        line=rule.line,
    )


def _alert_rule(
    group: RuleGroupDef,
    alert: AlertRuleDef,
    name: str,
    taken: Mapping[str, Given],
    fallback: str | None,
    routes: tuple[Route, ...],
    problems: Problems,
) -> RuleConfig | None:
    where = f"{alert.file}:{alert.line}"
    raw = dict(taken)
    raw.update(
        name=Given(_CHECKED_APART, where),
        query=Given(alert.expr, where),
        threshold=Given(ALWAYS, where),
        threshold_duration=Given(format_duration(alert.for_), where),
        keep_firing_for=Given(format_duration(alert.keep_firing_for), where),
        missing_value_behavior=Given("resolve", where),
    )
    if group.interval is not None:
        raw["polling_interval"] = Given(format_duration(group.interval), where)
    if group.limit > 0:
        raw["series_limit"] = Given(group.limit, where)
    definition = AlertDefinition(
        name=alert.name,
        labels=tuple(group.labels_of(alert).items()),
        annotations=tuple(alert.annotations.items()),
        expr=alert.expr,
        group=group.name,
        file=alert.file,
        line=alert.line,
        default_plugin=fallback,
    )
    # The rule's plugin and repeat: those of the first route its own labels (not yet its
    # series') reach; each action is routed on its alert's full labels.
    known = definition.known_labels()
    first = next((route for route in routes if route.may_match(known)), None)
    if first is not None:
        raw["action_plugin"] = Given(first.plugin, first.where)
        if first.backoff is not None:
            raw["backoff_delay"] = Given(format_duration(first.backoff), first.where)
        if first.backoff_multiplier is not None:
            raw["backoff_multiplier"] = Given(first.backoff_multiplier, first.where)
        if first.backoff_max is not None:
            raw["backoff_max"] = Given(format_duration(first.backoff_max), first.where)
    config = build_rule(raw, _AlertScope(where), problems)
    if config is None or config.base is None:
        return None
    threshold = any_value(alert.expr)  # in the result: the condition holds, NaN too
    return record_replace(
        config,
        name=name,
        metric_name=alert.name,
        base=record_replace(config.base, threshold=threshold),
        alert=definition,
    )


def skipped_recording_rules(groups: Sequence[RuleGroupDef]) -> tuple[str, ...]:
    return tuple(
        f"{rule.file}:{rule.line}: recording rule {rule.name} skipped: metric-reader "
        "evaluates alerting rules only"
        for group in groups
        for rule in group.recording
    )


def duplicate_alert_warnings(groups: Sequence[RuleGroupDef]) -> tuple[str, ...]:
    """One line for each alert given again in its group with the same name and labels:
    promtool 2.42 only lints it (a warning, fatal with ``--lint-fatal``) and Prometheus
    evaluates both, and so does metric-reader, as rules ``GROUP:ALERT-N``."""
    names = _unique_names(groups)
    lines = []
    for group in groups:
        first: dict[tuple[str, tuple[tuple[str, str], ...]], AlertRuleDef] = {}
        for alert in group.alerts:
            key = (alert.name, tuple(sorted(alert.labels.items())))
            if key not in first:
                first[key] = alert
                continue
            earlier = first[key]
            lines.append(
                f"{alert.file}:{alert.line}: group {go_quoted(group.name)}: alert "
                f"{go_quoted(alert.name)} with the same labels as at line {earlier.line} "
                f"(promtool lints it as a duplicate rule): both are evaluated, as rules "
                f"{names[id(earlier)]!r} and {names[id(alert)]!r}"
            )
    return tuple(lines)


def _unique_names(groups: Sequence[RuleGroupDef]) -> dict[int, str]:
    counts: dict[str, int] = {}
    for group in groups:
        for alert in group.alerts:
            counts[alert.name] = counts.get(alert.name, 0) + 1
    names: dict[int, str] = {}
    for group in groups:
        seen: dict[str, int] = {}
        for alert in group.alerts:
            if counts[alert.name] == 1:
                names[id(alert)] = alert.name
                continue
            seen[alert.name] = seen.get(alert.name, 0) + 1
            in_group = sum(1 for other in group.alerts if other.name == alert.name)
            name = f"{_RULE_NAME_UNSAFE.sub('_', group.name)}:{alert.name}"
            names[id(alert)] = f"{name}-{seen[alert.name]}" if in_group > 1 else name
    return names
