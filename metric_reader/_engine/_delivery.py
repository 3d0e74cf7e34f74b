"""Where an action goes, and which plugins already took it.

Behind the evaluation step (``_step``), which the service and the replay share: a backtest
or a rule test calls the plugins the service would call, in the same order, and retries
only those that failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._config import routes_for
from ._state import Action

if TYPE_CHECKING:
    from .._config import Route
    from ._rule import Rule

_Key = tuple[str, tuple[tuple[str, str], ...], str]
_Which = tuple[int, str, int]


class Deliveries:
    """The plugins each action goes to, and the never-twice bookkeeping of a call that
    reaches several: when one of its plugins fails, the retry calls only the plugins that
    have not taken it yet (one entry per series level at most, dropped once all took it)."""

    def __init__(self, routes: tuple[Route, ...] = ()) -> None:
        self.routes = routes
        self._taken: dict[_Key, tuple[_Which, set[str]]] = {}

    def plugins_for(self, rule: Rule, action: Action) -> list[str | None]:
        """The rule's level's plugin, or for an alert of a rule file the plugins of the
        routes its labels take (``[[routes]]``), else the rule file's default
        ``action_plugin``. None: the action is only logged."""
        alert = rule.config.alert
        if alert is None or not self.routes:
            return [rule.level(action.level).plugin]
        labels = rule.alert_labels(action.labels, action.level, action.value)
        taken = routes_for(self.routes, labels)
        return [route.plugin for route in taken] or [alert.default_plugin]

    def pending(self, rule: Rule, action: Action) -> list[str | None]:
        """The plugins still to call for ``action``: those that have not taken it yet."""
        key = (rule.name, action.labels, action.level)
        which = (action.breach, action.kind, action.fire_count)
        held = self._taken.get(key)
        done = held[1] if held is not None and held[0] == which else set()
        self._taken[key] = (which, done)
        return [plugin for plugin in self.plugins_for(rule, action) if plugin not in done]

    def took(self, rule: Rule, action: Action, plugin: str | None) -> None:
        """``plugin`` ran ``action`` successfully: a retry will not call it again."""
        held = self._taken.get((rule.name, action.labels, action.level))
        if plugin is not None and held is not None:
            held[1].add(plugin)

    def settle(self, rule: Rule, action: Action, ok: bool) -> None:
        """The call of ``action`` is over; ``ok``: every plugin took it."""
        if ok:
            self._taken.pop((rule.name, action.labels, action.level), None)
