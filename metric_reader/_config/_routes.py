"""``[[routes]]``: which plugin an alert of a Prometheus rule file goes to, by its labels.

As in Alertmanager's routing tree, flattened: routes are tried in order; the first whose
matchers all match the alert's labels takes it, and a route with ``continue = true`` lets
the next matching ones take it too. An alert no route takes goes to the rule file's
``action_plugin`` (or is only logged without one).

Matchers are Alertmanager's: ``severity="page"``, ``team=~"db|storage"``, ``env!=dev``;
the value may be quoted (PromQL's string syntax) or not, and may be empty (``env!=``: the
label is set). Regexes are fully anchored RE2, a label the alert does not have is the empty
string, as everywhere in metric-reader.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from .._core import LabelMatcher, MatchOp, parse_label_filters, record, record_field
from ._problems import Given, Problems
from ._values import (
    choice,
    duration,
    multiplier,
    names,
    plugin_name,
    positive_duration,
    positive_int,
    promql,
)
from ._verify import VerifyConfig

ROUTE_KEYS = (
    "matchers",
    "action_plugin",
    "backoff_delay",
    "backoff_multiplier",
    "backoff_max",
    "continue",
    "mode",
    "mute_time_intervals",
    "active_time_intervals",
    "verify_within",
    "max_attempts",
    "escalate_plugin",
    "verify_query",
    "approval_plugin",
)
_UNQUOTED = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*")


GuardMode = Literal["auto", "shadow", "approve"]


@record(frozen=True, slots=True)
class Route:
    matchers: tuple[LabelMatcher, ...]
    plugin: str
    backoff: float | None
    """The repeat interval of the alerts it takes; None: the rule file's ``backoff_delay``."""
    continue_: bool
    where: str
    """``rules.toml:12: routes[1]``, for messages."""
    mode: GuardMode | None = None
    """``shadow``: the calls it takes are recorded, never made; ``approve``: each waits
    for an approval; None: the rule's mode."""
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()
    backoff_multiplier: float | None = None
    backoff_max: float | None = None
    """Escalating repeats of the alerts it takes; None: the rule file's."""
    verify: VerifyConfig = record_field(default_factory=VerifyConfig)
    """Whether the fixes of the alerts it takes held; what is not set: the rule's."""
    approval_plugin: str | None = None
    """Where its approval requests go; None: the rule's ``approval_plugin``."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)

    def may_match(self, known: Mapping[str, str]) -> bool:
        """Whether an alert whose labels include ``known`` (and perhaps more, from its
        series) can match: no matcher on a label in ``known`` refuses it."""
        return all(m.matches(known) for m in self.matchers if m.name in known)

    def __str__(self) -> str:
        return f"{{{', '.join(str(m) for m in self.matchers)}}} -> {self.plugin}"


def routes_for(routes: tuple[Route, ...], labels: Mapping[str, str]) -> list[Route]:
    """The routes that take an alert with ``labels``, in order."""
    taken = []
    for route in routes:
        if route.matches(labels):
            taken.append(route)
            if not route.continue_:
                break
    return taken


def parse_matcher(text: str) -> LabelMatcher:
    """One Alertmanager matcher; ``ValueError`` saying what is wrong."""
    try:
        [matcher] = parse_label_filters(text)
        return matcher
    except ValueError as quoted_error:
        found = _UNQUOTED.fullmatch(text)
        # A value that starts with a quote was meant quoted: its own error says why not.
        # An empty one is a value too (``env=``: the label is empty or missing).
        if found is None or found.group(3).startswith(('"', "'", "`")):
            raise quoted_error from None
        return LabelMatcher(found.group(1), MatchOp(found.group(2)), found.group(3))


def read_routes(value: Any, where: str, problems: Problems) -> tuple[Route, ...]:
    """The ``[[routes]]`` tables of the rule file (``where`` names them)."""
    if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
        problems.add(f"{where}: expected [[routes]] tables")
        return ()
    routes = []
    for index, table in enumerate(value):
        at = f"{where}[{index}]"
        before = len(problems.lines)
        for key in table:
            if key not in ROUTE_KEYS:
                problems.add(f"{at}.{key}: unknown key; a route takes {', '.join(ROUTE_KEYS)}")
        matchers = _matchers(table.get("matchers", []), f"{at}.matchers", problems)
        plugin = problems.parse(plugin_name, _given(table, "action_plugin", at), None)
        if plugin is None and "action_plugin" not in table:
            problems.add(f"{at}: action_plugin is not set: a route names the plugin it calls")
        backoff = problems.parse(duration, _given(table, "backoff_delay", at), None)
        grow = problems.parse(multiplier, _given(table, "backoff_multiplier", at), None)
        most = problems.parse(duration, _given(table, "backoff_max", at), None)
        go_on = table.get("continue", False)
        if not isinstance(go_on, bool):
            problems.add(f"{at}.continue={go_on!r} is invalid: expected true or false")
        mode = problems.parse(
            choice(("auto", "shadow", "approve")), _given(table, "mode", at), None
        )
        asks = problems.parse(plugin_name, _given(table, "approval_plugin", at), None)
        mute = problems.parse(names, _given(table, "mute_time_intervals", at), ())
        active = problems.parse(names, _given(table, "active_time_intervals", at), ())
        verify = VerifyConfig(
            problems.parse(positive_duration, _given(table, "verify_within", at), None),
            problems.parse(positive_int, _given(table, "max_attempts", at), None),
            problems.parse(plugin_name, _given(table, "escalate_plugin", at), None),
            problems.parse(promql, _given(table, "verify_query", at), None) or None,
        )
        if len(problems.lines) == before and plugin is not None:
            routes.append(
                Route(
                    matchers,
                    plugin,
                    backoff,
                    bool(go_on),
                    at,
                    mode,
                    mute,
                    active,
                    grow,
                    most,
                    verify,
                    asks,
                )
            )
    return tuple(routes)


def _given(table: Mapping[str, Any], key: str, at: str) -> Given | None:
    return Given(table[key], f"{at}.{key}") if key in table else None


def _matchers(value: Any, at: str, problems: Problems) -> tuple[LabelMatcher, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        problems.add(f"{at}: expected a list of matchers, e.g. ['severity=\"page\"']")
        return ()
    matchers = []
    for text in items:
        try:
            matchers.append(parse_matcher(text))
        except ValueError as exc:
            problems.add(f"{at}: {text!r} is not a matcher: {exc}")
    return tuple(matchers)
