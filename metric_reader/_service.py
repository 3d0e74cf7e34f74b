"""The scheduler: evaluates every group on a steady cadence and runs the actions rules hand
out.

One task per group (``_sources._groups``: the rules of one source and interval). Its first
evaluation is at start; the next ones on the group's grid, ``offset + k * interval`` from
the start, computed from the start and never summed, so there is no drift. All the reads of
a group run at its tick and every rule is evaluated at the tick. When a tick overruns, the
ticks it overran are skipped, never queued, and counted as missed evaluations. Plugin calls
run in a task group of their own, so however slow a plugin is, polling keeps its pace. On
SIGTERM or SIGINT polling stops, running calls get ``grace`` seconds to finish, and ``run``
returns.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import time
from collections.abc import Callable, Collection, Hashable, Iterator, Mapping
from typing import TYPE_CHECKING

import anyio
import httpx
from anyio.abc import TaskGroup, TaskStatus
from loguru import logger
from prometheus_client import CollectorRegistry

from . import __version__
from ._actions import Dispatched, PluginCatalog, dispatch
from ._cluster._adoption import rules_elector
from ._cluster._election import ActionRecord, LeaderElector
from ._cluster._kube import InCluster
from ._config import Settings
from ._core._durations import format_duration
from ._core._exceptions import ConfigError, FetchError, FetchTimeout, QueueTimeout
from ._core._samples import Sample
from ._core._throttle import Throttle
from ._engine import (
    Action,
    ActiveAlert,
    Deliveries,
    NoData,
    Rule,
    admit,
    carry_over,
    format_series,
    make_rule,
    recent_shares,
    revision,
)
from ._http import make_client
from ._sources._fetches import Fetch, fetch_timeout
from ._sources._first_read import check_expressions
from ._sources._groups import Group, build_groups
from ._sources._prometheus_kind import PROMETHEUS
from ._surface._metrics import ServiceMetrics
from ._surface._selection import Selection
from ._surface._status import status_snapshot
from ._surface._status_doc import StatusDocument
from ._surface._view import (
    FetchStatus,
    GroupStatus,
    PluginCounts,
    RuleSeries,
    UnloadedPlugin,
    fetched_recently,
)

if TYPE_CHECKING:
    from ._cluster._persist import StateWriter

SHUTDOWN_GRACE = 10.0


def next_tick(start: float, index: int, interval: float, now: float) -> tuple[int, int]:
    """The index k > ``index`` of the first tick ``start + k * interval`` after ``now``, and
    how many ticks were skipped to get there (a late tick is skipped, not queued). Ticks are
    computed from the start, never summed, so they stay on the grid for any number of polls."""
    following = max(index + 1, math.floor((now - start) / interval))
    while start + following * interval <= now:
        following += 1
    return following, following - index - 1


SIGHUP_IGNORED = "SIGHUP received before the service ran: it started with the files as they are"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)
"""What the service listens for: SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the
configuration, as Prometheus and most daemons do (never an unclean stop: a hang-up of the
terminal must not end the watching)."""
RESTART_SETTINGS = (
    "listen_address",
    "state_file",
    "dry_run",
    "shard_count",
    "shard_index",
    "election",
)
"""Settings a reload cannot change in a running service: they take effect at a restart."""

Reloader = Callable[[], tuple[Settings, PluginCatalog]]
EXPRESSION_TIMEOUT = 5.0
"""Seconds to ask Prometheus about the rule files' expressions: at start, in ``check`` and
at a reload."""


class EarlySignals:
    """Remembers SIGTERM or SIGINT arriving before the event loop listens for signals, and
    ignores SIGHUP (logged once the service runs).

    An orchestrator may stop a pod at any moment, start-up included; that must be a clean
    stop too. Raising KeyboardInterrupt from a handler is not safe for this: one that lands
    inside an ``exec`` (dataclasses use it while modules import) makes CPython exit by
    SIGINT even when the exception is caught.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.hangups = 0

    @classmethod
    def install(cls) -> EarlySignals:
        early = cls()
        for signum in SIGNALS:
            signal.signal(signum, early._note)
        return early

    def _note(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self.hangups += 1
        else:
            self.received = signum

    def log_hangups(self) -> None:
        if self.hangups:
            logger.bind(signal="SIGHUP", count=self.hangups).warning(SIGHUP_IGNORED)
            self.hangups = 0


class Service:
    """The running service: a poll task per fetch feeding its rules, the plugin calls
    they hand out, and (when configured) the state file and the leader election."""

    def __init__(
        self,
        settings: Settings,
        catalog: PluginCatalog,
        cluster: InCluster | None = None,
        reloader: Reloader | None = None,
    ) -> None:
        """``cluster``: where the Kubernetes API is, for leader election (when enabled);
        ``reloader``: reads the configuration again (SIGHUP, ``POST /-/reload``), or raises
        ``ConfigError``."""
        self.settings = settings
        self.catalog = catalog
        self.reloader = reloader
        self._reload_lock: anyio.Lock | None = None
        self._restart: anyio.Event | None = None
        self._calls: TaskGroup | None = None
        self._watch_scope: anyio.CancelScope | None = None
        self.deliveries = Deliveries(settings.routes)
        self.metrics = ServiceMetrics()
        self.rules: list[Rule] = []
        self._by_name: dict[str, Rule] = {}
        self.no_data: dict[str, NoData] = {}
        self.groups: list[Group] = []
        self._install([make_rule(config) for config in settings.rules])
        self.started = time.monotonic()
        self._in_flight = 0
        self._idle = anyio.Event()
        self.writer: StateWriter | None = None
        if settings.state_file is not None:
            from ._cluster._persist import StateFile, StateWriter  # only with STATE_FILE

            self.writer = StateWriter(
                StateFile(settings.state_file), self.rules, dry_run=settings.dry_run
            )
        self.election: LeaderElector | None = None
        if settings.election is not None and cluster is not None:
            self.election = rules_elector(
                settings.election, cluster, self._by_name, self._state_changed
            )

    def _install(self, rules: list[Rule], kept: Collection[str] = ()) -> None:
        """Take ``rules`` (and ``self.settings``) as what runs: the groups that read them and
        what is kept per rule. The lists and dicts are changed in place: the state writer and
        the election hold them. A rule ``kept`` over a reload keeps its no-data tracker; a
        read kept over it (same description) keeps when it last succeeded or failed."""
        settings = self.settings
        self.rules[:] = rules
        for rule, share in zip(rules, recent_shares(len(rules)), strict=True):
            rule.keep_recent(share)
        self._by_name.clear()
        self._by_name.update((rule.name, rule) for rule in rules)
        old_reads = {fetch.description: fetch for fetch in self.fetches}
        self.groups = build_groups(
            settings.rules,
            settings.max_concurrent_queries,
            settings.max_response_bytes,
            settings.batch_selectors,
        )
        for fetch in self.fetches:
            before = old_reads.get(fetch.description)
            if before is not None:
                fetch.last_success, fetch.last_error = before.last_success, before.last_error
        for group in self.groups:  # shown from the start, at 0
            self.metrics.evaluations.labels(group.name)
            self.metrics.evaluations_missed.labels(group.name)
        self._series_limit_errors = {
            rule.name: Throttle(fetch.description, "ERROR", "series limit exceeded")
            for fetch in self.fetches
            for rule in fetch.rules
        }
        self._read_errors = {
            rule.name: Throttle(fetch.description, "ERROR", f"read failed for rule {rule.name!r}")
            for fetch in self.fetches
            for rule in fetch.rules
        }
        no_data = {
            rule.name: (self.no_data[rule.name] if rule.name in kept else None)
            or NoData(rule.name, rule.expression)
            for rule in rules
        }
        self.no_data.clear()
        self.no_data.update(no_data)

    @property
    def fetches(self) -> list[Fetch]:
        """Every read of every group."""
        return [fetch for group in self.groups for fetch in group.fetches]

    def rules_of(self, fetch: Fetch) -> list[Rule]:
        """The rules ``fetch`` is read for, in its order, as long as they are configured
        as when the read was planned: a read that started before a reload may answer after
        it, and what it read is not for a rule that changed or was removed."""
        rules = []
        for config in fetch.rules:
            rule = self._by_name.get(config.name)
            if rule is not None and (rule.config is config or rule.config == config):
                rules.append(rule)
        return rules

    def _state_changed(self) -> None:
        if self.writer is not None:
            self.writer.changed()

    # --- what the HTTP endpoints read (``_surface._view.ServiceView``) -------------------------

    @property
    def registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def rule_names(self) -> Collection[str]:
        return self._by_name.keys()

    def generation(self) -> Hashable:
        return (
            revision(self.rules),
            tuple((fetch.last_success, fetch.last_error) for fetch in self.fetches),
            tuple((one.active, one.empty_polls) for one in self.no_data.values()),
            tuple(group.missed.total for group in self.groups),
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
            FetchStatus(t.description, t.interval, len(t.rules), t.last_success, t.last_error)
            for t in self.fetches
        ]

    def group_statuses(self) -> list[GroupStatus]:
        now = anyio.current_time()
        return [
            GroupStatus(
                g.name,
                g.interval,
                g.offset,
                len(g.rules),
                len(g.fetches),
                g.missed.in_last_minute(now),
                g.missed.total,
            )
            for g in self.groups
        ]

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
        return {name: tracker.active for name, tracker in self.no_data.items()}

    def plugin_counts(self) -> PluginCounts:
        problems = self.catalog.problems
        unconfigured = sum(1 for problem in problems if problem.unconfigured)
        return PluginCounts(len(self.catalog.plugins), len(problems) - unconfigured, unconfigured)

    def acting(self) -> bool:
        return self.election is None or self.election.acting()

    def status(self, selection: Selection | None = None) -> StatusDocument:
        """The ``/api/status`` document: every rule, its series (those ``selection`` lists)
        and their states."""
        snapshot = status_snapshot(
            self.rules,
            self.fetch_statuses(),
            anyio.current_time(),
            ready=self.ready(),
            started_mono=self.started,
            version=__version__,
            no_data=self.no_data,
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
        return snapshot

    async def run(self, grace: float = SHUTDOWN_GRACE, early: EarlySignals | None = None) -> None:
        """Poll until SIGTERM or SIGINT, then let running plugin calls finish.

        A second signal during the grace period stops at once. SIGHUP reloads.
        """
        async with anyio.create_task_group() as calls:
            self._calls = calls
            polling = anyio.CancelScope()
            await calls.start(self._watch_signals, polling, calls.cancel_scope, early)
            if self.writer is not None:
                await self.writer.restore()  # before the first poll: timers go on where they were
                calls.start_soon(self.writer.run)
            self._watch_plugins()
            if self.election is not None:
                calls.start_soon(self.election.run)
            with polling:
                while True:  # one turn per configuration: a reload ends the turn
                    self._restart = anyio.Event()
                    self._log_batching()
                    async with (
                        make_client(self.settings.client) as client,
                        anyio.create_task_group() as pollers,
                    ):
                        for group in self.groups:
                            pollers.start_soon(self._evaluate_forever, client, group, calls)
                        await self._restart.wait()
                        pollers.cancel_scope.cancel()
            if self._in_flight:
                logger.bind(calls=self._in_flight).info(
                    "waiting up to {} for running plugin calls", format_duration(grace)
                )
                with anyio.move_on_after(grace):
                    while self._in_flight:
                        await self._idle.wait()
                        self._idle = anyio.Event()
                if self._in_flight:
                    logger.bind(calls=self._in_flight).warning("abandoning plugin calls")
            calls.cancel_scope.cancel()
        if self.election is not None:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(self.election.timing.retry_period):
                    await self.election.release()
                await self.election.client.aclose()
        if self.writer is not None:
            with anyio.CancelScope(shield=True):
                await self.writer.flush()
        logger.info("stopped")

    async def _watch_signals(
        self,
        polling: anyio.CancelScope,
        everything: anyio.CancelScope,
        early: EarlySignals | None,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with anyio.open_signal_receiver(*SIGNALS) as signals:
            task_status.started()
            if early is not None:
                early.log_hangups()  # before the loop listened: nothing to reload yet
                if early.received is not None:
                    logger.bind(signal=signal.Signals(early.received).name).info("stopping")
                    polling.cancel()
            async for signum in signals:
                name = signal.Signals(signum).name
                if signum == signal.SIGHUP:
                    logger.bind(signal=name).info("reloading the configuration")
                    await self.reload()
                elif not polling.cancel_called:
                    logger.bind(signal=name).info("stopping")
                    polling.cancel()
                else:
                    logger.bind(signal=name).warning("stopping now, abandoning plugin calls")
                    everything.cancel()

    def _watch_plugins(self) -> None:
        """Watch PLUGIN_DIR for drop-in changes (the current catalog's), until a reload
        brings another catalog."""
        if self._watch_scope is not None:
            self._watch_scope.cancel()
            self._watch_scope = None
        calls = self._calls
        if self.settings.plugin_dir is None or calls is None:
            return
        scope = self._watch_scope = anyio.CancelScope()
        catalog = self.catalog

        async def watch() -> None:
            with scope:
                await catalog.watch()

        calls.start_soon(watch)

    async def reload(self) -> str | None:
        """Read the configuration again and run it: rules whose definition did not change
        keep their state; changed and removed rules resolve what had fired; the groups start
        again. A configuration with errors is refused (each line logged) and the running one
        goes on. Returns None, or why the reload was refused."""
        if self._reload_lock is None:
            self._reload_lock = anyio.Lock()
        async with self._reload_lock:
            if self.reloader is None:
                return "this service was started without a way to reload its configuration"
            try:
                settings, catalog = self.reloader()
                bad, warnings = await check_expressions(settings, EXPRESSION_TIMEOUT)
                for warning in warnings:
                    logger.warning("{}", warning)
                if bad:
                    raise ConfigError(*bad)
            except Exception as exc:  # a bug must not end the watching either
                problems = (
                    exc.problems
                    if isinstance(exc, ConfigError)
                    else (f"{type(exc).__name__}: {exc}",)
                )
                if not isinstance(exc, ConfigError):
                    logger.opt(exception=exc).debug("unexpected error while reloading")
                for line in problems or (str(exc),):
                    logger.error("reload refused, the running configuration goes on: {}", line)
                self.metrics.config_reload_successful.set(0)
                return "\n".join(problems)
            self._apply(settings, catalog)
            self.metrics.config_reload_successful.set(1)
            self.metrics.config_reload_time.set_to_current_time()
            return None

    def _apply(self, settings: Settings, catalog: PluginCatalog) -> None:
        old = self.settings
        if settings == old:  # nothing to restart: a reload asked again and again costs nothing
            if catalog.installed != self.catalog.installed:
                # A package installed or removed since: its plugins, read again (an upgraded
                # one's modules, imported already, stay as they are until a restart).
                self.catalog = catalog
                self._watch_plugins()
                logger.info(
                    "configuration reloaded: unchanged, every rule goes on as it was; the "
                    "installed packages' plugins changed and are used from now on"
                )
                return
            logger.info("configuration reloaded: unchanged, every rule goes on as it was")
            return
        unchanged = {}
        for name in RESTART_SETTINGS:
            before, after = getattr(old, name), getattr(settings, name)
            if before != after:
                logger.bind(setting=name).warning(
                    "{} changed: it takes effect at the next restart; keeping {!r}", name, before
                )
                unchanged[name] = before
        self.settings = dataclasses.replace(settings, **unchanged)
        self.deliveries.routes = self.settings.routes
        before = {id(rule) for rule in self.rules}
        rules, retired = carry_over(self.rules, settings.rules)
        kept = {rule.name for rule in rules if id(rule) in before}
        now = anyio.current_time()
        for rule in retired:
            for action in rule.retire(now):
                self._start_action(rule, action)
        self._install(rules, kept)
        if catalog is not self.catalog:
            self.catalog = catalog
            self._watch_plugins()
        self._state_changed()
        logger.bind(kept=len(kept), new=len(rules) - len(kept), retired=len(retired)).info(
            "configuration reloaded: {} rules kept as they were, {} new or changed, {} "
            "changed or removed",
            len(kept),
            len(rules) - len(kept),
            len(retired),
        )
        if self._restart is not None:
            self._restart.set()

    def _start_action(self, rule: Rule, action: Action) -> None:
        if self._calls is None:  # not running: nothing can run it
            rule.give_back(action)
            return
        self._in_flight += 1
        self._calls.start_soon(self._run_action, rule, action)

    def _log_batching(self) -> None:
        """Say how many queries serve the rules of each Prometheus: ``4 queries serve 1,000
        rules``."""
        prometheus = [group for group in self.groups if group.kind is PROMETHEUS]
        for endpoint in dict.fromkeys(group.where for group in prometheus):
            groups = [group for group in prometheus if group.where == endpoint]
            queries = sum(len(group.fetches) for group in groups)
            rules = sum(len(group.rules) for group in groups)
            batching = "on" if self.settings.batch_selectors else "off"
            logger.bind(endpoint=endpoint, batch_selectors=batching).info(
                "{} quer{} serve{} {:,} rule{}",
                queries,
                "y" if queries == 1 else "ies",
                "s" if queries == 1 else "",
                rules,
                "" if rules == 1 else "s",
            )

    async def _evaluate_forever(
        self, client: httpx.AsyncClient, group: Group, calls: TaskGroup
    ) -> None:
        interval = group.interval
        timeout = fetch_timeout(interval)
        logger.bind(group=group.name, rules=len(group.rules), reads=len(group.fetches)).info(
            "polling every {}", format_duration(interval)
        )
        start = anyio.current_time()
        # The grid: tick k at origin + k * interval. The first evaluation is at start (tick 0
        # stands for it), so a sidecar reads and is ready at once, then keeps to the grid.
        origin = start + group.offset - interval
        index, tick = 0, start
        while True:
            await self.evaluate_group(client, group, timeout, calls, tick)
            now = anyio.current_time()
            following, skipped = next_tick(origin, index, interval, now)
            if index == 0:  # the evaluation at start was an extra one: the grid's first tick
                skipped = max(skipped - 1, 0)  # comes at the offset, which it may overlap
            index = following
            if skipped:
                self._missed(
                    group,
                    now,
                    skipped * len(group.rules),
                    f"an evaluation took longer than the {format_duration(interval)} interval,"
                    f" so {skipped} tick{'s were' if skipped > 1 else ' was'} skipped",
                )
            tick = origin + index * interval
            await anyio.sleep_until(tick)

    async def evaluate_group(
        self,
        client: httpx.AsyncClient,
        group: Group,
        timeout: float,
        calls: TaskGroup,
        tick: float,
    ) -> None:
        """Read every fetch of ``group`` (``group.concurrency`` at a time) within
        ``timeout`` of ``tick``, evaluating each fetch's rules at ``tick`` as its read
        answers. A read that cannot start in time is not started: its rules' evaluations are
        missed, and the next tick starts with it."""
        fetches = group.fetches
        count = len(fetches)
        first = group.next_fetch % count
        order = fetches[first:] + fetches[:first]
        deadline = tick + timeout
        started = 0
        late: list[Fetch] = []

        async def worker() -> None:
            nonlocal started
            while started < count:
                left = deadline - anyio.current_time()
                if left <= 0:
                    return
                fetch = order[started]
                # The first reads have the poll's whole time; later ones what is left of it.
                on_time = started < group.concurrency
                budget = timeout if on_time else left
                started += 1
                outcome = await self.poll_once(
                    client, fetch, budget, calls, tick, group, late_start=not on_time
                )
                if isinstance(outcome, QueueTimeout) or (
                    isinstance(outcome, FetchTimeout) and not on_time
                ):
                    late.append(fetch)

        async with anyio.create_task_group() as workers:
            for _ in range(min(group.concurrency, count)):
                workers.start_soon(worker)
        group.next_fetch = (first + started) % count
        now = anyio.current_time()
        not_started = order[started:]
        if late or not_started:
            missed = sum(len(fetch.rules) for fetch in (*late, *not_started))
            reasons = []
            if not_started:
                reasons.append(
                    f"{len(not_started)} of {count} reads could not start within {timeout:g}s, "
                    f"{group.concurrency} at a time"
                )
            if late:
                reasons.append(
                    f"{len(late)} read{'s' if len(late) > 1 else ''} started late in the tick "
                    f"or waited for a free request slot, and did not finish within {timeout:g}s"
                )
            self._missed(group, now, missed, "; ".join(reasons))
        else:
            group.missed.on_time(now)

    def _missed(self, group: Group, now: float, count: int, reason: str) -> None:
        self.metrics.evaluations_missed.labels(group.name).inc(count)
        group.missed.add(now, count, reason)

    async def poll_once(
        self,
        client: httpx.AsyncClient,
        fetch: Fetch,
        timeout: float,
        calls: TaskGroup,
        tick: float | None = None,
        group: Group | None = None,
        *,
        late_start: bool = False,
    ) -> Exception | None:
        """Read ``fetch`` once and evaluate its rules at ``tick``, the moment the poll was
        scheduled (like Prometheus' evaluation timestamp), not when the answer arrived: a
        duration or backoff that is a multiple of the interval is reached on its tick.

        Returns why the read failed, or None. A read of a ``group`` that ran out of time
        because other reads used it (it waited for a request slot, or started late in the
        tick: ``late_start``) is the group's overload, reported by the group (one warning a
        minute for all its reads), not here."""
        started = anyio.current_time()
        self.metrics.polls.labels(fetch.description).inc()
        try:
            fetched = await fetch.perform(client, timeout)
        except Exception as exc:
            # FetchError is what a source says; anything else is a bug in a library or in
            # ours, and still must not stop this fetch's polling or any other's.
            if not isinstance(exc, FetchError):
                logger.opt(exception=exc).bind(target=fetch.description).debug("unexpected")
            error = str(exc) if isinstance(exc, FetchError) else f"{type(exc).__name__}: {exc}"
            self.metrics.poll_errors.labels(fetch.description).inc()
            overload = isinstance(exc, QueueTimeout) or (
                late_start and isinstance(exc, FetchTimeout)
            )
            if not overload or group is None:
                fetch.errors.report(started, error)
            fetch.last_error = error
            return exc
        finally:
            self.metrics.poll_seconds.labels(fetch.description).observe(
                anyio.current_time() - started
            )
        fetch.last_success, fetch.last_error = anyio.current_time(), None
        failed_polls = fetch.errors.clear()
        if failed_polls:
            logger.bind(target=fetch.description, failed_polls=failed_polls).info("poll recovered")
        for warning in fetched.warnings:
            fetch.warnings.report(started, warning)
        if not fetched.warnings:
            fetch.warnings.clear()
        now = anyio.current_time()
        logger.bind(target=fetch.description, seconds=round(now - started, 4)).debug("polled")
        rules = self.rules_of(fetch)
        before = revision(rules)
        acting = self.election is None or self.election.acting()
        at = started if tick is None else tick
        late = 0
        for rule in rules:
            failed = fetched.failed.get(rule.name)
            if failed is not None:  # its part of a batched read: its state stays as it was
                if isinstance(failed, QueueTimeout) and group is not None:
                    late += 1
                else:
                    self._read_errors[rule.name].report(started, str(failed))
                continue
            self._read_errors[rule.name].clear()
            samples = fetched.samples.get(rule.name, [])
            if not self._within_series_limit(rule, samples, at):
                continue  # failed for this rule: its state stays as it was, like a failed poll
            self.no_data[rule.name].observe(at, len(samples))
            for action in rule.evaluate(at, samples, acting):
                self._in_flight += 1
                calls.start_soon(self._run_action, rule, action)
        if self.writer is not None and revision(rules) != before:
            self.writer.changed()
        if group is not None:
            self.metrics.evaluations.labels(group.name).inc(len(rules) - len(fetched.failed))
            if late:
                self._missed(
                    group, now, late, f"a read found no free request slot within {timeout:g}s"
                )
        return None

    def _within_series_limit(self, rule: Rule, samples: list[Sample], now: float) -> bool:
        errors = self._series_limit_errors[rule.name]
        problem = admit(rule, samples)
        if problem is None:
            errors.clear()
            return True
        self.metrics.series_limit_exceeded.labels(rule.name).inc()
        errors.report(now, problem)
        return False

    async def _run_action(self, rule: Rule, action: Action) -> None:
        ok = False
        record: ActionRecord | None = None
        try:
            if self.election is not None:
                count = action.fire_count + (action.kind != "resolve")
                record = await self.election.claim(
                    rule.name, action.level, action.labels, action.kind, count
                )
                if record is None:  # not the leader (any more): left owed, for the leader
                    rule.give_back(action)
                    return
            ok = await self._call_plugin(rule, action)
        finally:
            if self.election is None or record is not None:
                rule.finish(anyio.current_time(), action, ok)
            if record is not None and self.election is not None:
                self.election.outcome(record, ok)
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            self._state_changed()
        if ok and self.writer is not None:
            await self.writer.flush()  # a confirmed success is never run again after a restart

    async def _call_plugin(self, rule: Rule, action: Action) -> bool:
        ok = True
        for plugin_name in self.deliveries.pending(rule, action):
            event = rule.event(action, anyio.current_time(), plugin_name or "")
            log = logger.bind(
                rule=rule.name,
                series=format_series(rule.config.metric_name, action.labels),
                breach_level=action.level,
                kind=action.kind,
                value=action.value,
                threshold=event.threshold,
                breach_seconds=round(action.duration, 3),
            )
            settings = self.settings
            outcome = await dispatch(
                self.catalog,
                plugin_name,
                event,
                log,
                dry_run=settings.dry_run,
                timeout=settings.plugin_timeout,
            )
            self._record_call(outcome)
            if outcome.ok:
                self.deliveries.took(rule, action, plugin_name)
            ok = ok and outcome.ok
        self.deliveries.settle(rule, action, ok)
        return ok

    def _record_call(self, outcome: Dispatched) -> None:
        if outcome.plugin is None or outcome.result is None:
            return
        self.metrics.plugin_calls.labels(outcome.plugin, outcome.method, outcome.result).inc()
        if outcome.seconds is not None:
            self.metrics.plugin_call_seconds.labels(outcome.plugin, outcome.method).observe(
                outcome.seconds
            )
