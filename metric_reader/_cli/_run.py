"""``metric-reader run`` (the default): the service, with its HTTP endpoints, on this
replica's shard of the rules and, when it takes part, in the leader election; until SIGTERM
or SIGINT."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio

from .. import __version__
from .._actions import PluginCatalog
from .._config import RuleConfig, Settings, parse_listen_address
from .._core import (
    ConfigError,
    ListenError,
    format_duration,
    keep_freed_memory,
    logger,
)
from .._service import SHUTDOWN_GRACE, SIGNALS, ConfigFiles, EarlySignals, Service
from .._surface import serve_http
from ._exits import EXIT_CONFIG, EXIT_OK, say_config_error
from ._loading import check_alert_expressions, check_tls, load_validated

if TYPE_CHECKING:  # the cluster's parts are imported when configured (election, shards...)
    from .._cluster import InCluster


def run_service(env: Mapping[str, str], backend_options: dict[str, object]) -> int:
    """The service until it is stopped; ``backend_options`` choose its event loop."""
    early = EarlySignals.install()
    keep_freed_memory()  # before a thread allocates: one arena for all (_core._memory)
    settings, catalog = load_validated(env)
    files = ConfigFiles().look(settings)  # as they were read: a change from now on reloads
    if early.received is not None:
        return EXIT_OK
    check_tls(settings)
    check_alert_expressions(settings)
    settings = _this_shard(settings)
    for rule in settings.rules:
        logger.bind(**_rule_fields(rule)).info("metric-reader {} watching", __version__)
    configured_election = settings.election
    try:
        settings, cluster = _leader_election(settings, env)
    except ConfigError as exc:
        say_config_error(str(exc))
        return EXIT_CONFIG
    running_election = settings.election
    logging_in_use = [(settings.log_level, settings.log_format)]

    def reload() -> tuple[Settings, PluginCatalog]:
        """The configuration read again (SIGHUP, POST /-/reload), as at start; in a worker
        thread, beside the running service."""
        fresh, fresh_catalog = load_validated(env, logging_in_use[0])
        logging_in_use[0] = (fresh.log_level, fresh.log_format)
        fresh = _this_shard(fresh)
        if fresh.election == configured_election:  # as it was: the one running
            fresh = dataclasses.replace(fresh, election=running_election)
        return fresh, fresh_catalog

    service = Service(settings, catalog, cluster, reload, files)
    refused: list[BaseException] = []
    # One service writes a state file; a dry run writes nothing and takes no lock.
    lock = None if settings.state_file is None or settings.dry_run else settings.state_file
    if lock is not None:
        from .._cluster import StateFileLock
    try:
        with contextlib.nullcontext() if lock is None else StateFileLock(lock):
            anyio.run(_serve, service, early, backend_options=backend_options)
    except* ListenError as group:  # LISTEN_ADDRESS in use or not local: before any poll
        refused.extend(group.exceptions)
    if refused:
        address = settings.listen_address or ""
        error = refused[0]
        assert isinstance(error, ListenError)
        say_config_error(
            f"LISTEN_ADDRESS={address!r}: {error}; {_how_to_listen(address, error.errno)}"
        )
        return EXIT_CONFIG
    EarlySignals.install()  # the loop gave the signals back; stay clean until the exit
    return EXIT_OK


def _how_to_listen(address: str, error: int | None) -> str:
    """What to set when ``LISTEN_ADDRESS`` cannot be listened on."""
    host, port = parse_listen_address(address)  # it parsed when the settings were read
    other_port = 9181 if port in (9180, 65535) else port + 1
    host = f"[{host}]" if ":" in host else host
    off = "or LISTEN_ADDRESS=off to serve no endpoints"
    if error == errno.EADDRINUSE:
        return f"something else listens there: set LISTEN_ADDRESS={host}:{other_port} {off}"
    if error == errno.EACCES:  # a port below 1024 without the privilege
        allowed = 9180 if port < 1024 else other_port
        return f"this user may not listen there: set LISTEN_ADDRESS={host}:{allowed} {off}"
    return f"set LISTEN_ADDRESS=:{port} (every interface) or 127.0.0.1:{port}, {off}"


async def _serve(service: Service, early: EarlySignals) -> None:
    """The service, and its HTTP endpoints when LISTEN_ADDRESS says where: bound before
    the first poll, stopped when the service stops."""
    async with anyio.create_task_group() as group:
        settings = service.settings
        if settings.listen_address is not None:
            serve = functools.partial(
                serve_http,
                enable_lifecycle=settings.enable_lifecycle,
                approval_token_file=settings.approval_token_file,
            )
            await group.start(serve, settings.listen_address, service)
        if service.rules:
            await service.run(SHUTDOWN_GRACE, early)
        else:
            await _idle(early)
        group.cancel_scope.cancel()


def _leader_election(
    settings: Settings, env: Mapping[str, str]
) -> tuple[Settings, InCluster | None]:
    """The settings with the Lease's namespace (and shard) filled in, and where the
    Kubernetes API is when this replica takes part in an election; says once at start
    when it acts alone."""
    election = settings.election
    if election is not None and settings.dry_run:
        # Leading would stop the real replicas from acting, and its records in the Lease
        # would tell them that actions only logged here were done.
        logger.warning(
            "DRY_RUN: this replica takes no part in leader election (it never takes the "
            "Lease nor records actions in it); it logs every action as if it acted alone"
        )
        return dataclasses.replace(settings, election=None), None
    if election is None:
        logger.info("leader election is off: this replica runs every action itself")
        return settings, None
    from .._cluster import in_cluster

    cluster = in_cluster(env, election.service_account_dir)
    if isinstance(cluster, str):
        logger.warning("LEADER_ELECTION_ENABLED, but {}: this replica acts alone", cluster)
        return settings, None
    if election.lock_namespace is None:
        try:
            namespace = cluster.namespace
        except OSError as exc:
            raise ConfigError(
                f"LEADER_ELECTION_LOCK_NAMESPACE is not set and the pod's namespace cannot "
                f"be read from {election.service_account_dir}/namespace: {exc.strerror or exc}"
            ) from None
        election = dataclasses.replace(election, lock_namespace=namespace)
    if settings.shard_count > 1:  # one leader per shard
        lock_name = f"{election.lock_name}-shard-{settings.shard_index}"
        election = dataclasses.replace(election, lock_name=lock_name)
    logger.bind(lease=f"{election.lock_namespace}/{election.lock_name}").info(
        "leader election on: only the leader runs actions"
    )
    return dataclasses.replace(settings, election=election), cluster


def _this_shard(settings: Settings) -> Settings:
    """The settings with only the rules this replica's shard owns, said once at start."""
    if settings.shard_count == 1:
        return settings
    from .._cluster import owned_rules

    owned = owned_rules(settings)
    log = logger.bind(
        shard_index=settings.shard_index,
        shard_count=settings.shard_count,
        index_from=settings.shard_index_from,
    )
    log.info(
        "shard {} of {}: {} of {} rules",
        settings.shard_index,
        settings.shard_count,
        len(owned),
        len(settings.rules),
    )
    if not owned:
        log.warning(
            "this shard owns none of the {} rules: nothing to poll; staying up and healthy, "
            "idle (a configuration with other rule names or fewer shards gives it some)",
            len(settings.rules),
        )
    return dataclasses.replace(settings, rules=owned)


async def _idle(early: EarlySignals) -> None:
    """A shard that owns no rule: ``Service.run`` would return at once with nothing to poll.
    Stay up instead, endpoints serving, healthy and ready, until SIGTERM or SIGINT."""
    with anyio.open_signal_receiver(*SIGNALS) as signals:
        early.log_hangups()
        received = early.received
        while received is None or received == signal.SIGHUP:
            if received is not None:
                logger.bind(signal="SIGHUP").warning(
                    "SIGHUP received: this shard owns no rule and stays idle; restart it to "
                    "run a new configuration"
                )
            received = await anext(signals)
    logger.bind(signal=signal.Signals(received).name).info("stopping")
    logger.info("stopped")


def _rule_fields(rule: RuleConfig) -> dict[str, str]:
    fields = {"rule": rule.name}
    fields["source"] = rule.source.where
    fields["read"] = rule.source.expression
    fields["every"] = format_duration(rule.polling_interval)
    for prefix, level in (("", rule.base), ("hard_", rule.hard)):
        if level is not None:
            fields[prefix + "threshold"] = level.threshold.text
            fields[prefix + "for"] = format_duration(level.duration)
            fields[prefix + "backoff"] = format_duration(level.backoff)
            fields[prefix + "plugin"] = level.plugin or "-"
    fields["missing"] = rule.missing.value
    return fields
