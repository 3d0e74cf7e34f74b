"""Where an action goes, and which plugins already took it.

A fire or a repeat goes where the configuration sends it now; a resolve goes to the
plugins that took its breach's fire and repeats (``Action.takers``, kept in the series
level's state), so a route or plugin changed by a reload in between never resolves an
alert at a plugin that did not fire it, nor leaves the one that did without its resolve.

Behind the evaluation step (``_step``), which the service and the replay share: a backtest
or a rule test calls the plugins the service would call, in the same order, and retries
only those that failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._config import routes_for
from .._core import Labels
from ._state import Action

if TYPE_CHECKING:
    from .._config import Route
    from ._rule import Rule

_Key = tuple[Labels, str]
_Which = tuple[int, str, int]


class Deliveries:
    """The plugins each action goes to, and the never-twice bookkeeping of a call that
    reaches several: when one of its plugins fails, the retry calls only the plugins that
    have not taken it yet.

    What is remembered lives only as long as the retry can come: an action some of whose
    plugins took it, while its rule still owes it. A call that succeeded, a breach that
    ended before the retry, a series forgotten and a rule a reload retired once it owes
    nothing leave nothing behind, however many series come and go."""

    def __init__(self, routes: tuple[Route, ...] = ()) -> None:
        self.routes = routes
        self._taken: dict[Rule, dict[_Key, tuple[_Which, set[str]]]] = {}

    def __len__(self) -> int:
        """The actions remembered now (each waits for the retry of its failed plugins)."""
        return sum(len(held) for held in self._taken.values())

    def plugins_for(self, rule: Rule, action: Action) -> list[str | None]:
        return [plugin for plugin, _ in self.targets_for(rule, action)]

    def targets_for(self, rule: Rule, action: Action) -> list[tuple[str | None, Route | None]]:
        """A resolve goes to the plugins that took its breach's fire and repeats, whatever
        the configuration says now (only logged when none did: a level without a plugin).
        Any other action, or a resolve whose takers are not known, goes to the rule's
        level's plugin, or for an alert of a rule file to the plugins of the routes its
        labels take (``[[routes]]``), else to the rule file's default ``action_plugin``.
        None: the action is only logged."""
        if action.kind == "resolve" and action.takers is not None:
            return [(plugin, None) for plugin in action.takers] or [(None, None)]
        alert = rule.config.alert
        if alert is None or not self.routes:
            return [(rule.level(action.level).plugin, None)]
        labels = rule.alert_labels(action.labels, action.level, action.value)
        taken = routes_for(self.routes, labels)
        return [(route.plugin, route) for route in taken] or [(alert.default_plugin, None)]

    def pending(self, rule: Rule, action: Action) -> list[tuple[str | None, Route | None]]:
        """The plugins still to call for ``action`` (those that have not taken it yet),
        each with the route that sends it there (None: the rule's own plugin)."""
        held = self._taken.get(rule, {}).get((action.labels, action.level))
        done = held[1] if held is not None and held[0] == _which(action) else set()
        return [target for target in self.targets_for(rule, action) if target[0] not in done]

    def took(self, rule: Rule, action: Action, plugin: str | None) -> None:
        """``plugin`` ran ``action`` successfully: a retry will not call it again."""
        if plugin is None:
            return
        held = self._taken.setdefault(rule, {})
        key, which = (action.labels, action.level), _which(action)
        found = held.get(key)
        if found is None or found[0] != which:
            found = held[key] = (which, set())
        found[1].add(plugin)

    def settle(self, rule: Rule, action: Action, ok: bool) -> None:
        """The call of ``action`` is over, and ``rule`` has recorded its outcome; ``ok``:
        every plugin took it. Its record stays only for the retry the rule owes."""
        key = (action.labels, action.level)
        if ok or not _owes(rule, key, _which(action)):
            self._drop(rule, key)

    def prune(self, rule: Rule) -> None:
        """``rule`` was evaluated (or, retired, wound down): forget what it no longer owes
        (the breach ended before the retry, or the series was forgotten)."""
        held = self._taken.get(rule)
        if held is None:
            return
        for key, (which, _) in list(held.items()):
            if not _owes(rule, key, which):
                del held[key]
        if not held:
            del self._taken[rule]

    def _drop(self, rule: Rule, key: _Key) -> None:
        held = self._taken.get(rule)
        if held is not None:
            held.pop(key, None)
            if not held:
                del self._taken[rule]


def _owes(rule: Rule, key: _Key, which: _Which) -> bool:
    """Whether the series level ``key`` of ``rule`` still owes the action ``which`` (owed
    again after a failure, or running)."""
    series = rule.series.get(key[0])
    machine = None if series is None else series.level(key[1])
    return machine is not None and (machine.breach, machine.due, machine.fire_count) == which


def _which(action: Action) -> _Which:
    """Tells one action of a series level from another: its breach, kind and count."""
    return (action.breach, action.kind, action.fire_count)
