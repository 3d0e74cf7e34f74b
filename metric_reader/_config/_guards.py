"""The limits put on what rules do: budgets, circuit breakers, the blast-radius guard, the
mode and the mute windows a rule, a plugin or the whole service is given.

``[limits]`` caps every rule's calls together; ``max_actions``/``per`` and the
``breaker_*`` keys of ``[plugins.NAME]`` cap and guard that plugin (they are not passed to
the plugin's ``configure``); the ``GUARD_KEYS`` of a rule (or the top of the rule file, for
every rule) cap it, bound its storm and choose its mode and mute windows. The engine's
governor (``_engine._governor``) applies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._keys import APPROVAL_KEYS, GUARD_KEYS, VERIFY_KEYS
from ._problems import Given, Problems
from ._types import (
    DEFAULT_APPROVAL_TIMEOUT,
    DEFAULT_BUDGET_PERIOD,
    BreakerConfig,
    BudgetConfig,
    PluginGuard,
    RuleGuard,
)
from ._values import duration, names, positive_duration, positive_int
from ._verify import VerifyConfig

LIMITS_KEYS = ("max_actions", "per")
PLUGIN_GUARD_KEYS = ("max_actions", "per", "breaker_failures", "breaker_window", "breaker_cooldown")
"""Keys of ``[plugins.NAME]`` that are the service's, not the plugin's settings."""
DEFAULT_BREAKER_WINDOW = 300.0
DEFAULT_BREAKER_COOLDOWN = 600.0


def rule_guard(raw: Mapping[str, Given], name: str, problems: Problems) -> RuleGuard:
    """The guard of the rule ``name`` whose keys are ``raw``."""

    def value(key: str) -> Any:
        return problems.parse({**GUARD_KEYS, **APPROVAL_KEYS}[key], raw.get(key), None)

    budget = _budget(raw.get("max_actions"), raw.get("per"), f"rule {name}", problems)
    limit = value("max_breaching")
    most, percent = limit if limit is not None else (None, None)
    return RuleGuard(
        budget=budget,
        max_breaching=most,
        max_breaching_percent=percent,
        storm_plugin=value("storm_plugin"),
        mode=value("mode") or "auto",
        mute_time_intervals=value("mute_time_intervals") or (),
        active_time_intervals=value("active_time_intervals") or (),
        approval_plugin=value("approval_plugin"),
        approval_timeout=value("approval_timeout") or DEFAULT_APPROVAL_TIMEOUT,
    )


def rule_verify(raw: Mapping[str, Given], problems: Problems) -> VerifyConfig:
    """Whether the fixes of the rule (or route) whose keys are ``raw`` are verified."""

    def value(key: str) -> Any:
        return problems.parse(VERIFY_KEYS[key], raw.get(key), None)

    return VerifyConfig(
        value("verify_within"),
        value("max_attempts"),
        value("escalate_plugin"),
        value("verify_query") or None,
    )


def read_limits(value: object, where: str, problems: Problems) -> BudgetConfig | None:
    """``[limits]``: the budget of all calls together."""
    if not isinstance(value, dict):
        problems.add(f'{where}: expected a [limits] table, e.g. max_actions = 20, per = "1h"')
        return None
    for key in value:
        if key not in LIMITS_KEYS:
            problems.add(f"{where}.{key}: unknown key; [limits] takes {', '.join(LIMITS_KEYS)}")
    return _budget(
        _given(value, "max_actions", where), _given(value, "per", where), "global", problems
    )


def plugin_guards(
    tables: Mapping[str, Mapping[str, Any]], where: Mapping[str, str], problems: Problems
) -> tuple[dict[str, Mapping[str, Any]], dict[str, PluginGuard]]:
    """Each ``[plugins.NAME]`` table without the guard keys (what the plugin is given), and
    the plugins' guards. ``where``: each table's place, for messages."""
    settings: dict[str, Mapping[str, Any]] = {}
    guards: dict[str, PluginGuard] = {}
    for name, table in tables.items():
        own = {k: v for k, v in table.items() if k not in PLUGIN_GUARD_KEYS}
        if not any(key in table for key in PLUGIN_GUARD_KEYS):
            settings[name] = own
            continue
        if own:  # a table of only limits gives the plugin no settings of its own
            settings[name] = own
        at = where.get(name, f"plugins.{name}")
        budget = _budget(
            _given(table, "max_actions", at),
            _given(table, "per", at),
            f"plugin {name}",
            problems,
        )
        breaker = _breaker(table, at, problems)
        guards[name] = PluginGuard(budget, breaker)
    return settings, guards


def check_interval_names(
    given: Iterable[Given], known: Mapping[str, object], problems: Problems
) -> None:
    """Each time interval a ``mute_time_intervals`` or ``active_time_intervals`` names is
    defined in ``[[time_intervals]]``."""
    for value in given:
        try:
            named = names(value.value)
        except ValueError:
            continue  # said already
        for name in named:
            if name not in known:
                defined = ", ".join(sorted(known)) or "none is defined"
                problems.invalid(
                    value,
                    f"time interval {name!r} is not defined in [[time_intervals]] ({defined})",
                )


def _budget(
    most: Given | None, per: Given | None, name: str, problems: Problems
) -> BudgetConfig | None:
    if most is None:
        if per is not None and problems.parse(positive_duration, per, None) is not None:
            problems.add(f"{per.at} is set but max_actions is not: a budget needs both")
        return None
    count = problems.parse(positive_int, most, None)
    period = problems.parse(positive_duration, per, DEFAULT_BUDGET_PERIOD)
    return None if count is None else BudgetConfig(count, period, name)


def _breaker(table: Mapping[str, Any], at: str, problems: Problems) -> BreakerConfig | None:
    failures = _given(table, "breaker_failures", at)
    window = _given(table, "breaker_window", at)
    cooldown = _given(table, "breaker_cooldown", at)
    if failures is None:
        for given, parse in ((window, positive_duration), (cooldown, duration)):
            if given is not None and problems.parse(parse, given, None) is not None:
                problems.add(
                    f"{given.at} is set but breaker_failures is not: the breaker "
                    "opens after that many failed calls"
                )
        return None
    count = problems.parse(positive_int, failures, None)
    span = problems.parse(positive_duration, window, DEFAULT_BREAKER_WINDOW)
    rest = problems.parse(duration, cooldown, DEFAULT_BREAKER_COOLDOWN)
    return None if count is None else BreakerConfig(count, span, rest)


def _given(table: Mapping[str, Any], key: str, at: str) -> Given | None:
    return Given(table[key], f"{at}.{key}") if key in table else None
