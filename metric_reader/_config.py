"""Configuration from the environment (SPEC section 2): one rule, validated before polling."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from ._durations import parse_duration
from ._selector import LabelMatcher, Selector, parse_label_filters
from ._state import LevelPolicy, MissingValueBehavior
from ._threshold import Threshold, parse_threshold

LOG_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}
LOG_FORMATS = ("text", "json")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

KNOWN_VARIABLES = (
    "METRIC_NAME",
    "LABEL_FILTERS",
    "QUERY",
    "THRESHOLD",
    "THRESHOLD_DURATION",
    "BACKOFF_DELAY",
    "POLLING_INTERVAL",
    "PROMETHEUS_ENDPOINT",
    "SCRAPE_URL",
    "PLUGIN_DIR",
    "ACTION_PLUGIN",
    "MISSING_VALUE_BEHAVIOR",
    "PLUGIN_TIMEOUT",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "HARD_THRESHOLD",
    "HARD_THRESHOLD_DURATION",
    "HARD_BACKOFF_DELAY",
    "HARD_ACTION_PLUGIN",
)


class ConfigError(Exception):
    """A user mistake in the configuration: reported as one line, exit code 2."""


@dataclass(frozen=True, slots=True)
class LevelConfig:
    threshold: Threshold
    duration: float
    backoff: float
    plugin: str | None

    def policy(self, retry_delay: float) -> LevelPolicy:
        return LevelPolicy(self.threshold, self.duration, self.backoff, retry_delay)


@dataclass(frozen=True, slots=True)
class RuleConfig:
    name: str
    metric_name: str
    """The metric name, or the PromQL text of a ``QUERY`` rule: what plugins are given."""
    selector: Selector | None
    """What a scrape reads, and what the Prometheus query is built from without ``QUERY``."""
    query: str | None
    source: Literal["prometheus", "scrape"]
    prometheus_endpoint: str
    scrape_url: str | None
    polling_interval: float
    missing: MissingValueBehavior
    base: LevelConfig | None
    """None without ``THRESHOLD``: the rule only reads and logs values."""
    hard: LevelConfig | None

    @property
    def promql(self) -> str:
        if self.query is not None:
            return self.query
        assert self.selector is not None
        return str(self.selector)

    def plugins(self) -> list[str]:
        return [lvl.plugin for lvl in (self.base, self.hard) if lvl and lvl.plugin]


@dataclass(frozen=True, slots=True)
class Settings:
    rules: tuple[RuleConfig, ...]
    plugin_dir: Path | None
    plugin_timeout: float
    log_level: str
    log_format: Literal["text", "json"]
    unknown_variables: tuple[str, ...] = ()
    """Environment variables that look like a misspelt setting, with a suggestion each."""


def _invalid(name: str, value: str, allowed: str) -> ConfigError:
    return ConfigError(f"{name}={value!r} is invalid: {allowed}")


class _Env:
    """Reads variables; an empty value counts as unset, as in most container manifests."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name)
        return value if value not in (None, "") and value.strip() else None

    def duration(self, name: str, default: str) -> float:
        text = self.get(name) or default
        try:
            return parse_duration(text)
        except ValueError as exc:
            raise _invalid(name, text, str(exc)) from None

    def threshold(self, name: str) -> Threshold | None:
        text = self.get(name)
        if text is None:
            return None
        try:
            return parse_threshold(text)
        except ValueError as exc:
            raise _invalid(name, text, str(exc)) from None

    def choice(self, name: str, default: str, allowed: Mapping[str, str] | tuple[str, ...]) -> str:
        text = self.get(name) or default
        key = text.strip().lower()
        if key not in allowed:
            raise _invalid(name, text, "expected one of " + ", ".join(allowed))
        return allowed[key] if isinstance(allowed, Mapping) else key

    def url(self, name: str, default: str | None = None) -> str | None:
        text = self.get(name) or default
        if text is None:
            return None
        try:
            url = httpx.URL(text.strip())
        except (httpx.InvalidURL, TypeError) as exc:
            raise _invalid(name, text, f"not a URL ({exc})") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise _invalid(name, text, "expected an http:// or https:// URL with a host")
        return str(url).rstrip("/") if name == "PROMETHEUS_ENDPOINT" else str(url)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build the settings from ``environ``; raise ``ConfigError`` on the first mistake."""
    env = _Env(environ)
    log_level = env.choice("LOG_LEVEL", "info", LOG_LEVELS)
    log_format = env.choice("LOG_FORMAT", "text", LOG_FORMATS)
    plugin_timeout = env.duration("PLUGIN_TIMEOUT", "30s")
    if plugin_timeout <= 0:
        raise _invalid("PLUGIN_TIMEOUT", env.get("PLUGIN_TIMEOUT") or "", "must be more than 0")
    plugin_dir_text = env.get("PLUGIN_DIR")
    plugin_dir = Path(plugin_dir_text) if plugin_dir_text else None
    if plugin_dir is not None and not plugin_dir.is_dir():
        raise _invalid("PLUGIN_DIR", plugin_dir_text or "", "no such directory")
    return Settings(
        rules=(_rule_from_env(env),),
        plugin_dir=plugin_dir,
        plugin_timeout=plugin_timeout,
        log_level=log_level,
        log_format=log_format,  # type: ignore[arg-type]
        unknown_variables=_misspelt(environ),
    )


def _rule_from_env(env: _Env) -> RuleConfig:
    metric_name = env.get("METRIC_NAME")
    query = env.get("QUERY")
    filters_text = env.get("LABEL_FILTERS")
    scrape_url = env.url("SCRAPE_URL")
    prometheus_endpoint = env.url("PROMETHEUS_ENDPOINT", "http://prometheus:9090")
    assert prometheus_endpoint is not None

    if metric_name is None and query is None:
        raise ConfigError(
            "METRIC_NAME is not set: set METRIC_NAME (a metric name such as queue_depth) "
            "or QUERY (a PromQL expression)"
        )
    if metric_name is not None:
        metric_name = metric_name.strip()
        if not _METRIC_NAME.fullmatch(metric_name):
            raise _invalid(
                "METRIC_NAME",
                metric_name,
                "expected a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*); "
                "use QUERY for a PromQL expression",
            )
    matchers: tuple[LabelMatcher, ...] = ()
    if filters_text is not None:
        try:
            matchers = parse_label_filters(filters_text)
        except ValueError as exc:
            raise _invalid("LABEL_FILTERS", filters_text, str(exc)) from None
    if query is not None:
        if filters_text is not None:
            raise _invalid(
                "LABEL_FILTERS",
                filters_text,
                "cannot be combined with QUERY; put the matchers into the query",
            )
        if scrape_url is not None:
            raise _invalid(
                "QUERY",
                query,
                "needs the Prometheus source, but SCRAPE_URL is set; "
                "a scrape reads METRIC_NAME with LABEL_FILTERS",
            )
    selector = Selector(metric_name, matchers) if metric_name is not None else None

    polling_interval = env.duration("POLLING_INTERVAL", "1s")
    if polling_interval <= 0:
        raise _invalid(
            "POLLING_INTERVAL", env.get("POLLING_INTERVAL") or "", "must be more than 0, e.g. 1s"
        )
    missing = MissingValueBehavior(
        env.choice("MISSING_VALUE_BEHAVIOR", "skip", tuple(m.value for m in MissingValueBehavior))
    )
    base = _level(env, "")
    hard = _level(env, "HARD_")
    if base is None:
        for name in ("ACTION_PLUGIN", "HARD_THRESHOLD"):
            if env.get(name) is not None:
                raise ConfigError(
                    f"{name}={env.get(name)!r} needs THRESHOLD: set THRESHOLD, "
                    "e.g. THRESHOLD='>80', to say when the action runs"
                )
    return RuleConfig(
        name=metric_name or "query",
        metric_name=metric_name or query or "",
        selector=selector,
        query=query.strip() if query else None,
        source="scrape" if scrape_url else "prometheus",
        prometheus_endpoint=prometheus_endpoint,
        scrape_url=scrape_url,
        polling_interval=polling_interval,
        missing=missing,
        base=base,
        hard=hard,
    )


def _level(env: _Env, prefix: str) -> LevelConfig | None:
    threshold = env.threshold(f"{prefix}THRESHOLD")
    duration = env.duration(f"{prefix}THRESHOLD_DURATION", "0s")
    backoff = env.duration(f"{prefix}BACKOFF_DELAY", "0s")
    plugin = env.get(f"{prefix}ACTION_PLUGIN")
    if threshold is None:
        if prefix:
            for name in ("ACTION_PLUGIN", "THRESHOLD_DURATION", "BACKOFF_DELAY"):
                if env.get(prefix + name) is not None:
                    raise ConfigError(
                        f"{prefix}{name}={env.get(prefix + name)!r} needs {prefix}THRESHOLD: "
                        f"set {prefix}THRESHOLD, e.g. '>95', for the escalation level"
                    )
        return None
    return LevelConfig(threshold, duration, backoff, plugin.strip() if plugin else None)


def _misspelt(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Names close to a setting's name but not one: almost always a typo worth a warning."""
    found = []
    for name in environ:
        if name in KNOWN_VARIABLES:
            continue
        close = difflib.get_close_matches(name, KNOWN_VARIABLES, n=1, cutoff=0.85)
        if close:
            found.append(f"{name} (did you mean {close[0]}?)")
    return tuple(sorted(found))
