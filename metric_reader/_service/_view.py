"""The service as the HTTP endpoints see it: ``_surface._view.ServiceView``, implemented
over the service's parts (the protocol is declared in ``_surface``, which never imports the
service)."""

from __future__ import annotations

import time
from collections.abc import Collection, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING

import anyio
from prometheus_client import CollectorRegistry

from .. import __version__
from .._actions import PLUGIN_THREADS, QUEUE_LIMIT, queued_calls
from .._engine import ActiveAlert, revision
from .._surface import (
    ActionLog,
    FetchStatus,
    GroupStatus,
    PluginCounts,
    RuleSeries,
    UnloadedPlugin,
    fetched_recently,
)
from ._parts import ServiceParts

if TYPE_CHECKING:  # the status document's code: imported on the first request for it
    from .._surface import Selection, StatusDocument

GOVERNOR_READY_WAIT = 5.0
"""How long a change of a silence or the pause over HTTP waits for the state file's to be
restored at start-up before it is refused (503)."""


class StatusView(ServiceParts):
    """What the HTTP endpoints read of the service (``_surface._view.ServiceView``)."""

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def rule_names(self) -> Collection[str]:
        return self.runtimes.names()

    @property
    def actions(self) -> ActionLog:
        return self.history

    def generation(self) -> Hashable:
        return (
            revision(self.rules),
            tuple((fetch.last_success, fetch.last_error) for fetch in self.fetches),
            tuple(
                (one.no_data.active, one.no_data.empty_polls)
                for one in self.runtimes
                if one.no_data is not None
            ),
            tuple(self.scheduler.missed(group).total for group in self.groups),
            tuple(one.last_error for one in self.runtimes),
            queued_calls(),
            self.governor.revision,
            self.governor.silences.revision,
            self.governor.approvals.revision,
        )

    def ready(self) -> bool:
        """Every fetch has been read successfully, recently: within three of its polling
        intervals, and at least within a minute."""
        now = anyio.current_time()
        return all(
            fetched_recently(fetch.last_success, fetch.interval, now) for fetch in self.fetches
        )

    def fetch_statuses(self) -> list[FetchStatus]:
        return [
            FetchStatus(
                t.description, t.interval, len(t.rules), t.last_success, t.last_error, t.group
            )
            for t in self.fetches
        ]

    def group_statuses(self) -> list[GroupStatus]:
        now = anyio.current_time()
        statuses = []
        for g in self.groups:
            missed = self.scheduler.missed(g)
            statuses.append(
                GroupStatus(
                    g.name,
                    g.interval,
                    g.offset,
                    len(g.rules),
                    len(g.fetches),
                    missed.in_last_minute(now),
                    missed.total,
                )
            )
        return statuses

    def unloaded_plugins(self) -> Iterator[UnloadedPlugin]:
        loaded = self.catalog.plugins
        for rule in self.rules:
            for level in (rule.config.base, rule.config.hard):
                if level is not None and level.plugin is not None and level.plugin not in loaded:
                    problem = self.catalog.problem_for(level.plugin)
                    reason = None if problem is None else problem.reason
                    yield UnloadedPlugin(rule.name, level.plugin, reason)

    def rule_series(self) -> Iterator[RuleSeries]:
        for rule in self.rules:
            summary = RuleSeries.of(rule)
            if summary is not None:
                yield summary

    def alerts(self) -> Iterator[ActiveAlert]:
        for rule in self.rules:
            yield from rule.alerts()

    def rules_without_data(self) -> Mapping[str, bool]:
        return {one.name: one.no_data.active for one in self.runtimes if one.no_data is not None}

    def plugin_counts(self) -> PluginCounts:
        problems = self.catalog.problems
        unconfigured = sum(1 for problem in problems if problem.unconfigured)
        return PluginCounts(len(self.catalog.plugins), len(problems) - unconfigured, unconfigured)

    def acting(self) -> bool:
        return self.election is None or self.election.acting()

    def status(self, selection: Selection | None = None) -> StatusDocument:
        """The ``/api/status`` document: every rule, its series (those ``selection`` lists)
        and their states."""
        from .._surface import Selection, governor_doc, status_snapshot

        snapshot = status_snapshot(
            self.rules,
            self.fetch_statuses(),
            anyio.current_time(),
            ready=self.ready(),
            started_mono=self.started,
            version=__version__,
            no_data={one.name: one.no_data for one in self.runtimes if one.no_data is not None},
            evaluations={
                one.name: one.last_evaluation
                for one in self.runtimes
                if one.last_evaluation is not None
            },
            errors={one.name: one.last_error for one in self.runtimes if one.last_error},
            selection=selection or Selection(),
            groups=self.group_statuses(),
        )
        election = self.election
        snapshot["leader_election"] = (
            {"enabled": False, "acting": True}
            if election is None
            else {
                "enabled": True,
                "acting": election.acting(),
                "identity": election.identity,
                "leader": election.holder,
            }
        )
        snapshot["plugin_calls"] = {
            "in_flight": self.runner.in_flight,
            "queued": queued_calls(),
            "queue_limit": QUEUE_LIMIT,
            "threads": PLUGIN_THREADS,
        }
        snapshot["governor"] = governor_doc(self.governor, time.time())
        return snapshot

    async def governor_ready(self) -> bool:
        with anyio.move_on_after(GOVERNOR_READY_WAIT):
            while not self.governor_restored:
                await anyio.sleep(0.02)
        return self.governor_restored

    async def governor_changed(self) -> None:
        if self.writer is not None:
            await self.writer.flush()
