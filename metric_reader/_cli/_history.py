"""``metric-reader history``: the action history (``HISTORY_FILE``) as a table or JSON, read
beside the running service that writes it."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping

from .._cluster import ActionHistory
from .._config import load_settings, parse_moment
from .._core import ConfigError, HistoryEntry, StateError, configure_logging, utc_text
from ._exits import EXIT_OK

NO_HISTORY = (
    "no action history to read: set HISTORY_FILE, or STATE_FILE (the history is then "
    "beside it); without either the service keeps it in memory, see GET /api/actions"
)


def show_history(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """The entries ``args`` select, newest first, on stdout."""
    settings = load_settings(env, rules=False)
    configure_logging(settings.log_level, settings.log_format)
    try:
        since = None if args.since is None else parse_moment(args.since, time.time())
    except ValueError as exc:
        raise ConfigError(f"--since {exc}") from None
    if args.limit < 1:
        raise ConfigError(f"--limit {args.limit}: must be at least 1")
    path = settings.history_file
    if path is None:
        raise ConfigError(NO_HISTORY)
    try:
        history = ActionHistory.open_read_only(path)
    except StateError as exc:
        raise ConfigError(f"HISTORY_FILE: {exc}") from None
    try:
        entries = history.query(since, args.rule, args.outcome, args.limit)
    finally:
        history.close()
    if args.format == "json":
        print(json.dumps([entry.as_dict() for entry in entries], indent=1, ensure_ascii=False))
    else:
        _print_table(entries)
    return EXIT_OK


def _print_table(entries: list[HistoryEntry]) -> None:
    if not entries:
        print("no actions recorded")
        return
    header = ("TIME", "RULE", "SERIES", "PLUGIN", "KIND", "OUTCOME", "REASON")
    rows = [
        (
            utc_text(e.at, "%Y-%m-%d %H:%M:%SZ"),
            e.rule,
            e.series_text(),
            e.plugin or "-",
            e.kind,
            e.outcome,
            e.why(),
        )
        for e in entries
    ]
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        print("  ".join([*cells, row[-1]]).rstrip())
