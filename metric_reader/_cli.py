"""The command line: ``run`` (the default), ``check``, ``plugins``, ``fire``, ``backtest``
and ``test``.

Exit codes: 0 clean stop, 2 invalid configuration or plugin, 1 anything
unexpected. A user mistake is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, NoReturn, TypeVar

import anyio
from loguru import logger

from . import __version__
from ._actions import (
    PluginCatalog,
    PluginFailure,
    bundled_plugin_dir,
    discover_plugins,
    settle,
    threads_holding_exit,
)
from ._cluster import InCluster, StateFileLock, holder, in_cluster, owned_rules, shard_of
from ._config import (
    LevelConfig,
    PrometheusQuery,
    RuleConfig,
    Settings,
    load_settings,
    parse_listen_address,
)
from ._core import (
    ConfigError,
    Event,
    EventKind,
    Level,
    ListenError,
    configure_logging,
    format_duration,
    keep_freed_memory,
    parse_duration,
    parse_threshold,
    parse_value,
)
from ._replay import BacktestOptions, backtest_command, test_command
from ._service import EXPRESSION_TIMEOUT, SHUTDOWN_GRACE, SIGNALS, EarlySignals, Service
from ._sources import check_expressions, first_reads
from ._surface import serve_http

EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2
CHECK_READ_TIMEOUT = 5.0
"""How long ``check`` waits for the first read of the sources, all together."""
CLEANUP_SECONDS = 1.0
"""At exit, how long cancelled ``async def`` plugin calls get to finish their clean-up."""
_T = TypeVar("_T")


def entry() -> NoReturn:
    """The program (``metric-reader``, ``python -m metric_reader``): :func:`main`, then an
    exit that no thread left behind by a plugin can hold up."""
    code = main()
    settle(CLEANUP_SECONDS)
    held = threads_holding_exit()
    if held:
        # Python would wait for each of these without limit (an executor's or anyio's
        # worker thread that a plugin left hanging): everything is saved and logged, so
        # end here.
        logger.bind(threads=", ".join(held)).debug("not waiting for threads left by plugins")
        logger.complete()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = _parser().parse_args(argv)
    env = os.environ if environ is None else environ
    configure_logging()
    try:
        return int(args.handler(args, env))
    except ConfigError as exc:
        _say_config_error(str(exc))
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `metric-reader check | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        logger.exception("fatal error")
        return EXIT_FATAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metric-reader",
        description="Watch a metric and run a plugin when a threshold has been crossed for "
        "long enough. Configured from the environment (see README).",
    )
    parser.add_argument("--version", action="version", version=f"metric-reader {__version__}")
    parser.set_defaults(handler=_run)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.add_parser("run", help="run the service (the default)").set_defaults(handler=_run)
    check = commands.add_parser(
        "check",
        help="validate the configuration and its plugins, read each source once, print a "
        "summary, exit 0 or 2",
    )
    check.add_argument(
        "--no-read",
        action="store_true",
        help="do not read the sources (e.g. in CI, where they cannot be reached)",
    )
    check.set_defaults(handler=_check)
    commands.add_parser(
        "plugins", help="list the plugins found: bundled, of installed packages, in PLUGIN_DIR"
    ).set_defaults(handler=_plugins)
    fire = commands.add_parser("fire", help="run one plugin's execute once and report")
    fire.add_argument("name", help="the plugin's name")
    fire.add_argument("--metric", default="test_metric", help="metric name (test_metric)")
    fire.add_argument("--value", default="NaN", help="metric value (NaN)")
    fire.add_argument("--threshold", default=">0", help="threshold text (>0)")
    fire.add_argument("--duration", default="0s", help="breach duration, e.g. 30s (0s)")
    fire.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a series label for event.labels; repeat for more",
    )
    fire.add_argument("--kind", choices=("fire", "repeat"), default="fire", help="event kind")
    fire.add_argument("--level", choices=("base", "hard"), default="base", help="event level")
    fire.add_argument(
        "--resolve", action="store_true", help="call resolve (kind resolve) instead of execute"
    )
    fire.set_defaults(handler=_fire)
    backtest = commands.add_parser(
        "backtest",
        help="replay the rules over their history in Prometheus: when each series would have "
        "gone pending, fired and resolved, and which plugins would have been called",
    )
    backtest.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="WHEN",
        help="start: a duration back from now (2h, 7d) or an RFC 3339 time",
    )
    backtest.add_argument("--to", dest="end", metavar="WHEN", help="end, as --from (now)")
    backtest.add_argument(
        "--rule", action="append", default=[], metavar="NAME", help="only this rule; repeat"
    )
    backtest.add_argument(
        "--step", metavar="DURATION", help="evaluate every DURATION (each rule's interval)"
    )
    backtest.add_argument(
        "--prometheus",
        metavar="URL",
        help="a Prometheus that scrapes the pages SCRAPE_URL rules read, to backtest them",
    )
    backtest.add_argument("--format", choices=("text", "json"), default="text")
    backtest.add_argument(
        "--html", metavar="FILE", type=Path, help="also write a report with a timeline per series"
    )
    backtest.set_defaults(handler=_backtest)
    test = commands.add_parser(
        "test",
        help="run rule unit tests (promtool's test-file format, plus action_test and "
        "plugin_failures); exit 0 when all pass, 1 otherwise",
    )
    test.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a test file")
    test.set_defaults(handler=_test)
    return parser


def _backtest(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = load_settings(env)
    configure_logging(settings.log_level, settings.log_format)
    options = BacktestOptions(
        args.start, args.end, tuple(args.rule), args.step, args.prometheus, args.format, args.html
    )
    return backtest_command(settings, options)


def _test(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return test_command(args.files)


def _say_config_error(message: str) -> None:
    for line in message.splitlines() or [message]:
        print(f"metric-reader: configuration error: {line}", file=sys.stderr, flush=True)


def _load(env: Mapping[str, str]) -> tuple[Settings, PluginCatalog]:
    """Settings and plugins, validated: raise ConfigError for anything the rules need."""
    settings = load_settings(env)
    configure_logging(settings.log_level, settings.log_format)
    for name in settings.unknown_variables:
        logger.warning("unknown environment variable {}", name)
    for warning in settings.warnings:
        logger.warning("{}", warning)
    for skipped in settings.skipped_recording_rules:
        logger.info("{}", skipped)
    catalog = discover_plugins(
        settings.plugin_dir,
        insecure=settings.plugin_dir_insecure,
        settings=settings.plugin_settings,
        load_timeout=settings.plugin_timeout,
    )
    _refuse_unusable_plugin_dir(catalog)
    needed = _needed_plugins(settings)
    problems = [
        f"{variable}={name!r} {catalog.explain_missing(name)}"
        for name, variable in needed.items()
        if name not in catalog.plugins
    ]
    if problems:
        raise ConfigError(*problems)
    catalog.log_overrides()
    bundled = bundled_plugin_dir()
    for problem in catalog.problems:
        if problem.name not in needed:
            # An unused bundled plugin that lacks its settings is normal, not news.
            if problem.entry_point is not None:
                logger.bind(distribution=problem.entry_point.package).warning(
                    "plugin not loaded: {}", problem
                )
                continue
            path = problem.path
            level = "DEBUG" if path is not None and path.parent == bundled else "WARNING"
            logger.bind(file=str(path)).log(level, "plugin not loaded: {}", problem.reason)
    return settings, catalog


def _needed_plugins(settings: Settings) -> dict[str, str]:
    """Each plugin the rules name, with how the first rule naming it called it."""
    needed: dict[str, str] = {}
    for rule in settings.rules:
        levels: tuple[tuple[Level, LevelConfig | None], ...] = (
            ("base", rule.base),
            ("hard", rule.hard),
        )
        for level_name, level in levels:
            if level is not None and level.plugin:
                needed.setdefault(level.plugin, settings.plugin_variable(rule, level_name))
    for route in settings.routes:
        needed.setdefault(route.plugin, f"{route.where}.action_plugin")
    return needed


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:

    early = EarlySignals.install()
    settings, catalog = _load(env)
    if early.received is not None:
        return EXIT_OK
    _check_alert_expressions(settings)
    settings = _this_shard(settings)
    for rule in settings.rules:
        logger.bind(**_rule_fields(rule)).info("metric-reader {} watching", __version__)
    configured_election = settings.election
    try:
        settings, cluster = _leader_election(settings, env)
    except ConfigError as exc:
        _say_config_error(str(exc))
        return EXIT_CONFIG
    running_election = settings.election

    def reload() -> tuple[Settings, PluginCatalog]:
        """The configuration read again (SIGHUP, POST /-/reload), as at start."""
        fresh, fresh_catalog = _load(env)
        fresh = _this_shard(fresh)
        if fresh.election == configured_election:  # as it was: the one running
            fresh = dataclasses.replace(fresh, election=running_election)
        return fresh, fresh_catalog

    keep_freed_memory()
    service = Service(settings, catalog, cluster, reload)
    refused: list[BaseException] = []
    # One service writes a state file; a dry run writes nothing and takes no lock.
    lock = None if settings.state_file is None or settings.dry_run else settings.state_file
    try:
        with contextlib.nullcontext() if lock is None else StateFileLock(lock):
            anyio.run(_serve, service, early, backend_options=loop_options())
    except* ListenError as group:  # LISTEN_ADDRESS in use or not local: before any poll
        refused.extend(group.exceptions)
    if refused:
        address = settings.listen_address or ""
        error = refused[0]
        assert isinstance(error, ListenError)
        _say_config_error(
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


EVENT_LOOP = "uvloop"
"""The service's event loop: ``uvloop`` when it is installed (the ``fast`` extra: about a
fifth less CPU per poll than asyncio's with httpcore, see ``make bench``, for 2 MB more
resident memory), or ``asyncio``. Plugins' loops stay asyncio's
(``_actions._jobs.PluginLoop``)."""


def loop_options() -> dict[str, object]:
    """anyio's ``backend_options`` for the service's event loop (``EVENT_LOOP``)."""
    if EVENT_LOOP == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        return {"use_uvloop": True}
    return {}


async def _serve(service: Service, early: EarlySignals) -> None:
    """The service, and its HTTP endpoints when LISTEN_ADDRESS says where: bound before
    the first poll, stopped when the service stops."""
    async with anyio.create_task_group() as group:
        if service.settings.listen_address is not None:
            await group.start(serve_http, service.settings.listen_address, service)
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


def _check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings, catalog = _load(env)
    source = f" from {settings.config_file}" if settings.config_file else ""
    print(f"configuration OK{source}: {len(settings.rules)} rule(s)\n")
    print(_rule_table(settings.rules, settings.shard_count))
    if settings.routes:
        print()
        for line in _route_lines(settings):
            print(line)
    if settings.skipped_recording_rules:
        print()
        for skipped in settings.skipped_recording_rules:
            print(skipped)
    if settings.shard_count > 1:
        print(f"\n{_shard_line(settings)}")
    if settings.state_file is not None:
        held = holder(settings.state_file)  # asked without taking the lock
        use = "not in use" if held is None else f"in use by {held}"
        print(f"\nstate file {settings.state_file}: {use}")
    needed = _needed_plugins(settings)
    if needed:
        print()
        for name in sorted(needed):
            print(f"plugin {name}: {catalog.plugins[name].source}")
    if settings.rules and not args.no_read:
        _check_alert_expressions(settings)
        print(f"\nfirst read of each source ({format_duration(CHECK_READ_TIMEOUT)} at most):")
        for line in anyio.run(
            first_reads, settings, CHECK_READ_TIMEOUT, backend_options=loop_options()
        ):
            print(line)
    return EXIT_OK


def _route_lines(settings: Settings) -> list[str]:
    """For each alert of the rule files, the routes it can reach: those its own labels (the
    group's and the rule's) do not rule out; its series' labels decide among them."""
    lines = []
    for rule in settings.rules:
        alert = rule.alert
        if alert is None:
            continue
        known = alert.known_labels()
        reach, taken = [], False
        for index, route in enumerate(settings.routes):
            if route.may_match(known):
                reach.append(f"routes[{index}] {route}")
                taken = taken or route.matches(known)
                if route.matches(known) and not route.continue_:
                    break
        if not taken:  # no route is sure to take it: the default may
            reach.append(f"default -> {alert.default_plugin or 'log only'}")
        lines.append(f"route {rule.name}: {'; '.join(reach)}")
    return lines


def _check_alert_expressions(settings: Settings) -> None:
    """Prometheus checks a rule file's expressions when it loads it: so does metric-reader,
    by sending each to the Prometheus it reads; a parse error is a configuration error."""
    if not any(rule.alert is not None for rule in settings.rules):
        return
    problems, warnings = anyio.run(check_expressions, settings, EXPRESSION_TIMEOUT)
    for warning in warnings:
        logger.warning("{}", warning)
    if problems:
        raise ConfigError(*problems)


def _shard_line(settings: Settings) -> str:
    owned = [rule.name for rule in owned_rules(settings)]
    rules = f": {', '.join(owned)}" if owned else " (it stays up, idle)"
    return (
        f"this replica is shard {settings.shard_index} of {settings.shard_count} "
        f"(from {settings.shard_index_from}): owns {len(owned)} of {len(settings.rules)} "
        f"rules{rules}"
    )


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _reads(rule: RuleConfig) -> str:
    """The READS cell: what the rule reads; for a ``QUERY`` rule that names a ``METRIC_NAME``
    too, that name (as the table has always shown it)."""
    if isinstance(rule.source, PrometheusQuery) and rule.alert is None:
        return rule.metric_name  # the query itself when no METRIC_NAME was given
    return rule.source.expression


def _rule_table(rules: Sequence[RuleConfig], shards: int = 1) -> str:
    def level(config: LevelConfig | None, alert: bool = False) -> str:
        if config is None:
            return "-"
        condition = "alert" if alert else config.threshold.text  # an alert: its expr decides
        text = f"{condition} for {format_duration(config.duration)}"
        if config.backoff:
            text += f" every {format_duration(config.backoff)}"
        return f"{text} -> {config.plugin or 'log only'}"

    header: tuple[str, ...] = ("RULE", "READS", "FROM", "EVERY", "ACTION", "HARD")
    rows: list[tuple[str, ...]] = [
        (
            rule.name,
            _shorten(" ".join(_reads(rule).split()), 60),
            rule.source.where,
            format_duration(rule.polling_interval),
            level(rule.base, rule.alert is not None) if rule.base else "read and log",
            level(rule.hard),
        )
        for rule in rules
    ]
    if shards > 1:  # which replica runs each rule
        header = (header[0], "SHARD", *header[1:])
        rows = [(row[0], str(shard_of(row[0], shards)), *row[1:]) for row in rows]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )


def _plugin_catalog(env: Mapping[str, str]) -> tuple[Settings, PluginCatalog]:
    """The service settings (no rule needed) and every plugin found, for plugin authors."""
    settings = load_settings(env, rules=False)
    configure_logging(settings.log_level, settings.log_format)
    catalog = discover_plugins(
        settings.plugin_dir,
        insecure=settings.plugin_dir_insecure,
        settings=settings.plugin_settings,
        load_timeout=settings.plugin_timeout,
    )
    _refuse_unusable_plugin_dir(catalog)
    return settings, catalog


def _refuse_unusable_plugin_dir(catalog: PluginCatalog) -> None:
    """A PLUGIN_DIR that is set but cannot be used is an error, whatever the rules need."""
    if catalog.dir_error is not None:
        raise ConfigError(
            f"PLUGIN_DIR={str(catalog.plugin_dir)!r} is invalid: {catalog.dir_error}; "
            "fix it or unset PLUGIN_DIR"
        )


def _plugins(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    _, catalog = _plugin_catalog(env)
    bundled_dir = bundled_plugin_dir()
    rows = []
    for plugin in catalog.plugins.values():
        origin = plugin.origin
        replaced = catalog.replaced(plugin.name)
        if replaced:
            origin += ", replaces " + " and ".join(replaced)
        rows.append((plugin.name, origin, "ok", str(plugin.path)))
    for problem in catalog.problems:
        status = ("not configured: " if problem.unconfigured else "invalid: ") + problem.reason
        if problem.entry_point is not None:  # no file to show when it could not be imported
            origin, where = f"entry point {problem.entry_point.package}", problem.entry_point.value
        else:
            assert problem.path is not None
            origin = "bundled" if problem.path.parent == bundled_dir else "PLUGIN_DIR"
            where = str(problem.path)
        rows.append((problem.key, origin, status, where))
    header = ("NAME", "FROM", "FILE", "STATUS")
    table = [header, *((name, origin, path, status) for name, origin, status, path in sorted(rows))]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]))
    return EXIT_OK


def _fire(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    threshold = _argument("--threshold", args.threshold, lambda t: parse_threshold(t).text)
    duration = _argument("--duration", args.duration, parse_duration)
    value = _argument("--value", args.value, parse_value)
    labels = dict(_argument("--label", label, _label_pair) for label in args.label)
    settings, catalog = _plugin_catalog(env)
    plugin = catalog.plugins.get(args.name)
    if plugin is None:
        raise ConfigError(f"plugin {args.name!r} {catalog.explain_missing(args.name)}")
    kind: EventKind = "resolve" if args.resolve else args.kind
    event = Event(
        rule="fire",
        metric_name=args.metric,
        labels=labels,
        value=value,
        threshold=threshold,
        level=args.level,
        kind=kind,
        breach_started=datetime.now(UTC) - timedelta(seconds=duration),
        duration=timedelta(seconds=duration),
        fire_count=0 if kind == "fire" else 1,
        plugin=plugin.name,
    )
    method: Literal["execute", "resolve"] = "resolve" if args.resolve else "execute"
    if method == "resolve" and not plugin.has_resolve:
        print(f"{plugin.name}: has no resolve method; nothing to run")
        return EXIT_OK
    started = time.monotonic()
    try:
        anyio.run(plugin.call, method, event, settings.plugin_timeout)
    except PluginFailure as exc:
        print(f"{plugin.name}: {method} FAILED after {time.monotonic() - started:.3f}s: {exc}")
        return EXIT_FATAL
    print(f"{plugin.name}: {method} OK in {time.monotonic() - started:.3f}s ({plugin.source})")
    return EXIT_OK


def _argument(flag: str, text: str, parse: Callable[[str], _T]) -> _T:
    try:
        return parse(text)
    except ValueError as exc:
        raise ConfigError(f"{flag}={text!r} is invalid: {exc}") from None


def _label_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError("expected NAME=VALUE, e.g. --label namespace=prod")
    return name.strip(), value
