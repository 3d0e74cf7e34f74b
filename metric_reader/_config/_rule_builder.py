"""One rule's keys to a ``RuleConfig``: the same for the environment (one rule) and for each
``[[rules]]`` table of the rule file, so both say their errors the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._core import Selector
from ._guards import rule_guard, rule_verify
from ._keys import LEVEL_KEYS, RULE_KEYS
from ._problems import Given, Problems, env_name
from ._types import (
    DEFAULT_SERIES_LIMIT,
    LevelConfig,
    MissingValueBehavior,
    PrometheusQuery,
    PrometheusSelector,
    RuleConfig,
    RuleSource,
    ScrapePage,
)

if TYPE_CHECKING:
    from ._tomlfile import TomlFile

DEFAULT_PROMETHEUS = "http://prometheus:9090"


class Scope:
    """Names a rule's keys in the user's vocabulary, for errors about combinations."""

    def name(self, key: str) -> str:
        raise NotImplementedError

    def about(self) -> str:
        raise NotImplementedError


class _EnvScope(Scope):
    def name(self, key: str) -> str:
        return env_name(key)

    def about(self) -> str:
        return ""


class FileScope(Scope):
    def __init__(self, toml: TomlFile, index: int) -> None:
        self.toml, self.index = toml, index

    def name(self, key: str) -> str:
        return key

    def about(self) -> str:
        return self.toml.where(f"rules[{self.index}]") + ": "


ENV_SCOPE = _EnvScope()


def build_rule(raw: dict[str, Given], scope: Scope, problems: Problems) -> RuleConfig | None:
    """The rule ``raw`` gives, or None when it has mistakes (added to ``problems``)."""
    before = len(problems.lines)
    n = scope.name

    def value(key: str, default: Any = None) -> Any:
        return problems.parse(RULE_KEYS[key], raw.get(key), default)

    metric_name = value("metric_name")
    query = value("query") or None
    matchers = value("label_filters", ())
    scrape_url = value("scrape_url")
    endpoint = value("prometheus_endpoint", DEFAULT_PROMETHEUS)
    interval = value("polling_interval", 1.0)
    missing = value("missing_value_behavior", "skip")
    name = value("name")
    series_limit = value("series_limit", DEFAULT_SERIES_LIMIT)

    given_query = raw.get("query")
    no_query = given_query is None or not str(given_query.value).strip()  # blank: none either
    if "metric_name" not in raw and no_query:
        problems.add(
            f"{scope.about()}{n('metric_name')} is not set: set {n('metric_name')} "
            f"(a metric name such as queue_depth) or {n('query')} (a PromQL expression)"
        )
    if "query" in raw:
        if "label_filters" in raw:
            problems.invalid(
                raw["label_filters"],
                f"cannot be combined with {n('query')}; put the matchers into the query",
            )
        if "scrape_url" in raw:
            problems.invalid(
                raw["query"],
                f"needs the Prometheus source, but {n('scrape_url')} is set; "
                f"a scrape reads {n('metric_name')} with {n('label_filters')}",
            )
    if "verify_query" in raw and "scrape_url" in raw:  # the query's, or the file's default
        problems.add(
            f"{scope.about()}{n('scrape_url')} is set, so {raw['verify_query'].at} cannot be "
            f"read: a scrape runs no query; read the metric from Prometheus, or drop "
            f"{n('verify_query')} (the rule's own condition then judges its fixes)"
        )
    if "label_filters" in raw and any(m.name == "__name__" for m in matchers):
        problems.invalid(
            raw["label_filters"],
            f"cannot match __name__: the metric name is {n('metric_name')} "
            "(Prometheus refuses a selector that sets the metric name twice)",
        )
    if isinstance(scope, FileScope) and "name" not in raw:
        problems.add(f"{scope.about()}name is not set: every rule needs a unique name")
    guard = rule_guard(raw, str(name or metric_name or "query"), problems)
    verify = rule_verify(raw, problems)
    base = _build_level(raw, "", scope, problems)
    hard = _build_level(raw, "hard.", scope, problems)
    if "threshold" not in raw:
        for key in ("action_plugin", "hard.threshold"):
            if key in raw:
                problems.add(
                    f"{raw[key].at}={raw[key].value!r} needs "
                    f"{n('threshold')}: set {n('threshold')}, e.g. '>80', to say when the "
                    "action runs"
                )
    if len(problems.lines) > before:
        return None
    source: RuleSource
    defaulted = "prometheus_endpoint" not in raw
    if scrape_url:
        source = ScrapePage(scrape_url, Selector(metric_name, matchers))
    elif query is not None:
        source = PrometheusQuery(endpoint.rstrip("/"), query, defaulted)
    else:
        selector = Selector(metric_name, matchers)
        source = PrometheusSelector(endpoint.rstrip("/"), selector, defaulted)
    return RuleConfig(
        name=name or metric_name or "query",
        metric_name=metric_name or query or "",
        source=source,
        polling_interval=interval,
        missing=MissingValueBehavior(missing),
        base=base,
        hard=hard,
        series_limit=series_limit,
        guard=guard,
        verify=verify,
    )


def _build_level(
    raw: dict[str, Given], prefix: str, scope: Scope, problems: Problems
) -> LevelConfig | None:
    values = {
        key: problems.parse(parse, raw.get(prefix + key), None) for key, parse in LEVEL_KEYS.items()
    }
    if prefix + "threshold" not in raw:
        if prefix:
            for key in LEVEL_KEYS:
                if prefix + key in raw:
                    threshold = scope.name(prefix + "threshold")
                    problems.add(
                        f"{raw[prefix + key].at}={raw[prefix + key].value!r} "
                        f"needs {threshold}: set {threshold}, e.g. '>95', for the escalation "
                        "level"
                    )
                    break
        return None
    if values["threshold"] is None:
        return None
    count, window = values["breach_count"] or 1, values["breach_window"]
    if window is not None and count > window:
        problems.invalid(
            raw[prefix + "breach_count"],
            f"more than {scope.name(prefix + 'breach_window')}={window}: the level breaches "
            f"when at least that many of its last {window} evaluations did",
        )
        return None
    delay, most = values["backoff_delay"] or 0.0, values["backoff_max"]
    if most is not None and most < delay:
        problems.invalid(
            raw[prefix + "backoff_max"],
            f"less than {scope.name(prefix + 'backoff_delay')}, the first interval",
        )
        return None
    return LevelConfig(
        threshold=values["threshold"],
        duration=values["threshold_duration"] or 0.0,
        backoff=values["backoff_delay"] or 0.0,
        plugin=values["action_plugin"],
        keep_firing_for=values["keep_firing_for"] or 0.0,
        clear_threshold=values["clear_threshold"],
        breach_count=count,
        breach_window=window or count,  # breach_count alone: that many in a row
        backoff_multiplier=values["backoff_multiplier"] or 1.0,
        backoff_max=most,
    )


def check_unique_names(rules: list[tuple[int, dict[str, Given]]], problems: Problems) -> None:
    seen: dict[object, int] = {}
    for index, raw in rules:
        given = raw.get("name")
        if given is None or not isinstance(given.value, str):
            continue
        if given.value in seen:
            problems.invalid(
                given, f"a rule of that name is already defined at rules[{seen[given.value]}]"
            )
        seen.setdefault(given.value, index)
