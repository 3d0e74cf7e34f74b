"""What the service is made of: the parts ``Service`` wires together, which its lifecycle
(``_lifecycle``) and its view for the HTTP endpoints (``_view``) both use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._actions import PluginCatalog
from .._config import Settings
from .._core import HistoryEntry
from .._engine import EvaluationStep, Governor, Rule
from .._sources import Fetch, Group
from .._surface import ServiceMetrics
from ._history import mark_fix, record_action
from ._rules import RuleRuntimes
from ._runner import Runner
from ._scheduler import Scheduler

if TYPE_CHECKING:
    from .._cluster import ActionHistory, LeaderElector, StateWriter


class ServiceParts:
    """The parts, set by ``Service.__init__``; ``settings`` and ``catalog`` change at a
    reload."""

    settings: Settings
    catalog: PluginCatalog
    metrics: ServiceMetrics
    runtimes: RuleRuntimes
    """Every rule that runs, with what the service keeps for it."""
    step: EvaluationStep
    governor: Governor
    """Budgets, breakers, storms, silences, mute windows, the pause and the mode."""
    runner: Runner
    scheduler: Scheduler
    writer: StateWriter | None
    """Saves the rules' state (``STATE_FILE``)."""
    election: LeaderElector | None
    history: ActionHistory
    """Every owed plugin call and what became of it (``HISTORY_FILE``); written through
    ``record_action``."""
    governor_restored: bool = False
    """Whether the state file's budgets, breakers, silences and pause are restored (set
    at once without a state file): changes over HTTP wait for it."""
    started: float
    """Monotonic (``time.monotonic``) time the service was made."""

    @property
    def rules(self) -> list[Rule]:
        """Every rule that runs, in the configuration's order."""
        return self.runtimes.rules

    @property
    def groups(self) -> list[Group]:
        return self.scheduler.groups

    @groups.setter
    def groups(self, groups: list[Group]) -> None:
        self.scheduler.groups = groups

    @property
    def fetches(self) -> list[Fetch]:
        """Every fetch of every group."""
        return [fetch for group in self.groups for fetch in group.fetches]

    def _record_action(self, entry: HistoryEntry) -> None:
        """An owed call and what became of it: counted, and kept in the action history."""
        record_action(self.history, self.metrics, entry)

    def _mark_fix(self, rule: str, key: str, plugins: tuple[str, ...], held: bool) -> None:
        """A fix was verified: its rows in the history say so, and it is counted."""
        mark_fix(self.history, self.metrics, rule, key, plugins, held)

    def _state_changed(self) -> None:
        if self.writer is not None:
            self.writer.changed()
