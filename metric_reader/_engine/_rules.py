"""The rule of each kind a configuration asks for, and what a reload keeps of the old ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .._core import record
from ._alerting import AlertingRule
from ._logging_rule import LoggingRule
from ._prometheus_alert import PrometheusAlertRule
from ._rule import Rule, rule_identity

if TYPE_CHECKING:
    from .._config import RuleConfig


def make_rule(config: RuleConfig) -> Rule:
    """A ``PrometheusAlertRule`` for an alerting rule of a rule file, an ``AlertingRule`` if
    ``config`` has a threshold, else a ``LoggingRule``."""
    if config.alert is not None:
        return PrometheusAlertRule(config)
    return LoggingRule(config) if config.base is None else AlertingRule(config)


@record(frozen=True, slots=True)
class CarriedOver:
    """What a reload makes of the running rules."""

    rules: list[Rule]
    """The rules of the new configuration, in its order."""
    unchanged: list[Rule]
    """Old rules whose configuration is equal: they go on exactly as they were."""
    reconfigure: list[tuple[Rule, RuleConfig]]
    """Old rules kept with a changed configuration: each is to take its new one
    (``Rule.reconfigure``) before it is evaluated again."""
    retired: list[Rule]
    """Old rules removed, or replaced by a rule of another identity."""


def carry_over(old: Sequence[Rule], configs: Sequence[RuleConfig]) -> CarriedOver:
    """The rules for ``configs`` after a reload, and what becomes of the old ones.

    A rule of the same identity (``rule_identity``: for an alert of a rule file its group,
    alert name and labels; for any other rule its name; and its kind) is the old object,
    with all its state: pending timers, firing series, backoffs, calls in flight, as
    Prometheus' ``Group.CopyState`` keeps an alert's. Its other settings may have changed:
    it takes them (``reconfigure``) and is judged by them from its next evaluation. Any
    other rule is new. The old rules that were removed or changed identity retire: their
    firing series are resolved (``Rule.retire``), as Prometheus resolves the alerts of a
    rule it drops.
    """
    candidates: dict[tuple[object, ...], list[Rule]] = {}
    for rule in old:
        candidates.setdefault(rule.identity, []).append(rule)
    rules: list[Rule] = []
    unchanged: list[Rule] = []
    reconfigure: list[tuple[Rule, RuleConfig]] = []
    for config in configs:
        found = candidates.get(rule_identity(config))
        if not found:  # two alerts of one identity are matched in order, as Prometheus does
            rules.append(make_rule(config))
            continue
        same = next((rule for rule in found if rule.name == config.name), found[0])
        found.remove(same)
        rules.append(same)
        if same.config == config:
            unchanged.append(same)
        else:
            reconfigure.append((same, config))
    kept = {id(rule) for rule in rules}
    retired = [rule for rule in old if id(rule) not in kept]
    return CarriedOver(rules, unchanged, reconfigure, retired)
