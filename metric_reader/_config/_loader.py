"""The environment, and the TOML rule file named by ``CONFIG_FILE``, to ``Settings``:
validated before anything polls, every mistake collected and reported together.

The environment gives one rule; a rule file gives many, and its top-level keys are the
defaults of every rule. The environment overrides the file's top-level keys.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core import record_replace
from ._client import MAX_RESPONSE_BYTES
from ._client_settings import CLIENT_FILE_KEYS, CLIENT_KEYS, client_config
from ._guards import check_interval_names, plugin_guards, read_limits
from ._keys import (
    DEFAULTABLE_KEYS,
    ENV_RULE_KEYS,
    KNOWN_VARIABLES,
    LEVEL_KEYS,
    RULE_KEYS,
    SECRET_KEYS,
    SERVICE_KEYS,
    TOP_LEVEL_KEYS,
)
from ._near_miss import slip_of
from ._plugin_tables import read_plugin_tables
from ._problems import ConfigError, Given, Problems, env_name
from ._replicas import election_settings, this_shard
from ._rule_builder import ENV_SCOPE, FileScope, build_rule, check_unique_names
from ._types import HISTORY_RETENTION, PluginGuard, RuleConfig, RuleGroupConfig, Settings
from ._watched import rule_file_globs

if TYPE_CHECKING:
    from ._inhibit_rules import InhibitRule
    from ._routes import Route
    from ._tomlfile import TomlFile

DEFAULT_LISTEN_ADDRESS = ":9180"


def load_settings(environ: Mapping[str, str], *, rules: bool = True) -> Settings:
    """Build the settings from ``environ`` (and ``CONFIG_FILE``); raise ``ConfigError`` with
    every mistake found. ``rules=False`` reads the service settings alone (``plugins`` and
    ``fire`` need no rule)."""
    problems = Problems()
    for slip in _slips(environ):
        problems.add(slip)
    config_file = environ.get("CONFIG_FILE", "").strip() or None
    toml: TomlFile | None = None
    if config_file is not None:
        from ._tomlfile import TomlFileError, read_toml_file  # only with CONFIG_FILE

        try:
            toml = read_toml_file(Path(config_file))
        except TomlFileError as exc:
            raise ConfigError(f"CONFIG_FILE: {exc}") from None

    top: dict[str, Given] = {}
    rules_raw: list[tuple[int, dict[str, Given]]] = []
    plugin_settings: dict[str, Mapping[str, Any]] = {}
    plugin_bases: dict[str, str] = {}
    guards: dict[str, PluginGuard] = {}
    warnings: list[str] = []
    if toml is not None:
        top, rules_raw, tables = _read_file(toml, problems)
        plugin_settings, plugin_bases = read_plugin_tables(tables, toml, problems)
        places = {name: toml.where(f"plugins.{name}") for name in plugin_settings}
        plugin_settings, guards = plugin_guards(plugin_settings, places, problems)
    # The environment overrides the file's top-level defaults.
    top.update(_from_env(environ, (*SERVICE_KEYS, *CLIENT_KEYS, *DEFAULTABLE_KEYS)))

    service = {
        key: problems.parse(parse, top.get(key), None) for key, parse in SERVICE_KEYS.items()
    }
    client = client_config(top, problems, warnings, environ)
    shard = this_shard(top, service, environ, problems) if rules else (1, 0, "")
    election = election_settings(top, service, problems, warnings)
    defaults = {key: top[key] for key in DEFAULTABLE_KEYS if key in top}
    alerts: list[RuleConfig] = []
    recording: tuple[str, ...] = ()
    groups: tuple[RuleGroupConfig, ...] = ()
    routes: tuple[Route, ...] = ()
    if "routes" in top:
        from ._routes import read_routes

        routes = read_routes(top["routes"].value, top["routes"].at, problems)
    if rules and service["rule_files"]:
        groups, recording = _rule_groups(
            service["rule_files"],
            top["rule_files"].at,
            config_file,
            defaults,
            routes,
            problems,
            warnings,
        )
        alerts = [rule for group in groups for rule in group.rules if isinstance(rule, RuleConfig)]
    if not rules:
        built: list[RuleConfig | None] = []
    elif not rules_raw and service["rule_files"] and not _from_env(environ, ENV_RULE_KEYS):
        built = []  # the rule files give the rules
    elif rules_raw:
        identity = _from_env(environ, ENV_RULE_KEYS)
        if identity:
            names = ", ".join(given.at for given in identity.values())
            warnings.append(f"{names} ignored: CONFIG_FILE {config_file} defines the rules")
        assert toml is not None
        built = [
            build_rule({**defaults, **raw}, FileScope(toml, index), problems)
            for index, raw in rules_raw
        ]
        check_unique_names(rules_raw, problems)
    else:
        built = [build_rule({**defaults, **_from_env(environ, ENV_RULE_KEYS)}, ENV_SCOPE, problems)]
    every = [r for r in built if r is not None] + alerts
    limits = (
        read_limits(top["limits"].value, top["limits"].at, problems) if "limits" in top else None
    )
    intervals = _time_intervals(top.get("time_intervals"), problems)
    inhibit_rules = _inhibit_rules(top.get("inhibit_rules"), problems)
    window_keys = ("mute_time_intervals", "active_time_intervals")
    check_interval_names(
        [
            *(given for key in window_keys if (given := top.get(key)) is not None),
            *(raw[key] for _, raw in rules_raw for key in window_keys if key in raw),
            *(
                Given(list(names), f"{route.where}.{key}")
                for route in routes
                for key, names in zip(
                    window_keys,
                    (route.mute_time_intervals, route.active_time_intervals),
                    strict=True,
                )
                if names
            ),
        ],
        intervals,
        problems,
    )
    external = service["external_labels"] or {}, service["external_url"] or ""
    if external != ({}, ""):
        every = [with_external(rule, *external) for rule in every]
        groups = _groups_holding(groups, every)
    _check_names_across(every, problems)
    if problems.lines:
        raise ConfigError(*problems.lines)
    return Settings(
        rules=tuple(every),
        skipped_recording_rules=recording,
        rule_groups=groups,
        routes=routes,
        plugin_dir=service["plugin_dir"],
        plugin_timeout=service["plugin_timeout"] or 30.0,
        log_level=service["log_level"] or "INFO",
        log_format=service["log_format"] or "text",
        unknown_variables=_misspelt(environ),
        plugin_dir_insecure=bool(service["plugin_dir_insecure"]),
        max_concurrent_queries=service["max_concurrent_queries"] or 8,
        batch_selectors=service["batch_selectors"] is not False,
        batch_expressions=service["batch_expressions"] is not False,
        dry_run=bool(service["dry_run"]),
        listen_address=_listening(service["listen_address"]),
        enable_lifecycle=bool(service["enable_lifecycle"]),
        plugin_settings=plugin_settings,
        plugin_bases=plugin_bases,
        config_file=Path(config_file) if config_file else None,
        rule_file_globs=rule_file_globs(service["rule_files"] or (), _base(config_file)),
        watch_config=service["watch_config"] is not False,
        warnings=tuple(warnings),
        state_file=service["state_file"],
        history_file=_history_file(service["history_file"], service["state_file"]),
        history_retention=service["history_retention"] or HISTORY_RETENTION,
        client=client,
        max_response_bytes=service["max_response_bytes"] or MAX_RESPONSE_BYTES,
        shard_count=shard[0],
        shard_index=shard[1],
        shard_index_from=shard[2],
        election=election,
        external_labels=external[0],
        external_url=external[1],
        limits=limits,
        plugin_guards=guards,
        time_intervals=intervals,
        inhibit_rules=inhibit_rules,
        paused=bool(service["paused"]),
        approval_token_file=service["approval_token_file"],
    )


def _time_intervals(given: Given | None, problems: Problems) -> dict[str, tuple[Any, ...]]:
    """``[[time_intervals]]``, by name (Alertmanager's ``time_intervals``)."""
    if given is None:
        return {}
    from .._core import parse_time_intervals

    try:
        return dict(parse_time_intervals(given.value, given.at))
    except ValueError as exc:
        problems.add(str(exc))
        return {}


def _inhibit_rules(given: Given | None, problems: Problems) -> tuple[InhibitRule, ...]:
    """``[[inhibit_rules]]`` (Alertmanager's ``inhibit_rules``)."""
    if given is None:
        return ()
    from ._inhibit_rules import read_inhibit_rules

    return read_inhibit_rules(given.value, given.at, problems)


def _history_file(given: Path | None, state_file: Path | None) -> Path | None:
    """``HISTORY_FILE``, by default ``<STATE_FILE>.history.sqlite`` beside the state file
    (None without either: the history is kept in memory)."""
    if given is not None or state_file is None:
        return given
    return state_file.with_name(state_file.name + ".history.sqlite")


def with_external(rule: RuleConfig, labels: Mapping[str, str], url: str) -> RuleConfig:
    """``rule`` holding the external labels and URL (``EXTERNAL_LABELS``, ``EXTERNAL_URL``),
    as each of Prometheus' rules holds the global ones."""
    return record_replace(rule, external_labels=tuple(labels.items()), external_url=url)


def _groups_holding(
    groups: tuple[RuleGroupConfig, ...], rules: list[RuleConfig]
) -> tuple[RuleGroupConfig, ...]:
    """``groups`` holding ``rules`` (by name) in place of the alerting rules they hold, so
    that the two stay the same objects."""
    by_name = {rule.name: rule for rule in rules}
    return tuple(
        record_replace(
            group,
            rules=tuple(
                by_name.get(rule.name, rule) if isinstance(rule, RuleConfig) else rule
                for rule in group.rules
            ),
        )
        for group in groups
    )


def _rule_groups(
    patterns: tuple[str, ...],
    given_at: str,
    config_file: str | None,
    defaults: Mapping[str, Given],
    routes: tuple[Route, ...],
    problems: Problems,
    warnings: list[str],
) -> tuple[tuple[RuleGroupConfig, ...], tuple[str, ...]]:
    """The groups of the Prometheus rule files ``patterns`` name, relative to the rule file
    (or, from ``RULE_FILES`` without one, to the working directory), and a line for each
    recording rule the service skips; what promtool only lints goes to ``warnings``."""
    from ._alert_rules import (
        duplicate_alert_warnings,
        read_rule_files,
        rule_groups,
        skipped_recording_rules,
    )

    try:
        groups = read_rule_files(patterns, _base(config_file), given_at)
    except ConfigError as exc:
        for line in exc.problems:
            problems.add(line)
        return (), ()
    warnings.extend(duplicate_alert_warnings(groups))
    return rule_groups(groups, defaults, routes, problems), skipped_recording_rules(groups)


def _base(config_file: str | None) -> Path:
    """What relative ``rule_files`` are relative to: the rule file's directory (``RULE_FILES``
    without one: the working directory)."""
    return Path(config_file).parent if config_file else Path.cwd()


def _check_names_across(rules: list[RuleConfig], problems: Problems) -> None:
    """A ``[[rules]]`` name and an alert of a rule file may not be the same: rules are told
    apart by name (state file, metrics, logs)."""
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen and rule.alert is not None:
            where = f"{rule.alert.file}:{rule.alert.line}"
            problems.add(
                f"{where}: alert {rule.name!r} has the name of a rule of the rule file; "
                "rename one of them"
            )
        seen.add(rule.name)


def _listening(given: str | None) -> str | None:
    if given is None:
        return DEFAULT_LISTEN_ADDRESS
    return None if given == "off" else given


# --- the environment ---


def _from_env(environ: Mapping[str, str], keys: tuple[str, ...]) -> dict[str, Given]:
    """The keys set in the environment; an empty value counts as unset, as in most manifests."""
    found = {}
    for key in keys:
        name = env_name(key)
        value = environ.get(name)
        if value is not None and value.strip():
            found[key] = Given(value, name, key in SECRET_KEYS)
    return found


def _extends_a_setting(name: str, close: str) -> bool:
    """``MY_PLUGIN_TIMEOUT`` or ``ACTION_PLUGIN_URL``: a plugin's own setting built on one
    of ours, not a typo; ``THRESHOLD_DURATON`` and ``HARD_CLAER_THRESHOLD`` are typos (their
    match extends the same setting the same way)."""
    for known in KNOWN_VARIABLES:
        if name.endswith("_" + known) and not close.endswith("_" + known):
            return True
        if name.startswith(known + "_") and not close.startswith(known + "_"):
            return True
    return False


def _slips(environ: Mapping[str, str]) -> list[str]:
    """Variables a slip of the keyboard away from a setting (``THRESHOLD_DURATON``,
    ``METRICNAME``): refused, because the setting meant keeps its default unnoticed."""
    found = []
    for name in sorted(environ):
        if name in KNOWN_VARIABLES:
            continue
        close = slip_of(name, KNOWN_VARIABLES)
        if close is not None and not _extends_a_setting(name, close):
            found.append(
                f"{name} is not a known variable: did you mean {close}? (rename it, or unset "
                "it if it is not meant for metric-reader)"
            )
    return found


@functools.cache
def _near_in_length(length: int) -> tuple[str, ...]:
    """The known variables ``difflib.get_close_matches(..., cutoff=0.85)`` may take a name
    of ``length`` letters for: those its first test (``real_quick_ratio``, from the two
    lengths alone) lets through. Asked only of these, it answers as of them all, and most
    names of an environment have none."""
    return tuple(
        known
        for known in KNOWN_VARIABLES
        if 2.0 * min(len(known), length) / (len(known) + length) >= 0.85
    )


def _misspelt(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Names like a setting's but farther than a slip (``BASIC_AUTH_USER``): a warning."""
    found = []
    for name in environ:
        if name in KNOWN_VARIABLES or slip_of(name, KNOWN_VARIABLES) is not None:
            continue
        candidates = _near_in_length(len(name))
        if not candidates:  # most of an environment: HOME, PATH, HOSTNAME...
            continue
        import difflib  # here: what it would say of the others is known without it

        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.85)
        if close and not _extends_a_setting(name, close[0]):
            found.append(f"{name} (did you mean {close[0]}?)")
    return tuple(sorted(found))


# --- the rule file ---


def _read_file(
    toml: TomlFile, problems: Problems
) -> tuple[dict[str, Given], list[tuple[int, dict[str, Given]]], dict[str, Mapping[str, Any]]]:
    top: dict[str, Given] = {}
    rules: list[tuple[int, dict[str, Given]]] = []
    plugins: dict[str, Mapping[str, Any]] = {}
    for key, value in toml.data.items():
        if key in ("routes", "limits", "time_intervals", "inhibit_rules"):
            top[key] = Given(value, toml.where(key))
        elif key == "rules":
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                problems.add(f"{toml.where('rules')}: expected [[rules]] tables")
                continue
            for index, table in enumerate(value):
                rules.append((index, _read_rule(toml, index, table, problems)))
        elif key == "plugins":
            if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
                problems.add(f"{toml.where('plugins')}: expected [plugins.NAME] tables")
                continue
            plugins = value
        elif key in TOP_LEVEL_KEYS:
            if key in (
                "plugin_dir",
                "state_file",
                "history_file",
                *CLIENT_FILE_KEYS,
            ) and isinstance(value, str):
                value = str(toml.path.parent / value)  # relative to the file, as in Prometheus
            top[key] = Given(value, toml.where(key), key in SECRET_KEYS)
        else:
            known = (
                *TOP_LEVEL_KEYS,
                *("rules", "plugins", "routes", "limits", "time_intervals", "inhibit_rules"),
            )
            problems.add(_unknown(toml.where(key), key, known))
    if "rules" in toml.data and not rules:
        problems.add(f"{toml.where('rules')}: no rules")
    return top, rules, plugins


def _read_rule(
    toml: TomlFile, index: int, table: dict[str, Any], problems: Problems
) -> dict[str, Given]:
    raw: dict[str, Given] = {}
    prefix = f"rules[{index}]"
    rule_keys = [k for k in RULE_KEYS if not k.startswith("hard.")] + ["hard"]
    for key, value in table.items():
        if key == "hard":
            if not isinstance(value, dict):
                problems.add(f"{toml.where(prefix + '.hard')}: expected a [rules.hard] table")
                continue
            for hard_key, hard_value in value.items():
                where = toml.where(f"{prefix}.hard.{hard_key}")
                if hard_key in LEVEL_KEYS:
                    raw[f"hard.{hard_key}"] = Given(hard_value, where)
                else:
                    problems.add(_unknown(where, hard_key, tuple(LEVEL_KEYS)))
        elif key in RULE_KEYS:
            raw[key] = Given(value, toml.where(f"{prefix}.{key}"))
        else:
            problems.add(_unknown(toml.where(f"{prefix}.{key}"), key, tuple(rule_keys)))
    return raw


def _unknown(where: str, key: str, known: tuple[str, ...]) -> str:
    import difflib  # here: only a key that is not known needs it

    close = slip_of(key, known) or next(iter(difflib.get_close_matches(key, known, 1, 0.6)), None)
    hint = f"; did you mean {close!r}?" if close else ""
    return f"{where}: unknown key{hint}"
