"""The commands built on replays: ``backtest`` and ``test``. Each imports what only it
needs when it runs (the backtest's HTTP client and event loop, the test runner), so that
``metric-reader test`` starts fast."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, TextIO

from .._config import parse_url
from .._core import ConfigError, parse_duration, without_url_credentials

if TYPE_CHECKING:
    from .._config import Settings

EXIT_OK, EXIT_FAILED = 0, 1


class BacktestOptions(NamedTuple):  # not a frozen dataclass: ten times cheaper to define
    start: str
    end: str | None = None
    rules: tuple[str, ...] = ()
    step: str | None = None
    prometheus: str | None = None
    format: str = "text"
    html: Path | None = None


def backtest_command(settings: Settings, options: BacktestOptions) -> int:
    """Print the backtest; exit 1 when the history of a rule could not be read
    (``RuleBacktest.unread``; the others are still reported), else 0; ``ConfigError`` for
    bad flags."""
    import anyio

    from ._backtest import SHORTEST_STEP, backtest, check_evaluations, select_rules, window
    from ._report import json_report, text_report

    span = window(options.start, options.end, time.time())
    rules = select_rules(settings, options.rules)
    step = None
    if options.step is not None:
        try:
            step = parse_duration(options.step)
        except ValueError as exc:
            raise ConfigError(f"--step {options.step!r}: {exc}") from None
        if step <= 0:
            raise ConfigError(f"--step {options.step!r}: must be more than 0")
        if step < SHORTEST_STEP:
            raise ConfigError(f"--step {options.step!r}: must be at least 1ms, e.g. 1s")
    check_evaluations(rules, span, step)
    prometheus = _prometheus_flag(options.prometheus)
    if options.html is not None and not options.html.parent.is_dir():
        raise ConfigError(
            f"--html {str(options.html)!r}: no directory {str(options.html.parent)!r}"
        )
    results = anyio.run(backtest, settings, rules, span, step, prometheus)
    if options.format == "json":
        json.dump(json_report(results, span), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(text_report(results, span))
    if options.html is not None:
        from ._html_report import write_html  # only with --html

        try:
            write_html(options.html, results, span)
        except OSError as exc:
            raise ConfigError(f"--html {str(options.html)!r}: {exc.strerror or exc}") from None
    return EXIT_FAILED if any(result.unread for result in results) else EXIT_OK


def _prometheus_flag(given: str | None) -> str | None:
    """``--prometheus``, checked as ``PROMETHEUS_ENDPOINT`` is: credentials in it are refused
    (the request would carry them, and the report would show them), with the password not
    shown."""
    if not given:
        return None
    try:
        parse_url(given)
    except ValueError as exc:
        raise ConfigError(f"--prometheus {without_url_credentials(given)!r}: {exc}") from None
    return given.rstrip("/")


def test_command(paths: Sequence[Path]) -> int:
    """Run the rule test files, report as ``promtool test rules`` 2.42 does; 0 when every
    test passed, 1 otherwise (a file that cannot be read counts as failed).

    stdout has what promtool prints there: ``Unit Testing:  FILE``, ``  SUCCESS`` and blank
    lines (one a failure, one a file); stderr has ``  FAILED:``, each failure and the
    warnings, so that a script reading either stream reads what it reads of promtool's."""
    from ._ruletest import run_test_file

    failed = False
    for path in paths:
        _say(sys.stdout, f"Unit Testing:  {path}\n")
        warnings, groups = run_test_file(path)
        for warning in warnings:
            _say(sys.stderr, f"  WARNING: {warning}\n")
        failures = [_named(group.name, f) for group in groups for f in group.failures]
        if failures:
            failed = True
            _say(sys.stderr, "  FAILED:\n")
            for failure in failures:
                _say(sys.stderr, f"{failure}\n")
                _say(sys.stdout, "\n")
        else:
            _say(sys.stdout, "  SUCCESS\n")
        _say(sys.stdout, "\n")
    return EXIT_FAILED if failed else EXIT_OK


def _named(group: str, failure: str) -> str:
    """The failure as promtool prints it: under ``    name: NAME,`` for the failures it
    names the group of, when the group has a name."""
    from ._ruletest import UnderGroupName  # imported by test_command already

    if group and isinstance(failure, UnderGroupName):
        return f"    name: {group},\n{failure}"
    return failure


def _say(stream: TextIO, text: str) -> None:
    """Written at once, as promtool's unbuffered writes: on a terminal the two streams
    interleave as promtool's do."""
    stream.write(text)
    stream.flush()
