"""The command line: ``run`` (the default), ``check``, ``plugins``, ``fire``, ``backtest``,
``test``, ``history``, and ``silence``, ``pause`` and ``resume`` (``_governor``: they talk to
the running service).

Exit codes: 0 clean stop, 2 invalid configuration or plugin, 1 anything
unexpected. A user mistake is one line on stderr, never a traceback.

Here: the program's entry, the arguments and which command they name, and the event loop
the service runs on. Each group of commands has its module: the service (``_run``),
``check`` (``_check``), ``plugins`` and ``fire`` (``_plugins``), ``history``
(``_history``); the replay's commands
(``backtest``, ``test``) are the replay layer's. What they share: loading and validating
the configuration (``_loading``), the exit codes (``_exits``).

A command's module is imported when that command runs (``--version`` and ``--help`` import
none, nor loguru): ``test`` and ``check`` are a developer's inner loop and a CI step, and
start-up is most of their time (``python -X importtime -m metric_reader test FILE``;
``make bench``, rule_tests).
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace  # loaded by typing already
from typing import TYPE_CHECKING, Any, NoReturn, cast

from .. import __version__
from .._core import ConfigError
from ._exits import EXIT_CONFIG, EXIT_FATAL, EXIT_OK, say_config_error

if TYPE_CHECKING:
    import argparse

    from loguru import Logger

__all__ = ["EVENT_LOOP", "EXIT_CONFIG", "EXIT_FATAL", "EXIT_OK", "entry", "loop_options", "main"]

ONE_SHOT_GC_THRESHOLD = 100_000
"""Allocations between two collections of the young generation in a command that runs once
(``test``, ``check``, ``backtest``...); the service keeps Python's 700."""
_GOVERNOR_COMMANDS = ("silence", "pause", "resume", "approve", "deny")
_COMMANDS = ("run", "check", "plugins", "fire", "backtest", "test", "history", *_GOVERNOR_COMMANDS)
"""The commands, as the parser lists them."""
CLEANUP_SECONDS = 1.0
"""At exit, how long cancelled ``async def`` plugin calls get to finish their clean-up."""


def entry() -> NoReturn:
    """The program (``metric-reader``, ``python -m metric_reader``): :func:`main`, then an
    exit that no thread left behind by a plugin can hold up."""
    service_thresholds = gc.get_threshold()
    # A command runs once and exits: the collector's young generation is looked at every
    # 100,000 allocations, not 700 (the imports and a rule test's reading make millions of
    # objects, nearly none of them garbage; about 30 ms of a 190 ms test). The service
    # keeps Python's thresholds.
    gc.set_threshold(ONE_SHOT_GC_THRESHOLD, *service_thresholds[1:])
    args = _parse(None)
    if args.handler is _run_command:
        gc.set_threshold(*service_thresholds)
    code = _dispatch(args, os.environ)
    if args.handler is _test_command or (args.handler is _check_command and not _plugins_loaded()):
        # A rule test, or a check that loaded no plugin, holds nothing to save (its log
        # lines are written as they come): the interpreter's tear-down of every module
        # (~10 ms of a developer's inner loop and of a CI step) is skipped.
        _flush_and_exit(code)
    held = _threads_left_by_plugins()
    if held:
        # Python would wait for each of these without limit (an executor's or anyio's
        # worker thread that a plugin left hanging): everything is saved and logged, so
        # end here.
        logger = _logger()
        logger.bind(threads=", ".join(held)).debug("not waiting for threads left by plugins")
        logger.complete()
        _flush_and_exit(code)
    raise SystemExit(code)


def _flush_and_exit(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return _dispatch(_parse(argv), os.environ if environ is None else environ)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command ``argv`` names (``sys.argv[1:]`` when None). No argument at all is the
    service, as the parser says: argparse (half a megabyte resident with the compression
    modules its help formatter imports) is imported for the other commands only."""
    given = sys.argv[1:] if argv is None else argv
    if not given:
        return cast("argparse.Namespace", SimpleNamespace(handler=_run_command))
    plain = _plain_test_or_check(given)
    if plain is not None:
        return plain
    return _parser(given).parse_args(argv)


def _plain_test_or_check(given: Sequence[str]) -> argparse.Namespace | None:
    """What the parser makes of ``test FILE...`` and ``check [--no-read]`` written plainly
    (no other option, no abbreviation, no ``--``), without argparse: its import and its
    help texts' translation lookups are ~5 ms of every rule test and check. None for
    anything else, which the parser reads (``tests/test_cli_parse.py`` holds them equal)."""
    command, *rest = given
    if command == "test" and rest and not any(arg.startswith("-") and arg != "-" for arg in rest):
        files = [Path(arg) for arg in rest]
        return cast("argparse.Namespace", SimpleNamespace(files=files, handler=_test_command))
    if command == "check" and rest in ([], ["--no-read"]):
        no_read = bool(rest)
        return cast("argparse.Namespace", SimpleNamespace(no_read=no_read, handler=_check_command))
    return None


def _dispatch(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if args.handler is not _test_command:  # a rule test prints its report, logs nothing
        _configure_logging()
    try:
        return int(args.handler(args, env))
    except ConfigError as exc:
        say_config_error(str(exc))
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:  # `metric-reader check | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        _configure_logging()
        _logger().exception("fatal error")
        return EXIT_FATAL


def _threads_left_by_plugins() -> list[str]:
    """What would hold up Python's exit (``_actions.threads_holding_exit``), once cancelled
    plugin calls have had ``CLEANUP_SECONDS``. Plugins run only through the actions layer:
    when the command loaded no plugin, none ran, and there is nothing to wait for."""
    if not _plugins_loaded():
        return []
    from .._actions import settle, threads_holding_exit

    settle(CLEANUP_SECONDS)
    return threads_holding_exit()


def _plugins_loaded() -> bool:
    """Whether the command loaded a plugin (each is loaded by the actions layer's loader;
    ``check`` may import the layer only to learn that none is installed)."""
    return "metric_reader._actions._loader" in sys.modules


def _configure_logging() -> None:
    """The default logging (INFO, text, stderr) until a command reads the settings."""
    from .._core import configure_logging

    configure_logging()


def _logger() -> Logger:
    from .._core import logger

    return logger


def _parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the arguments, with only the command they name
    built (every command when they name none: ``--help``, a mistyped command), each
    command's parser costing a command that runs once (``test``, ``check``) its time."""
    import argparse

    named = argv[0] if argv else None

    def wanted(command: str) -> bool:
        return named not in _COMMANDS or named == command

    parser = argparse.ArgumentParser(
        prog="metric-reader",
        description="Watch a metric and run a plugin when a threshold has been crossed for "
        "long enough. Configured from the environment (see README).",
    )
    parser.add_argument("--version", action="version", version=f"metric-reader {__version__}")
    parser.set_defaults(handler=_run_command)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    if wanted("run"):
        commands.add_parser("run", help="run the service (the default)").set_defaults(
            handler=_run_command
        )
    if wanted("check"):
        check = commands.add_parser(
            "check",
            help="validate the configuration and its plugins, read each source once, print a "
            "summary, exit 0 or 2",
        )
        check.add_argument(
            "--no-read",
            action="store_true",
            help="do not read the sources (e.g. in CI, where they cannot be reached)",
        )
        check.set_defaults(handler=_check_command)
    if wanted("plugins"):
        commands.add_parser(
            "plugins", help="list the plugins found: bundled, of installed packages, in PLUGIN_DIR"
        ).set_defaults(handler=_plugins_command)
    if wanted("fire"):
        fire = commands.add_parser("fire", help="run one plugin's execute once and report")
        fire.add_argument("name", help="the plugin's name")
        fire.add_argument("--metric", help="metric name (test_metric)")
        fire.add_argument("--value", default="NaN", help="metric value (NaN)")
        fire.add_argument(
            "--threshold", help="threshold text (>0); with --alert, the alert's expr (vector(1))"
        )
        fire.add_argument(
            "--alert",
            metavar="ALERTNAME",
            help="an alert of a rule file: the rule, metric name and alertname label",
        )
        fire.add_argument("--duration", default="0s", help="breach duration, e.g. 30s (0s)")
        fire.add_argument(
            "--label",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="a series label for event.labels; repeat for more",
        )
        fire.add_argument(
            "--annotation",
            action="append",
            default=[],
            metavar="NAME=TEMPLATE",
            help="an annotation for event.annotations, rendered as a rule file's; repeat for more",
        )
        fire.add_argument("--kind", choices=("fire", "repeat"), default="fire", help="event kind")
        fire.add_argument("--level", choices=("base", "hard"), default="base", help="event level")
        fire.add_argument(
            "--resolve", action="store_true", help="call resolve (kind resolve) instead of execute"
        )
        fire.set_defaults(handler=_fire_command)
    if wanted("backtest"):
        backtest = commands.add_parser(
            "backtest",
            help="replay the rules over their history in Prometheus: when each series would have "
            "gone pending, fired and resolved, and which plugins would have been called",
        )
        backtest.add_argument(
            "--from",
            dest="start",
            required=True,
            metavar="WHEN",
            help="start: a duration back from now (2h, 7d) or an RFC 3339 time",
        )
        backtest.add_argument("--to", dest="end", metavar="WHEN", help="end, as --from (now)")
        backtest.add_argument(
            "--rule", action="append", default=[], metavar="NAME", help="only this rule; repeat"
        )
        backtest.add_argument(
            "--step", metavar="DURATION", help="evaluate every DURATION (each rule's interval)"
        )
        backtest.add_argument(
            "--prometheus",
            metavar="URL",
            help="a Prometheus that scrapes the pages SCRAPE_URL rules read, to backtest them",
        )
        backtest.add_argument("--format", choices=("text", "json"), default="text")
        backtest.add_argument(
            "--html",
            metavar="FILE",
            type=Path,
            help="also write a report with a timeline per series",
        )
        backtest.set_defaults(handler=_backtest_command)
    if wanted("test"):
        test = commands.add_parser(
            "test",
            help="run rule unit tests (promtool's test-file format, plus action_test and "
            "plugin_failures); exit 0 when all pass, 1 otherwise",
        )
        test.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a test file")
        test.set_defaults(handler=_test_command)
    if wanted("history"):
        from typing import get_args

        from .._core import Outcome

        history = commands.add_parser(
            "history",
            help="the action history (HISTORY_FILE): each owed plugin call and what became of it, "
            "newest first",
        )
        history.add_argument("--rule", metavar="NAME", help="only this rule")
        history.add_argument(
            "--since",
            metavar="WHEN",
            help="from: a duration back from now (1h, 7d) or an RFC 3339 time",
        )
        history.add_argument(
            "--outcome",
            choices=get_args(Outcome),
            help="only this outcome",
        )
        history.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (100)")
        history.add_argument("--format", choices=("text", "json"), default="text")
        history.set_defaults(handler=_history_command)
    _add_governor_commands(commands, wanted)
    return parser


def _add_governor_commands(commands: Any, wanted: Callable[[str], bool]) -> None:
    """``silence``, ``pause``, ``resume``, ``approve`` and ``deny`` on the parser's
    subcommands (all of them, or none when the arguments name another command)."""
    if not any(wanted(command) for command in _GOVERNOR_COMMANDS):
        return
    import argparse

    url = argparse.ArgumentParser(add_help=False)
    url.add_argument(
        "--url",
        help="the running service (default: from LISTEN_ADDRESS, else http://localhost:9180)",
    )
    silence = commands.add_parser(
        "silence",
        help="add, query or expire the running service's silences (as amtool does)",
    )
    actions = silence.add_subparsers(title="silence commands", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        parents=[url],
        help="silence the alerts matching every MATCHER (alertname=DiskFull 'instance=~\"db.*\"')",
    )
    add.add_argument("matchers", nargs="+", metavar="MATCHER")
    add.add_argument("-d", "--duration", default="1h", help="how long (1h); --end overrides")
    add.add_argument("--start", metavar="TIME", help="an RFC 3339 time (now)")
    add.add_argument("--end", metavar="TIME", help="an RFC 3339 time")
    add.add_argument("-c", "--comment", default="", help="why")
    add.add_argument("-a", "--author", help="who (your user name)")
    add.set_defaults(handler=_governor_command, governor="silence add")
    query = actions.add_parser(
        "query", parents=[url], help="the silences not expired (with --expired: the expired)"
    )
    query.add_argument("matchers", nargs="*", metavar="MATCHER", help="only silences with it")
    query.add_argument("--expired", action="store_true", help="the expired silences instead")
    query.add_argument("-q", "--quiet", action="store_true", help="only their ids")
    query.add_argument("--format", choices=("text", "json"), default="text")
    query.set_defaults(handler=_governor_command, governor="silence query")
    expire = actions.add_parser("expire", parents=[url], help="end silences now")
    expire.add_argument("ids", nargs="+", metavar="ID")
    expire.set_defaults(handler=_governor_command, governor="silence expire")
    pause = commands.add_parser(
        "pause",
        parents=[url],
        help="stop every plugin call of the running service (evaluation goes on) until resumed "
        "or --for has passed",
    )
    pause.add_argument("--for", dest="for_", metavar="DURATION", help="e.g. 1h (until resumed)")
    pause.add_argument("--reason", required=True, help="why: shown on the status page")
    pause.set_defaults(handler=_governor_command, governor="pause")
    resume = commands.add_parser(
        "resume", parents=[url], help="end the pause: owed calls run at their next evaluation"
    )
    resume.set_defaults(handler=_governor_command, governor="resume")
    for verb, does in (("approve", "run the call it holds, once"), ("deny", "never run it")):
        answer = commands.add_parser(
            verb,
            parents=[url],
            help=f"answer an approval request of a rule in mode approve: {does}",
        )
        answer.add_argument("id", metavar="ID", help="the request's id (metric-reader status)")
        answer.add_argument(
            "--token-file",
            metavar="FILE",
            help="the file holding the bearer token (default: APPROVAL_TOKEN_FILE)",
        )
        answer.set_defaults(handler=_governor_command, governor=verb)


EVENT_LOOP = "asyncio"
"""The service's event loop: ``asyncio``, or ``uvloop`` when set so and importable (the
``bench`` extra installs it for ``make bench`` to compare: with the service's own transport
it saves at most a tenth of a poll's CPU, and costs 2 MB). Plugins' loops stay asyncio's
(``_actions._jobs.PluginLoop``)."""


def loop_options() -> dict[str, object]:
    """anyio's ``backend_options`` for the service's event loop (``EVENT_LOOP``)."""
    import importlib.util

    if EVENT_LOOP == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        return {"use_uvloop": True}
    return {}


# What each command's arguments mean to it. The service's loop is chosen at the call, so that
# ``EVENT_LOOP`` set on this module (tests, benchmarks) takes effect. Named ``*_command``:
# importing the submodule ``_check`` binds ``_check`` in this package, over a function of
# that name.


def _run_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ._run import run_service

    return run_service(env, loop_options())


def _check_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ._check import check_configuration

    return check_configuration(env, not args.no_read, loop_options())


def _plugins_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ._plugins import list_plugins

    return list_plugins(env)


def _fire_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ._plugins import fire_plugin

    return fire_plugin(args, env)


def _backtest_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from .._config import load_settings
    from .._core import configure_logging
    from .._replay import BacktestOptions, backtest_command

    settings = load_settings(env)
    configure_logging(settings.log_level, settings.log_format)
    options = BacktestOptions(
        args.start, args.end, tuple(args.rule), args.step, args.prometheus, args.format, args.html
    )
    return backtest_command(settings, options)


def _test_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from .._replay import test_command

    return test_command(args.files)


def _history_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ._history import show_history

    return show_history(args, env)


def _governor_command(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from ._governor import governor_command

    return governor_command(args, env)
