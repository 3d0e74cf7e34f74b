"""``metric-reader plugins`` and ``fire``, for plugin authors: every plugin found and why
one did not load, and one plugin's ``execute`` (or ``resolve``) run once on a made-up
event."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

import anyio

from .._actions import PluginFailure, bundled_plugin_dir
from .._config import Settings
from .._core import (
    ConfigError,
    Event,
    EventKind,
    idempotency_key,
    is_label_name,
    parse_duration,
    parse_threshold,
    parse_value,
)
from .._core._gotemplate import TemplateError, check_template, expand_alert_template
from .._engine import generator_url
from ._exits import EXIT_FATAL, EXIT_OK
from ._loading import plugin_catalog

_T = TypeVar("_T")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def list_plugins(env: Mapping[str, str]) -> int:
    """A table on stdout: each plugin found, where from, whether it loaded and its file."""
    _, catalog = plugin_catalog(env)
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
        elif problem.path is None:  # to be made of another plugin, which is not there
            origin, where = "CONFIG_FILE", problem.source
        else:
            origin = "bundled" if problem.path.parent == bundled_dir else "PLUGIN_DIR"
            where = str(problem.path)
        if problem.made_of is not None:
            origin = f"{problem.made_of} ({origin})"
        rows.append((problem.key, origin, status, where))
    header = ("NAME", "FROM", "FILE", "STATUS")
    table = [header, *((name, origin, path, status) for name, origin, status, path in sorted(rows))]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        print("  ".join([*cells, row[3]]))
    return EXIT_OK


def fire_plugin(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``fire``'s flags made into an event, the plugin called with it, how it went said."""
    duration = _argument("--duration", args.duration, parse_duration)
    value = _argument("--value", args.value, parse_value)
    labels = dict(_argument("--label", label, _label_pair) for label in args.label)
    alert = _alert(args, labels)
    series = dict(labels)  # an annotation's $labels: the series', without alertname
    if alert is None:
        text = ">0" if args.threshold is None else args.threshold
        threshold = _argument("--threshold", text, _threshold)
        rule, metric = "fire", "test_metric" if args.metric is None else args.metric
    else:
        threshold = "vector(1)" if args.threshold is None else args.threshold
        rule, metric = alert, alert
        labels["alertname"] = alert
    given = [_argument("--annotation", pair, _annotation_pair) for pair in args.annotation]
    settings, catalog = plugin_catalog(env)
    annotations = {
        name: _annotation(name, text, series, value, alert, settings) for name, text in given
    }
    plugin = catalog.plugins.get(args.name)
    if plugin is None:
        raise ConfigError(f"plugin {args.name!r} {catalog.explain_missing(args.name)}")
    kind: EventKind = "resolve" if args.resolve else args.kind
    breach_started = datetime.now(UTC) - timedelta(seconds=duration)
    fire_count = 0 if kind == "fire" else 1
    event = Event(
        rule=rule,
        metric_name=metric,
        labels=labels,
        value=value,
        threshold=threshold,
        level=args.level,
        kind=kind,
        breach_started=breach_started,
        duration=timedelta(seconds=duration),
        fire_count=fire_count,
        plugin=plugin.name,
        annotations=annotations,
        idempotency_key=idempotency_key(
            rule, labels, args.level, breach_started, 1, kind, fire_count
        ),
        external_labels=dict(settings.external_labels),
        generator_url=generator_url(settings.external_url, threshold if alert else metric),
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


def _threshold(text: str) -> str:
    try:
        return parse_threshold(text).text
    except ValueError as exc:
        raise ValueError(f"{exc} (an alert's expr: add --alert ALERTNAME)") from None


def _label_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError("expected NAME=VALUE, e.g. --label namespace=prod")
    return name.strip(), value


def _annotation_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not is_label_name(name.strip()):
        raise ValueError(
            "expected NAME=TEMPLATE with NAME a label name, e.g. "
            "--annotation summary='{{ $labels.instance }} is down'"
        )
    return name.strip(), value


def _alert(args: argparse.Namespace, labels: Mapping[str, str]) -> str | None:
    """``--alert``'s name, checked as Prometheus checks an alert's (and against the flags
    it stands for); None without it."""
    alert: str | None = args.alert
    if alert is None:
        return None
    if not _METRIC_NAME.fullmatch(alert):
        raise ConfigError(
            f"--alert={alert!r} is invalid: an alert's name is a metric name "
            "([a-zA-Z_:][a-zA-Z0-9_:]*), e.g. --alert HighLoad"
        )
    if args.metric is not None:
        raise ConfigError(f"--metric and --alert: an alert's metric name is its name, {alert!r}")
    if labels.get("alertname", alert) != alert:
        raise ConfigError(
            f"--label alertname={labels['alertname']!r} and --alert={alert!r} disagree: "
            "--alert sets the alertname label"
        )
    if args.threshold is not None and not args.threshold.strip():
        raise ConfigError(
            f"--threshold={args.threshold!r} is invalid: with --alert it is the alert's expr, "
            "e.g. --threshold 'node_load1 > 4'"
        )
    return alert


def _annotation(
    name: str,
    text: str,
    labels: Mapping[str, str],
    value: float,
    alert: str | None,
    settings: Settings,
) -> str:
    """An annotation as a rule file's alert renders it: ``$labels``, ``$value``, and the
    service's ``$externalLabels`` and ``$externalURL``."""
    template = f"__alert_{alert or 'fire'}"
    try:
        check_template(text, template)
    except TemplateError as exc:
        raise ConfigError(f"--annotation {name}={text!r} is invalid: {exc}") from None
    return expand_alert_template(
        text,
        template,
        labels=labels,
        value=value,
        external_labels=settings.external_labels,
        external_url=settings.external_url,
    )
