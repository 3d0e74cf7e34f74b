"""The rule of each kind a configuration asks for, and what a reload keeps of the old ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._alerting import AlertingRule
from ._logging_rule import LoggingRule
from ._prometheus_alert import PrometheusAlertRule
from ._rule import Rule

if TYPE_CHECKING:
    from .._config import RuleConfig


def make_rule(config: RuleConfig) -> Rule:
    """A ``PrometheusAlertRule`` for an alerting rule of a rule file, an ``AlertingRule`` if
    ``config`` has a threshold, else a ``LoggingRule``."""
    if config.alert is not None:
        return PrometheusAlertRule(config)
    return LoggingRule(config) if config.base is None else AlertingRule(config)


def carry_over(old: Sequence[Rule], configs: Sequence[RuleConfig]) -> tuple[list[Rule], list[Rule]]:
    """The rules for ``configs`` after a reload, and the old rules that retire.

    A rule whose definition did not change (same name, equal configuration) is the old
    object, with all its state: pending timers, firing series, backoffs, calls in flight.
    Any other is new. The old rules that were changed or removed retire: their firing series
    are resolved (``Rule.retire``), as Prometheus resolves the alerts of a rule it drops.
    """
    by_name = {rule.name: rule for rule in old}
    rules = []
    for config in configs:
        same = by_name.get(config.name)
        rules.append(same if same is not None and same.config == config else make_rule(config))
    kept = {id(rule) for rule in rules}
    return rules, [rule for rule in old if id(rule) not in kept]
