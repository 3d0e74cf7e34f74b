"""Every setting's key and the parser of its value. A key is the same in the rule file and,
upper-cased, in the environment (``hard.threshold``, ``HARD_THRESHOLD``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._client_settings import CLIENT_KEYS
from ._problems import env_name
from ._types import MissingValueBehavior
from ._values import (
    boolean,
    breach_window,
    breaching_limit,
    byte_size,
    choice,
    directory,
    duration,
    external_labels,
    external_url,
    globs,
    label_filters,
    lease_name,
    listen_address,
    long_duration,
    metric_name,
    multiplier,
    names,
    namespace,
    plugin_name,
    positive_duration,
    positive_int,
    promql,
    readable_file,
    rule_name,
    shard_index,
    state_file,
    threshold,
    url,
)

Parser = Callable[[object], Any]

LOG_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}
LOG_FORMATS = ("text", "json")

ELECTION_KEYS: dict[str, Parser] = {
    "enabled": boolean,
    "lock_name": lease_name,
    "lock_namespace": namespace,
    "lease_duration": positive_duration,
    "renew_deadline": positive_duration,
    "retry_period": positive_duration,
}
LEVEL_KEYS: dict[str, Parser] = {
    "threshold": threshold,
    "threshold_duration": duration,
    "backoff_delay": duration,
    "action_plugin": plugin_name,
    "keep_firing_for": duration,
    "clear_threshold": threshold,
    "breach_count": breach_window,
    "breach_window": breach_window,
    "backoff_multiplier": multiplier,
    "backoff_max": duration,
}
GUARD_KEYS: dict[str, Parser] = {
    "max_actions": positive_int,
    "per": positive_duration,
    "max_breaching": breaching_limit,
    "storm_plugin": plugin_name,
    "mode": choice(("auto", "shadow", "approve")),
    "mute_time_intervals": names,
    "active_time_intervals": names,
}
"""A rule's limits (``_guards``): on a ``[[rules]]`` entry, or at the top as every rule's."""
VERIFY_KEYS: dict[str, Parser] = {
    "verify_within": positive_duration,
    "max_attempts": positive_int,
    "escalate_plugin": plugin_name,
    "verify_query": promql,
}
"""Whether a rule's fixes held (``_guards.rule_verify``); on a route too."""
APPROVAL_KEYS: dict[str, Parser] = {
    "approval_plugin": plugin_name,
    "approval_timeout": positive_duration,
}
"""``mode = "approve"``: where the approval request goes and how long it waits
(``_guards``); on a rule, or at the top as every rule's."""
RULE_KEYS: dict[str, Parser] = {
    "name": rule_name,
    "metric_name": metric_name,
    "label_filters": label_filters,
    "query": promql,
    "scrape_url": url,
    "prometheus_endpoint": url,
    "polling_interval": positive_duration,
    "missing_value_behavior": choice(tuple(m.value for m in MissingValueBehavior)),
    "series_limit": positive_int,
    **LEVEL_KEYS,
    **GUARD_KEYS,
    **VERIFY_KEYS,
    **APPROVAL_KEYS,
    **{f"hard.{key}": parse for key, parse in LEVEL_KEYS.items()},
}
IDENTITY_KEYS = ("name", "metric_name", "label_filters", "query")
"""Keys that belong to one rule only: never defaults for the others."""
SERVICE_KEYS: dict[str, Parser] = {
    "plugin_dir": directory,
    "plugin_dir_insecure": boolean,
    "plugin_timeout": positive_duration,
    "log_level": choice(LOG_LEVELS),
    "log_format": choice(LOG_FORMATS),
    "max_concurrent_queries": positive_int,
    "batch_selectors": boolean,
    "batch_expressions": boolean,
    "rule_files": globs,
    "dry_run": boolean,
    "listen_address": listen_address,
    "enable_lifecycle": boolean,
    "watch_config": boolean,
    "state_file": state_file,
    "history_file": state_file,
    "history_retention": long_duration,
    "max_response_bytes": byte_size,
    "shard_count": positive_int,
    "shard_index": shard_index,
    **{f"leader_election_{key}": parse for key, parse in ELECTION_KEYS.items()},
    "kubernetes_service_account_dir": directory,
    "external_labels": external_labels,
    "external_url": external_url,
    "paused": boolean,
    "approval_token_file": readable_file,
}
DEFAULTABLE_KEYS = tuple(k for k in RULE_KEYS if k not in IDENTITY_KEYS)
"""Rule keys a rule file may give at the top, as the default of every rule."""
ENV_RULE_KEYS = ("metric_name", "label_filters", "query")
"""Identity keys read from the environment (never ``name``: NAME is too common)."""
SECRET_KEYS = frozenset({"basic_auth_password", "http_headers"})
"""Keys whose values are never shown, not even in a configuration error."""
TOP_LEVEL_KEYS = (*SERVICE_KEYS, *CLIENT_KEYS, *DEFAULTABLE_KEYS)

KNOWN_VARIABLES = (
    "CONFIG_FILE",
    *(env_name(k) for k in (*SERVICE_KEYS, *CLIENT_KEYS, *RULE_KEYS) if k != "name"),
)
