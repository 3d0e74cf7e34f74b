"""The service, wired: the parts made and handed to each other, nothing more."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx
from anyio.abc import TaskGroup

from .._actions import PluginCatalog
from .._cluster import ActionHistory
from .._config import Settings
from .._core import to_wall, wall_at
from .._engine import EvaluationStep, Governor, make_rule
from .._sources import Fetch, Group
from .._surface import ServiceMetrics
from ._config_watch import ConfigWatch, Look
from ._lifecycle import Lifecycle, Reloader
from ._rules import RuleRuntimes
from ._runner import Runner
from ._scheduler import Scheduler
from ._view import StatusView

if TYPE_CHECKING:
    from .._cluster import InCluster


class Service(Lifecycle, StatusView):
    """The running service: one task per group evaluating its rules, the plugin calls they
    hand out, and (when configured) the state file and the leader election."""

    def __init__(
        self,
        settings: Settings,
        catalog: PluginCatalog,
        cluster: InCluster | None = None,
        reloader: Reloader | None = None,
        files: Look | None = None,
    ) -> None:
        """``cluster``: where the Kubernetes API is, for leader election (when enabled);
        ``reloader``: reads the configuration again (SIGHUP, ``POST /-/reload``, a change of
        its files), or raises ``ConfigError``; ``files``: the configuration's files as they
        were when ``settings`` were read (``ConfigFiles.look``; None: looked at when the
        service runs)."""
        self.settings = settings
        self.catalog = catalog
        self.reloader = reloader
        self.config_watch = ConfigWatch()
        self.config_watch.loaded = files
        self.metrics = ServiceMetrics()
        self.governor = Governor(record=self._record_action)
        self.governor.mark_fix = self._mark_fix
        if settings.paused:
            self.governor.set_pause(time.time(), None, "PAUSED=true")
        self.step = EvaluationStep(settings.routes, self.governor, _wall_of)
        self.runtimes = RuleRuntimes()
        self.writer = None
        if settings.state_file is not None:
            from .._cluster import StateFile, StateWriter

            self.writer = StateWriter(
                StateFile(settings.state_file),
                self.rules,
                dry_run=settings.dry_run,
                governor=self.governor,
            )
        # A dry run writes nothing: its history is kept in memory (GET /api/actions).
        history_file = None if settings.dry_run else settings.history_file
        self.history = ActionHistory.open(history_file, settings.history_retention)
        self.election = None
        if settings.election is not None and cluster is not None:
            from .._cluster import rules_elector  # the election's code only when it is on

            self.election = rules_elector(
                settings.election,
                cluster,
                self.runtimes.by_name(),
                self._state_changed,
                self.governor,
            )
        self.runner = Runner(self, self.metrics, self.election, self.writer, self._state_changed)
        self.scheduler = Scheduler(
            self.runtimes, self.step, self.runner, self.metrics, self.acting, self._state_changed
        )
        self._install([make_rule(config) for config in settings.rules])
        self.started = time.monotonic()

    async def poll_once(
        self,
        client: httpx.AsyncClient,
        fetch: Fetch,
        timeout: float,
        calls: TaskGroup,
        tick: float | None = None,
        group: Group | None = None,
    ) -> Exception | None:
        """Make ``fetch`` once and evaluate its rules (``Scheduler.poll_once``)."""
        return await self.scheduler.poll_once(client, fetch, timeout, calls, tick, group)

    @property
    def _in_flight(self) -> int:
        """Plugin calls running now."""
        return self.runner.in_flight


def _wall_of(at: float) -> float:
    """The wall-clock time of the monotonic time ``at`` (the service evaluates on it)."""
    now = time.monotonic()
    return to_wall(at, now, wall_at(now))
