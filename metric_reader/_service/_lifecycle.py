"""The service's life: start, run, reload, stop.

At start the state file (when configured) is restored before the first evaluation, and the
signal handlers, the plugin watching, the configuration's watching and the leader election
start. The scheduler then runs the groups of the configuration. A reload (SIGHUP, ``POST
/-/reload``, a change of ``CONFIG_FILE`` or a rule file on disk) reads the configuration
in a worker thread, so that polls, probes and actions go on meanwhile, then
installs it: the groups whose rules or settings changed start again, the others go on on
their grid; new client settings (TLS, credentials) start every group again with a new
client (another turn of the scheduler). On SIGTERM or SIGINT the groups stop, running
plugin calls get ``grace`` seconds to finish, the Lease is given up, the state is saved,
and ``run`` returns.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable, Collection

import anyio
import anyio.to_thread
from anyio.abc import TaskStatus

from .._actions import PluginCatalog
from .._config import Settings
from .._core import ConfigError, format_duration, logger
from .._engine import Rule, carry_over
from .._http import make_client
from .._sources import PROMETHEUS, build_groups, check_expressions
from ._config_watch import WATCH_INTERVAL, ConfigWatch
from ._parts import ServiceParts

SHUTDOWN_GRACE = 10.0
SIGHUP_IGNORED = "SIGHUP received before the service ran: it started with the files as they are"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)
"""What the service listens for: SIGTERM and SIGINT stop it cleanly; SIGHUP reloads the
configuration, as Prometheus and most daemons do (never an unclean stop: a hang-up of the
terminal must not end the watching)."""
RESTART_SETTINGS = (
    "listen_address",
    "enable_lifecycle",
    "approval_token_file",
    "state_file",
    "history_file",
    "history_retention",
    "dry_run",
    "shard_count",
    "shard_index",
    "election",
)
"""Settings a reload cannot change in a running service: they take effect at a restart."""

Reloader = Callable[[], tuple[Settings, PluginCatalog]]
"""Reads the configuration again, or raises ``ConfigError``; called in a worker thread."""
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


class Lifecycle(ServiceParts):
    """Starts, reloads and stops the service's parts."""

    reloader: Reloader | None
    """Reads the configuration again (SIGHUP, ``POST /-/reload``), or raises
    ``ConfigError``; called in a worker thread."""
    config_watch: ConfigWatch
    """What the configuration's files held when it was read (``WATCH_CONFIG``)."""
    _reload_lock: anyio.Lock | None = None
    _restart: anyio.Event | None = None
    _watch_scope: anyio.CancelScope | None = None
    _hangup: anyio.Event
    """Set by a SIGHUP: a reload is wanted that has not started yet."""

    def _install(self, rules: list[Rule], kept: Collection[str] = ()) -> None:
        """Take ``rules`` (and ``self.settings``) as what runs: the groups that fetch for
        them and what is kept per rule. A rule ``kept`` over a reload keeps its no-data
        tracker; a group planned as before is kept as it runs; a new fetch that replaces one
        of the same description keeps when it last succeeded or failed."""
        settings = self.settings
        old_fetches = {fetch.description: fetch for fetch in self.fetches}
        self.groups = build_groups(
            settings.rules,
            settings.max_concurrent_queries,
            settings.max_response_bytes,
            settings.batch_selectors,
            running=self.groups,
            batch_expressions=settings.batch_expressions,
        )
        for fetch in self.fetches:
            before = old_fetches.get(fetch.description)
            if before is not None:
                fetch.last_success, fetch.last_error = before.last_success, before.last_error
        for group in self.groups:  # shown from the start, at 0
            self.metrics.evaluations.labels(group.name)
            self.metrics.evaluations_missed.labels(group.name)
        self.runtimes.install(rules, self.fetches, kept)
        self.governor.configure(
            settings.limits,
            settings.plugin_guards,
            rules,
            settings.time_intervals,
            settings.inhibit_rules,
        )

    async def run(self, grace: float = SHUTDOWN_GRACE, early: EarlySignals | None = None) -> None:
        """Poll until SIGTERM or SIGINT, then let running plugin calls finish.

        A second signal during the grace period stops at once. SIGHUP reloads.
        """
        async with anyio.create_task_group() as calls:
            self.runner.calls = calls
            polling = anyio.CancelScope()
            await calls.start(self._watch_signals, polling, calls.cancel_scope, early)
            if self.writer is not None:
                await self.writer.restore()  # before the first poll: timers go on where they were
                calls.start_soon(self.writer.run)
            self.governor_restored = True
            self._watch_plugins()
            watching = anyio.CancelScope()
            if self.reloader is not None:
                calls.start_soon(self._watch_config, watching)
            if self.election is not None:
                calls.start_soon(self.election.run)
            with polling:
                while True:  # one turn per configuration: a reload ends the turn
                    self._restart = anyio.Event()
                    self._log_batching()
                    async with make_client(self.settings.client) as client:
                        await self.scheduler.run(client, calls, self._restart)
            watching.cancel()  # stopping: no file change reloads any more
            await self.runner.drain(grace)
            calls.cancel_scope.cancel()
        if self.election is not None:
            with anyio.CancelScope(shield=True):
                with anyio.move_on_after(self.election.timing.retry_period):
                    await self.election.release()
                await self.election.client.aclose()
        if self.writer is not None:
            with anyio.CancelScope(shield=True):
                await self.writer.flush()
        self.history.close()
        logger.info("stopped")

    async def _watch_signals(
        self,
        polling: anyio.CancelScope,
        everything: anyio.CancelScope,
        early: EarlySignals | None,
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        reloading = anyio.CancelScope()
        self._hangup = anyio.Event()
        with anyio.open_signal_receiver(*SIGNALS) as signals:
            async with anyio.create_task_group() as hangups:
                hangups.start_soon(self._reload_on_hangups, reloading)
                task_status.started()
                if early is not None:
                    early.log_hangups()  # before the loop listened: nothing to reload yet
                    if early.received is not None:
                        logger.bind(signal=signal.Signals(early.received).name).info("stopping")
                        polling.cancel()
                        reloading.cancel()
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum == signal.SIGHUP and polling.cancel_called:
                        logger.bind(signal=name).info("stopping: the configuration is not reloaded")
                    elif signum == signal.SIGHUP:
                        logger.bind(signal=name).info("reloading the configuration")
                        self._hangup.set()
                    elif not polling.cancel_called:
                        logger.bind(signal=name).info("stopping")
                        polling.cancel()
                        reloading.cancel()  # a reload under way is abandoned
                    else:
                        logger.bind(signal=name).warning("stopping now, abandoning plugin calls")
                        everything.cancel()

    async def _reload_on_hangups(self, scope: anyio.CancelScope) -> None:
        """Reload after each SIGHUP, in the background, so that signals are still taken
        while a reload reads the configuration. SIGHUPs that come while a reload waits to
        start make that one reload: it reads the files as they are when it starts."""
        with scope:
            while True:
                await self._hangup.wait()
                self._hangup = anyio.Event()
                await self.reload()

    def _watch_plugins(self) -> None:
        """Watch PLUGIN_DIR for drop-in changes (the current catalog's), until a reload
        brings another catalog."""
        if self._watch_scope is not None:
            self._watch_scope.cancel()
            self._watch_scope = None
        calls = self.runner.calls
        if self.settings.plugin_dir is None or calls is None:
            return
        scope = self._watch_scope = anyio.CancelScope()
        catalog = self.catalog

        async def watch() -> None:
            with scope:
                await catalog.watch()

        calls.start_soon(watch)

    async def _watch_config(self, scope: anyio.CancelScope) -> None:
        """Reload when ``CONFIG_FILE`` or a rule file changed on disk (``_config_watch``),
        every ``WATCH_INTERVAL`` while ``WATCH_CONFIG`` is on: the same reload as SIGHUP's,
        refused the same way. Until ``scope`` is cancelled."""
        with scope:
            await self._watch_config_files()

    async def _watch_config_files(self) -> None:
        settings = self.settings
        if settings.config_file is None and not settings.rule_file_globs:
            return  # the environment alone, which a reload does not read again
        watch = self.config_watch
        if watch.loaded is None:
            watch.loaded = await anyio.to_thread.run_sync(watch.files.look, settings)
        if settings.watch_config:
            logger.bind(files=len(watch.loaded)).info(
                "watching CONFIG_FILE and the rule files for changes every {}",
                format_duration(WATCH_INTERVAL),
            )
        while True:
            await anyio.sleep(WATCH_INTERVAL)
            if not self.settings.watch_config:
                continue
            now = await anyio.to_thread.run_sync(watch.files.look, self.settings)
            if watch.due(now):
                changed = watch.changed(now)
                logger.bind(files=", ".join(changed)).info(
                    "{} changed on disk: reloading the configuration",
                    changed[0] if len(changed) == 1 else f"{len(changed)} files",
                )
                await self.reload()

    async def reload(self) -> str | None:
        """Read the configuration again and run it: rules whose identity did not change
        keep their state, under their new settings; removed rules, and rules of a changed
        identity, resolve what had fired; the groups whose
        rules or settings changed start again. A configuration with errors is refused (each
        line logged) and the running one goes on. Returns None, or why the reload was
        refused.

        The configuration is read, and the plugins loaded, in a worker thread (a plugin file
        may take up to ``PLUGIN_TIMEOUT`` to import): polls, probes and actions go on
        meanwhile. One reload at a time."""
        if self._reload_lock is None:
            self._reload_lock = anyio.Lock()
        async with self._reload_lock:
            reloader = self.reloader
            if reloader is None:
                return "this service was started without a way to reload its configuration"
            files = self.config_watch.files
            before = await anyio.to_thread.run_sync(files.look, self.settings)
            try:
                settings, catalog = await anyio.to_thread.run_sync(reloader, abandon_on_cancel=True)
                bad, warnings = await check_expressions(
                    settings, EXPRESSION_TIMEOUT, running=self.groups
                )
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
                self.config_watch.refused_at(before)
                return "\n".join(problems)
            self._apply(settings, catalog)
            self.metrics.config_reload_successful.set(1)
            self.metrics.config_reload_time.set_to_current_time()
            after = await anyio.to_thread.run_sync(files.look, self.settings)
            self.config_watch.reloaded(before, after)
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
        new_client = self.settings.client != old.client
        if new_client and self._restart is not None:
            self._restart.set()  # before the groups change: every group starts again
        self.step.routes = self.settings.routes
        carried = carry_over(self.rules, settings.rules)
        now = anyio.current_time()
        for rule in carried.retired:
            self.step.retire(rule, now, self.runner.start)
        for rule, config in carried.reconfigure:
            self.step.reconfigure(rule, config, now, self.runner.start)
        kept = {rule.name for rule in carried.unchanged}
        self._install(carried.rules, kept)
        if catalog is not self.catalog:
            self.catalog = catalog
            self._watch_plugins()
        self._state_changed()
        changed, retired = len(carried.reconfigure), len(carried.retired)
        new = len(carried.rules) - len(kept) - changed
        logger.bind(kept=len(kept), changed=changed, new=new, retired=retired).info(
            "configuration reloaded: {} rules kept as they were, {} kept with new settings, "
            "{} new, {} removed or replaced",
            len(kept),
            changed,
            new,
            retired,
        )
        if not new_client:
            self._log_batching()  # said at each turn's start too

    def _log_batching(self) -> None:
        """Say how many queries serve the rules of each Prometheus: ``4 queries serve 1,000
        rules``."""
        prometheus = [group for group in self.groups if group.kind is PROMETHEUS]
        for endpoint in dict.fromkeys(group.where for group in prometheus):
            groups = [group for group in prometheus if group.where == endpoint]
            queries = sum(len(group.fetches) for group in groups)
            rules = sum(len(group.rules) for group in groups)
            selectors = "on" if self.settings.batch_selectors else "off"
            expressions = "on" if self.settings.batch_expressions else "off"
            logger.bind(
                endpoint=endpoint, batch_selectors=selectors, batch_expressions=expressions
            ).info(
                "{} quer{} serve{} {:,} rule{}",
                queries,
                "y" if queries == 1 else "ies",
                "s" if queries == 1 else "",
                rules,
                "" if rules == 1 else "s",
            )
