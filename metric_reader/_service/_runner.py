"""The runner: runs the plugin calls rules owe, each in a task of its own.

An owed call (``_engine.OwedCall``) comes from the evaluation step. The runner claims it in
the Lease first when leader election is on (a replica that may not act gives it back: it
stays owed, for the leader), calls its plugins one after the other, counts each call,
settles it, and saves the state at once after a success, so that a confirmed call is never
run again after a restart. Calls run in the service's task group for them, so however slow
a plugin is, the groups keep their ticks.

A plugin call that timed out while its code runs on (``_actions.LateCall``) is not settled
at its timeout: the series level stays in flight until the code has returned or is
declared lost, so no retry, repeat or resolve of it runs at the same time. A rule changed
by a reload is a new rule, whose state cannot tell; so the runner also keeps the calls
running by rule, series, level and plugin, and a call for the same waits for the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.abc import TaskGroup

from .._actions import Dispatched, LateCall, PluginCatalog, dispatch, queued_calls
from .._config import Settings
from .._core import Labels, format_duration, logger
from .._engine import Call, OwedCall, format_series
from .._surface import ServiceMetrics

if TYPE_CHECKING:
    from .._cluster import ActionRecord, LeaderElector, StateWriter


class Configured(Protocol):
    """Where the runner finds the settings and plugins in use now (a reload changes them)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def catalog(self) -> PluginCatalog: ...


_Series = tuple[str, Labels, str, str | None]
"""A rule, series, level and plugin: at most one call of each runs at a time."""


class Runner:
    """Runs owed calls and knows how many are running."""

    def __init__(
        self,
        configured: Configured,
        metrics: ServiceMetrics,
        election: LeaderElector | None,
        writer: StateWriter | None,
        changed: Callable[[], None],
    ) -> None:
        """``changed``: called after every call, which changed its rule's state."""
        self._configured = configured
        self._metrics = metrics
        self._election = election
        self._writer = writer
        self._changed = changed
        self.calls: TaskGroup | None = None
        """Where calls run while the service runs."""
        self.in_flight = 0
        """Calls handed out and not settled: waiting for a plugin thread, running, or
        timed out and waited for (``_actions.LateCall``)."""
        self._idle = anyio.Event()
        self._running: dict[_Series, anyio.Event] = {}
        """The calls running, by rule, series, level and plugin: set when one ends."""
        metrics.plugin_calls_queued.set_function(queued_calls)

    def start(self, call: Call, calls: TaskGroup | None = None) -> None:
        """Run ``call`` in ``calls``, by default the service's task group for them; when the
        service is not running, nothing can run it: it stays owed."""
        group = calls if calls is not None else self.calls
        if group is None:
            call.give_back()
            return
        self.in_flight += 1
        group.start_soon(self._run, call)

    async def drain(self, grace: float) -> None:
        """Let the running calls finish, for ``grace`` seconds at most."""
        if not self.in_flight:
            return
        logger.bind(calls=self.in_flight).info(
            "waiting up to {} for running plugin calls", format_duration(grace)
        )
        with anyio.move_on_after(grace):
            while self.in_flight:
                await self._idle.wait()
                self._idle = anyio.Event()
        if self.in_flight:
            logger.bind(calls=self.in_flight).warning("abandoning plugin calls")

    async def _run(self, call: Call) -> None:
        election = self._election if isinstance(call, OwedCall) else None
        ok = False
        record: ActionRecord | None = None
        try:
            if election is not None and isinstance(call, OwedCall):
                action = call.action
                count = action.fire_count + (action.kind != "resolve")
                record = await election.claim(
                    call.rule.name, action.level, action.labels, action.kind, count
                )
                if record is None:  # not the leader (any more): left owed, for the leader
                    call.give_back()
                    return
            await self._call_plugins(call)
        finally:
            if election is None or record is not None:
                ok = call.settle(anyio.current_time())
            if record is not None and election is not None:
                election.outcome(record, ok)
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()
            self._changed()
        if ok and self._writer is not None:
            await self._writer.flush()  # a confirmed success is never run again after a restart

    async def _call_plugins(self, call: Call) -> None:
        rule = call.rule
        labels, level = (
            (call.action.labels, call.action.level) if isinstance(call, OwedCall) else ((), "storm")
        )
        async with anyio.create_task_group() as late:
            for plugin_name in call.plugins():
                series: _Series = (rule.name, labels, level, plugin_name)
                await self._hold(series)
                try:
                    outcome = await self._dispatch(call, plugin_name)
                except BaseException:
                    self._release(series)
                    raise
                self._record(outcome)
                if outcome.late is None:
                    call.report(plugin_name, outcome.ok, outcome.result, outcome.error)
                    self._release(series)
                else:  # reported once its code has ended; the next plugins need not wait
                    late.start_soon(self._report_late, call, plugin_name, series, outcome.late)

    async def _report_late(
        self, call: Call, plugin_name: str | None, series: _Series, running: LateCall
    ) -> None:
        try:
            ended = await running.ended()
            after = "its code ended later and " + ("did the action" if ended else "failed")
            call.report(plugin_name, ended, "timeout", after)
        finally:
            self._release(series)

    async def _hold(self, series: _Series) -> None:
        """Wait until no call of ``series`` runs (one of the rule a reload replaced, or of
        the same plugin named twice by the routes), then take it."""
        while (running := self._running.get(series)) is not None:
            await running.wait()
        self._running[series] = anyio.Event()

    def _release(self, series: _Series) -> None:
        self._running.pop(series).set()

    async def _dispatch(self, call: Call, plugin_name: str | None) -> Dispatched:
        rule = call.rule
        event = call.event(plugin_name, anyio.current_time())
        if isinstance(call, OwedCall):
            action = call.action
            log = logger.bind(
                rule=rule.name,
                series=format_series(rule.config.metric_name, action.labels),
                breach_level=action.level,
                kind=action.kind,
                value=action.value,
                threshold=event.threshold,
                breach_seconds=round(action.duration, 3),
            )
        else:
            log = logger.bind(rule=rule.name, kind=event.kind, value=event.value)
        settings = self._configured.settings
        return await dispatch(
            self._configured.catalog,
            plugin_name,
            event,
            log,
            dry_run=settings.dry_run,
            timeout=settings.plugin_timeout,
        )

    def _record(self, outcome: Dispatched) -> None:
        if outcome.plugin is None or outcome.result is None:
            return
        metrics = self._metrics
        metrics.plugin_calls.labels(outcome.plugin, outcome.method, outcome.result).inc()
        if outcome.seconds is not None:
            metrics.plugin_call_seconds.labels(outcome.plugin, outcome.method).observe(
                outcome.seconds
            )
