"""Verifying that a fix held, in the evaluation step (issue 26, point 1).

``verify_within`` on a rule, the rule file's defaults or a route: a fire or repeat every
plugin took is a fix, verified by its series level (``_fix``, kept in ``_state``): the
condition must end within that time. The step starts the check when the call settles
(``expect``) and, after each evaluation, hands out what came of checks (``hand_out``):

- ``verified``: the history rows of the fix's call are marked verified;
- ``unverified``: marked so, and the event ``unverified`` goes once to the
  ``escalate_plugin`` (only logged without one); the next repeat, after ``backoff_delay``,
  is the next attempt;
- ``gave_up``: the ``max_attempts``-th fix of the breach did not hold: marked unverified,
  and the event ``gave_up`` goes once to the ``escalate_plugin``; the level owes no more
  repeats (its fixing plugin is not called) until the breach ends.

The events are one-off calls like a storm's (``StormNotice``): not retried, held back by
the pause, recorded in the history as rows of their kind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from .._config import VerifyConfig, routes_for
from .._core import (
    Event,
    HistoryEntry,
    Labels,
    Level,
    Outcome,
    format_duration,
    idempotency_key,
    record_replace,
)
from ._fix import FixCheck, PendingFix
from ._notice import Notice
from ._state import Action

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._config import Route
    from ._governor import Governor
    from ._rule import Rule


def verify_config(
    rule: Rule, labels: Labels, level: str, value: float, routes: tuple[Route, ...]
) -> VerifyConfig:
    """The verification settings of a series level: the rule's, under those of the routes
    that take its alert (the first route's first)."""
    config = rule.config.verify
    if rule.config.alert is None or not routes:
        return config
    for route in reversed(routes_for(routes, rule.alert_labels(labels, level, value))):
        config = route.verify.over(config)
    return config


def expect(
    rule: Rule,
    action: Action,
    routes: tuple[Route, ...],
    plugins: list[str | None],
    now: float,
    key: str,
) -> None:
    """``action`` succeeded at ``now`` (every plugin of ``plugins`` took it, or it was
    only logged): with ``verify_within``, its series level verifies that the fix holds."""
    if action.kind == "resolve":
        return
    config = verify_config(rule, action.labels, action.level, action.value, routes)
    if config.within is None:
        return
    plugins_of = tuple(plugin or "" for plugin in plugins)
    fix = PendingFix(0.0, key, config.attempts, plugins_of, config.query)
    rule.expect_fix(action, now, config.within, fix)


def hand_out(
    governor: Governor,
    rule: Rule,
    routes: tuple[Route, ...],
    wall: float,
    notify: Callable[[FixNotice], object],
) -> None:
    """What came of the fixes of ``rule`` being verified, at the wall-clock time ``wall``:
    the history marked, and an event to the ``escalate_plugin`` for each that did not
    hold."""
    for labels, check in rule.fix_checks():
        held = check.result == "verified"
        governor.mark_fix(rule.name, check.fix.key, check.fix.plugins, held)
        config = verify_config(rule, labels, check.level, check.value, routes)
        notice = FixNotice(governor, rule, labels, check, config, wall)
        if not governor.quiet:
            from .._core import logger

            level = "INFO" if held else "WARNING"
            logger.bind(rule=rule.name, series=dict(labels), breach_level=check.level).log(
                level, "fix {}: {}", check.result, notice.text
            )
        if not held:
            notify(notice)


class FixNotice(Notice):
    """The one call a fix that did not hold makes: the event ``unverified`` or ``gave_up``
    to the ``escalate_plugin`` (only logged without one). Not retried; the pause holds it
    back; it counts for the plugin's breaker."""

    __slots__ = (
        "_governor",
        "_plugins",
        "at",
        "check",
        "config",
        "labels",
        "rule",
        "text",
        "wall",
    )

    def __init__(
        self,
        governor: Governor,
        rule: Rule,
        labels: Labels,
        check: FixCheck,
        config: VerifyConfig,
        wall: float,
    ) -> None:
        self.rule = rule
        self.labels = labels
        self.check = check
        self.config = config
        self.at = check.at
        self.wall = wall
        self._governor = governor
        within = format_duration(config.within or 0.0)
        attempts = f"{check.unheld} of {check.fix.attempts}"
        query = check.fix.query
        still = "still breached" if query is None else f"verify_query {query} still unhealthy"
        if check.result == "verified":
            self.text = (
                "the condition ended after the fix"
                if query is None
                else f"verify_query {query} healthy after the fix"
            )
        elif check.result == "unverified":
            self.text = (
                f"{still} {within} after the fix (attempt {attempts} did not "
                "hold): the next repeat tries again"
            )
        else:
            self.text = (
                f"{still} {within} after the fix (attempt {attempts} did not "
                "hold): giving up, no plugin is called for this breach until it ends"
            )
        plugin = config.escalate_plugin
        held = check.result == "verified"  # told to nobody: only logged
        self._plugins = [plugin] if held else self._unless_paused(plugin)

    def event(self, plugin: str | None, now: float, wall: datetime | None = None) -> Event:
        """The event of the rule's fix (its labels, annotations, link, as the rule makes
        them), of kind ``unverified`` or ``gave_up``, with the annotation ``verification``
        saying what happened."""
        rule, check = self.rule, self.check
        level: Level = "hard" if check.level == "hard" else "base"
        action = Action(
            labels=self.labels,
            level=level,
            kind="repeat",
            value=check.value,
            active_at=check.active_at,
            duration=max(0.0, now - check.active_at),
            fire_count=check.fire_count,
            breach=check.breach,
            started_at=now,
        )
        made = rule.event(action, now, plugin or "", wall)
        return record_replace(
            made,
            kind="gave_up" if check.result == "gave_up" else "unverified",
            annotations={**made.annotations, "verification": self.text},
            idempotency_key=self._key(made.breach_started),
        )

    def _key(self, started: datetime) -> str:
        check = self.check
        return idempotency_key(
            self.rule.name,
            dict(self.labels),
            check.level,
            started,
            check.breach,
            "fire",
            check.fire_count,
            f"{check.result}:{self.rule.identity_digest}",
        )

    def _record(
        self, plugin: str | None, outcome: Outcome, reason: str = "", detail: str = ""
    ) -> None:
        check = self.check
        wall = datetime.fromtimestamp(self.wall, UTC)
        started = wall - timedelta(seconds=self.at - check.active_at)
        self._governor.record(
            HistoryEntry(
                at=self.wall,
                rule=self.rule.name,
                series=dict(self.labels),
                plugin=plugin or "",
                kind=check.result,
                outcome=outcome,
                reason=reason,
                detail=detail or self.text,
                value=check.value,
                threshold=self.rule.level(check.level).threshold.text,
                duration=max(0.0, self.at - check.active_at),
                annotations=self.rule.annotations(self.labels, check.value),
                attempt=check.unheld,
                idempotency_key=self._key(started),
                level=check.level,
            )
        )
