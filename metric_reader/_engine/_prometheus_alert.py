"""An alerting rule of a Prometheus rule file: each series of its ``expr`` is one alert.

The state machine is the one every rule has (``AlertingRule``): the rule is configured so
that a series in the result holds the condition and a series that leaves it ends the alert
(``_config._alert_rules``). What differs is what an alert is called and carries, as
Prometheus' ``rules/alerting.go`` makes it: the series' labels, then the rule's labels
(group labels first) rendered as templates, then ``alertname``; and the annotations,
rendered at each action with the value of the last evaluation at which the alert was
active (its condition held): a resolve carries those of its last active evaluation, as
Prometheus sends them, not ``$value`` = NaN.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from .._core import Event, Labels, record_replace
from ._alerting import AlertingRule
from ._state import Action

if TYPE_CHECKING:
    from .._config import AlertDefinition, RuleConfig


class PrometheusAlertRule(AlertingRule):
    def __init__(self, config: RuleConfig) -> None:
        super().__init__(config)
        assert config.alert is not None
        self.alert: AlertDefinition = config.alert
        self._template_name = f"__alert_{config.alert.name}"

    def reconfigure(self, config: RuleConfig, now: float) -> list[Action]:
        owed = super().reconfigure(config, now)
        assert config.alert is not None
        self.alert = config.alert  # its annotations and expression may have changed
        return owed

    def alert_labels(self, labels: Labels, level: str, value: float) -> dict[str, str]:
        series = dict(labels)
        out = dict(series)
        for name, template in self.alert.labels:
            rendered = self._expand(template, series, value)
            if rendered:
                out[name] = rendered
            else:  # Prometheus: a label whose value renders empty is no label
                out.pop(name, None)
        out["alertname"] = self.alert.name
        return out

    def annotations(self, labels: Labels, value: float) -> dict[str, str]:
        series = dict(labels)
        return {name: self._expand(text, series, value) for name, text in self.alert.annotations}

    def event(self, action: Action, now: float, plugin: str, wall: datetime | None = None) -> Event:
        base = super().event(action, now, plugin, wall)
        return record_replace(
            base,
            metric_name=self.alert.name,
            labels=self.alert_labels(action.labels, action.level, action.value),
            threshold=self.alert.expr,
            annotations=self.annotations(action.labels, action.value),
        )

    def _expand(self, template: str, labels: dict[str, str], value: float) -> str:
        if "{{" not in template:
            return template
        from .._core._gotemplate import expand_alert_template  # only where a template is

        return expand_alert_template(
            template,
            self._template_name,
            labels=labels,
            value=value,
            external_labels=dict(self.config.external_labels),
            external_url=self.config.external_url,
        )
