"""``metric-reader plugins`` and ``fire``, for plugin authors: every plugin found and why
one did not load, and one plugin's ``execute`` (or ``resolve``) run once on a made-up
event."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

import anyio

from .._actions import PluginFailure, bundled_plugin_dir
from .._core import (
    ConfigError,
    Event,
    EventKind,
    idempotency_key,
    parse_duration,
    parse_threshold,
    parse_value,
)
from ._exits import EXIT_FATAL, EXIT_OK
from ._loading import plugin_catalog

_T = TypeVar("_T")


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


def fire_plugin(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """``fire``'s flags made into an event, the plugin called with it, how it went said."""
    threshold = _argument("--threshold", args.threshold, lambda t: parse_threshold(t).text)
    duration = _argument("--duration", args.duration, parse_duration)
    value = _argument("--value", args.value, parse_value)
    labels = dict(_argument("--label", label, _label_pair) for label in args.label)
    settings, catalog = plugin_catalog(env)
    plugin = catalog.plugins.get(args.name)
    if plugin is None:
        raise ConfigError(f"plugin {args.name!r} {catalog.explain_missing(args.name)}")
    kind: EventKind = "resolve" if args.resolve else args.kind
    breach_started = datetime.now(UTC) - timedelta(seconds=duration)
    fire_count = 0 if kind == "fire" else 1
    event = Event(
        rule="fire",
        metric_name=args.metric,
        labels=labels,
        value=value,
        threshold=threshold,
        level=args.level,
        kind=kind,
        breach_started=breach_started,
        duration=timedelta(seconds=duration),
        fire_count=fire_count,
        plugin=plugin.name,
        idempotency_key=idempotency_key(
            "fire", labels, args.level, breach_started, 1, kind, fire_count
        ),
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
