"""The inhibitor: which alerts of this service fire now, and which calls they hold back.

Alertmanager's ``inhibit`` package, on this service's own alerts: an alert is a series level
of any rule (its labels are ``Rule.alert_labels``: the series' labels, ``alertname`` and, for
the hard level, ``breach_level="hard"``). A *source* is an alert that is firing (not pending)
and matches an inhibit rule's ``source_matchers``. A call for an alert that matches the
rule's ``target_matchers`` is inhibited while a source has the same values of the
``equal`` labels (a label missing on both counts as equal), except that, as Alertmanager's
``hasEqual`` with ``excludeTwoSidedMatch``, when the target matches the source matchers as
well, sources that match the target matchers too are disregarded: an alert never inhibits
itself, nor one of its own kind. Every kind of call is inhibited, resolves too, as
Alertmanager mutes resolved notifications of an inhibited alert (a held resolve stays owed
and goes when the source stops firing).

The evaluation step tells it about each rule after evaluating it (``observe``); a rule not
observed since the last ``configure`` (a reload, a restart restoring the state file) is
looked at when first asked, so its restored alerts inhibit from the first evaluation. The
rules of one tick are evaluated in turn: a source that begins to fire inhibits the calls of
rules evaluated after it in that tick, and of every rule from the next one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .._core import record
from ._state import State

if TYPE_CHECKING:
    from .._config import InhibitRule
    from ._rule import Rule


@record(frozen=True, slots=True)
class Inhibition:
    """Why a call is held back: the inhibit rule and the firing alert that holds it."""

    rule: InhibitRule
    source: Mapping[str, str]

    def describe(self) -> str:
        labels = ", ".join(f'{k}="{v}"' for k, v in sorted(self.source.items()))
        return f"inhibited by firing alert {{{labels}}} ({self.rule.label()})"


class Inhibitor:
    """The inhibit rules and the firing alerts that may be their sources, by rule."""

    def __init__(self) -> None:
        self.rules: tuple[InhibitRule, ...] = ()
        self._rules: dict[str, Rule] = {}
        self._sources: dict[str, list[dict[str, str]]] = {}
        """Per rule (its identity digest): its firing alerts that match a source side."""

    def configure(self, inhibit_rules: Sequence[InhibitRule], rules: Sequence[Rule]) -> None:
        """The inhibit rules and the rules whose alerts may be sources, of a (re)loaded
        configuration: each rule is looked at afresh when next asked."""
        self.rules = tuple(inhibit_rules)
        self._rules = {rule.identity_digest: rule for rule in rules}
        self._sources = {}

    def observe(self, rule: Rule) -> None:
        """``rule`` was evaluated: its firing alerts are the sources it gives now."""
        if self.rules and rule.identity_digest in self._rules:
            self._sources[rule.identity_digest] = self._firing(rule)

    def _firing(self, rule: Rule) -> list[dict[str, str]]:
        return [
            dict(alert.labels)
            for alert in rule.alerts()
            if alert.state is State.FIRING
            and any(inhibit.is_source(alert.labels) for inhibit in self.rules)
        ]

    def inhibited_by(self, labels: Mapping[str, str]) -> Inhibition | None:
        """What inhibits the alert with ``labels`` now, or None."""
        for inhibit in self.rules:
            if not inhibit.is_target(labels):
                continue
            two_sided = inhibit.is_source(labels)
            for source in self._every_source():
                if (
                    inhibit.is_source(source)
                    and inhibit.same(source, labels)
                    and not (two_sided and inhibit.is_target(source))
                ):
                    return Inhibition(inhibit, source)
        return None

    def _every_source(self) -> list[dict[str, str]]:
        for digest, rule in self._rules.items():
            if digest not in self._sources:
                self._sources[digest] = self._firing(rule)
        return [source for sources in self._sources.values() for source in sources]
