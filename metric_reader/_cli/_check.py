"""``metric-reader check``: the configuration validated as the service would at start
(every expression parsed; unless told not to read, the rule files' sent to Prometheus too),
then summed up (the rules, their routes, the shard, the state file, the plugins) and,
unless told not to, each source read once. "configuration OK" comes after every check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._config import BudgetConfig, LevelConfig, PrometheusQuery, RuleConfig, Settings
from .._core import format_duration
from ._exits import EXIT_OK
from ._loading import (
    check_alert_expressions,
    check_tls,
    load_logged,
    needed_plugins,
    plugins_matter,
    validated_plugins,
)

CHECK_READ_TIMEOUT = 5.0
"""How long ``check`` waits for the first read of the sources, all together."""


def check_configuration(
    env: Mapping[str, str], read_sources: bool, backend_options: dict[str, object]
) -> int:
    """The summary on stdout; ``backend_options`` choose the event loop the sources are read
    on, the service's."""
    settings = load_logged(env)
    # Only the plugins the rules name are loaded; none when none could be said a word of.
    catalog = validated_plugins(settings, all_bundled=False) if plugins_matter(settings) else None
    if settings.rules and read_sources:
        check_tls(settings)
        check_alert_expressions(settings)  # before saying OK: Prometheus may refuse one
    source = f" from {settings.config_file}" if settings.config_file else ""
    print(f"configuration OK{source}: {len(settings.rules)} rule(s)\n")
    print(_rule_table(settings.rules, settings.shard_count))
    if settings.routes:
        print()
        for line in _route_lines(settings):
            print(line)
    guards = _guard_lines(settings)
    if guards:
        print()
        for line in guards:
            print(line)
    if settings.skipped_recording_rules:
        print()
        for skipped in settings.skipped_recording_rules:
            print(skipped)
    if settings.shard_count > 1:
        print(f"\n{_shard_line(settings)}")
    if settings.state_file is not None:
        from .._cluster import holder  # here: most configurations keep no state file

        held = holder(settings.state_file)  # asked without taking the lock
        use = "not in use" if held is None else f"in use by {held}"
        print(f"\nstate file {settings.state_file}: {use}")
    needed = needed_plugins(settings)
    if needed:
        assert catalog is not None  # plugins_matter: the rules name a plugin
        print()
        for name in sorted(needed):
            print(f"plugin {name}: {catalog.plugins[name].source}")
    if settings.rules and read_sources:
        import anyio  # here: ``check --no-read`` starts no event loop

        from .._sources import first_reads

        print(f"\nfirst read of each source ({format_duration(CHECK_READ_TIMEOUT)} at most):")
        for line in anyio.run(
            first_reads, settings, CHECK_READ_TIMEOUT, backend_options=backend_options
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


def _guard_lines(settings: Settings) -> list[str]:
    """The limits on what the rules do (budgets, breakers, storms, modes, mute windows,
    inhibit rules), one line each, so a reviewer sees them next to the rules they limit."""

    def budget(config: BudgetConfig) -> str:
        return f"{config.max_actions} calls per {format_duration(config.per)}"

    lines = []
    if settings.paused:
        lines.append("paused at start (PAUSED=true): no plugin is called until resumed")
    if settings.limits is not None:
        lines.append(f"limits: {budget(settings.limits)} (every rule's fire and repeat calls)")
    for name, guard in sorted(settings.plugin_guards.items()):
        parts = []
        if guard.budget is not None:
            parts.append(budget(guard.budget))
        if guard.breaker is not None:
            breaker = guard.breaker
            parts.append(
                f"breaker opens after {breaker.failures} failures within "
                f"{format_duration(breaker.window)}, cools down "
                f"{format_duration(breaker.cooldown)}"
            )
        lines.append(f"plugin {name}: {'; '.join(parts)}")
    for rule in settings.rules:
        limits, parts = rule.guard, []
        if limits.budget is not None:
            parts.append(budget(limits.budget))
        if limits.max_breaching is not None or limits.max_breaching_percent is not None:
            to = limits.storm_plugin or "log only"
            parts.append(f"storm above {limits.breaching_text()} series breached -> {to}")
        if limits.mode == "approve":
            asks = limits.approval_plugin or "log only"
            parts.append(
                f"mode approve: each call asks first -> {asks}, "
                f"expires after {format_duration(limits.approval_timeout)}"
            )
        elif limits.mode != "auto":
            parts.append(f"mode {limits.mode}")
        if limits.mute_time_intervals:
            parts.append(f"muted during {', '.join(limits.mute_time_intervals)}")
        if limits.active_time_intervals:
            parts.append(f"active only during {', '.join(limits.active_time_intervals)}")
        verify = rule.verify
        if verify.within is not None:
            parts.append(
                f"fixes verified within {format_duration(verify.within)}"
                + (f" by verify_query {verify.query}" if verify.query else "")
                + ", given up after "
                f"{verify.attempts} -> {verify.escalate_plugin or 'log only'}"
            )
        if parts:
            lines.append(f"guard {rule.name}: {'; '.join(parts)}")
    for inhibit in settings.inhibit_rules:
        lines.append(f"inhibit {inhibit.label()}: {inhibit}")
    return lines


def _shard_line(settings: Settings) -> str:
    from .._cluster import owned_rules

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
        if config.breach_window > 1:
            condition += f" ({config.breach_count} of {config.breach_window})"
        text = f"{condition} for {format_duration(config.duration)}"
        if config.backoff:
            text += f" every {format_duration(config.backoff)}"
            if config.backoff_multiplier > 1:
                text += f" x{config.backoff_multiplier:g}"
                if config.backoff_max is not None:
                    text += f" up to {format_duration(config.backoff_max)}"
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
        from .._cluster import shard_of

        header = (header[0], "SHARD", *header[1:])
        rows = [(row[0], str(shard_of(row[0], shards)), *row[1:]) for row in rows]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
