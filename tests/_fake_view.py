"""A small stand-in for the service as ``_surface`` sees it (``ServiceView``): for tests of
the endpoints that do not need a service polling anything."""

from __future__ import annotations

import time
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field

import anyio
from prometheus_client import CollectorRegistry

from metric_reader import __version__
from metric_reader._cluster import ActionHistory
from metric_reader._engine import ActiveAlert, Governor
from metric_reader._surface._governor_doc import governor_doc
from metric_reader._surface._metrics import ServiceMetrics
from metric_reader._surface._selection import Selection
from metric_reader._surface._status import status_snapshot
from metric_reader._surface._status_doc import StatusDocument
from metric_reader._surface._view import (
    FetchStatus,
    PluginCounts,
    RuleSeries,
    UnloadedPlugin,
    fetched_recently,
)


def _now() -> float:
    try:
        return anyio.current_time()
    except RuntimeError:  # outside an event loop (a test collecting the registry)
        return time.monotonic()


@dataclass
class FakeView:
    """Holds what a test sets; by default no rule and no target (so ready)."""

    fetches: list[FetchStatus] = field(default_factory=list)
    series: list[RuleSeries] = field(default_factory=list)
    no_data: dict[str, bool] = field(default_factory=dict)
    unloaded: list[UnloadedPlugin] = field(default_factory=list)
    plugins: PluginCounts = field(default_factory=lambda: PluginCounts(0, 0, 0))
    active_alerts: list[ActiveAlert] = field(default_factory=list)
    is_acting: bool = True
    reloads: int = 0
    reload_problem: str | None = None
    started: float = 0.0
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    actions: ActionHistory = field(default_factory=lambda: ActionHistory.open(None))
    """The real store, in memory: a test records into it what the page and API show."""
    governor: Governor = field(default_factory=lambda: Governor(quiet=True))
    governor_saves: int = 0

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def rule_names(self) -> Collection[str]:
        return self.no_data.keys()

    def generation(self) -> Hashable:
        return (tuple(self.fetches), tuple(self.no_data.items()))

    def ready(self) -> bool:
        now = _now()
        return all(fetched_recently(t.last_success, t.interval, now) for t in self.fetches)

    def fetch_statuses(self) -> Sequence[FetchStatus]:
        return self.fetches

    def unloaded_plugins(self) -> list[UnloadedPlugin]:
        return self.unloaded

    def rule_series(self) -> list[RuleSeries]:
        return self.series

    def rules_without_data(self) -> dict[str, bool]:
        return self.no_data

    def alerts(self) -> list[ActiveAlert]:
        return self.active_alerts

    def plugin_counts(self) -> PluginCounts:
        return self.plugins

    def acting(self) -> bool:
        return self.is_acting

    async def reload(self) -> str | None:
        self.reloads += 1
        return self.reload_problem

    async def governor_ready(self) -> bool:
        return True

    async def governor_changed(self) -> None:
        self.governor_saves += 1

    def status(self, selection: Selection | None = None) -> StatusDocument:
        document = status_snapshot(
            [],
            self.fetches,
            _now(),
            ready=self.ready(),
            started_mono=self.started,
            version=__version__,
        )
        document["governor"] = governor_doc(self.governor, time.time())
        return document
