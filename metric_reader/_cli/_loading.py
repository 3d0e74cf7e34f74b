"""The settings and plugins a command runs with, validated before it does anything: a rule
that names a missing plugin, an unusable PLUGIN_DIR or an alert expression Prometheus
refuses is a configuration error, as at the service's start."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from .._config import LevelConfig, Settings, build_ssl_context, load_settings
from .._core import ConfigError, configure_logging, logger

if TYPE_CHECKING:  # the actions layer is imported when plugins are looked for
    from .._actions import PluginCatalog
    from .._core import Level  # with the events module: a plugin's business


def load_validated(
    env: Mapping[str, str],
    logging_in_use: tuple[str, str] | None = None,
    *,
    all_bundled: bool = True,
) -> tuple[Settings, PluginCatalog]:
    """Settings and plugins, validated: raise ConfigError for anything the rules need.

    ``logging_in_use``: the log level and format the running service logs with (a reload,
    in a worker thread); the logging is set up again only when they change, since the
    service goes on logging meanwhile and a line logged while the sink is replaced is lost.

    ``all_bundled``: load every bundled plugin, as the service does (it shows them all);
    otherwise (``check``) only those the rules name, unless what is said depends on the
    others: a ``PLUGIN_DIR`` or a plugin made of another (either may replace one), debug
    logging (which says why each unused one did not load), or a plugin named but missing
    (the error lists those available).
    """
    settings = load_logged(env, logging_in_use)
    return settings, validated_plugins(settings, all_bundled=all_bundled)


def load_logged(env: Mapping[str, str], logging_in_use: tuple[str, str] | None = None) -> Settings:
    """The settings, with the logging they ask for set up and what is worth a warning about
    them logged (see :func:`load_validated`)."""
    settings = load_settings(env)
    if logging_in_use != (settings.log_level, settings.log_format):
        configure_logging(settings.log_level, settings.log_format)
    for name in settings.unknown_variables:
        logger.warning("unknown environment variable {}", name)
    for warning in settings.warnings:
        logger.warning("{}", warning)
    for skipped in settings.skipped_recording_rules:
        logger.info("{}", skipped)
    return settings


def plugins_matter(settings: Settings) -> bool:
    """Whether looking for plugins can say anything about ``settings`` when only those the
    rules name are loaded (``check``): False when the rules name none and nothing else
    could load one (no ``PLUGIN_DIR``, no plugin made of another, no installed package
    declaring one) nor say why one did not load (debug logging). ``check`` then skips the
    actions layer, its import included: the catalog would be empty and silent."""
    if settings.plugin_dir or settings.plugin_bases or settings.log_level == "DEBUG":
        return True
    if needed_plugins(settings):
        return True
    from .._actions import plugins_may_be_installed

    return plugins_may_be_installed()


def validated_plugins(settings: Settings, *, all_bundled: bool = True) -> PluginCatalog:
    """The plugins ``settings`` need, loaded and validated (see :func:`load_validated`)."""
    from .._actions import bundled_plugin_dir

    needed = needed_plugins(settings)
    if all_bundled or settings.plugin_dir or settings.plugin_bases or settings.log_level == "DEBUG":
        catalog = _discover(settings)
    else:
        catalog = _discover(settings, needed)
        if any(name not in catalog.plugins for name in needed):
            catalog = _discover(settings)
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
            where = str(path) if path is not None else problem.source  # [plugins.NAME]
            logger.bind(file=where).log(level, "plugin not loaded: {}", problem.reason)
    return catalog


def needed_plugins(settings: Settings) -> dict[str, str]:
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
        if rule.guard.storm_plugin:
            needed.setdefault(rule.guard.storm_plugin, f"rule {rule.name!r} storm_plugin")
        if rule.verify.escalate_plugin:
            needed.setdefault(rule.verify.escalate_plugin, f"rule {rule.name!r} escalate_plugin")
        if rule.guard.approval_plugin and rule.guard.mode == "approve":
            needed.setdefault(rule.guard.approval_plugin, f"rule {rule.name!r} approval_plugin")
    for route in settings.routes:
        needed.setdefault(route.plugin, f"{route.where}.action_plugin")
        if route.verify.escalate_plugin:
            needed.setdefault(route.verify.escalate_plugin, f"{route.where}.escalate_plugin")
        if route.approval_plugin:
            needed.setdefault(route.approval_plugin, f"{route.where}.approval_plugin")
    return needed


def plugin_catalog(env: Mapping[str, str]) -> tuple[Settings, PluginCatalog]:
    """The service settings (no rule needed) and every plugin found, for plugin authors."""
    settings = load_settings(env, rules=False)
    configure_logging(settings.log_level, settings.log_format)
    catalog = _discover(settings)
    return settings, catalog


def _discover(settings: Settings, bundled_only: Collection[str] | None = None) -> PluginCatalog:
    """Every plugin ``settings`` give: PLUGIN_DIR's, installed packages', the bundled ones
    (or those ``bundled_only`` names). A PLUGIN_DIR that is set but cannot be used is an
    error, whatever the rules need."""
    from .._actions import discover_plugins

    catalog = discover_plugins(
        settings.plugin_dir,
        insecure=settings.plugin_dir_insecure,
        settings=settings.plugin_settings,
        bases=settings.plugin_bases,
        load_timeout=settings.plugin_timeout,
        bundled_only=bundled_only,
    )
    if catalog.dir_error is not None:
        raise ConfigError(
            f"PLUGIN_DIR={str(catalog.plugin_dir)!r} is invalid: {catalog.dir_error}; "
            "fix it or unset PLUGIN_DIR"
        )
    return catalog


def check_tls(settings: Settings) -> None:
    """The TLS context the first client will use, built now: loading the default trust
    store (``SSL_CERT_FILE``) is left out of reading the settings (``check --no-read`` and
    a rule test make no request), so that a store that cannot be loaded is a configuration
    error at the service's start, and before ``check`` reads a source, not a failed
    client."""
    try:
        build_ssl_context(settings.client)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_alert_expressions(settings: Settings) -> None:
    """Each alert's expression sent to the Prometheus it reads, as well as parsed when the
    configuration was read: that Prometheus' own version judges it (one older than the
    parser refuses newer functions); what it refuses is a configuration error."""
    if not any(rule.alert is not None for rule in settings.rules):
        return
    import anyio  # here: ``check --no-read`` neither reads nor starts an event loop

    from .._service import EXPRESSION_TIMEOUT
    from .._sources import check_expressions

    problems, warnings = anyio.run(check_expressions, settings, EXPRESSION_TIMEOUT)
    for warning in warnings:
        logger.warning("{}", warning)
    if problems:
        raise ConfigError(*problems)
