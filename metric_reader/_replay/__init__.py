"""Replays of rules over past or synthetic values: backtests, rule unit tests, their
reports (text, JSON, HTML).

Built on the engine's ``replay`` (the very steps the service runs) and the sources'
``query_range``; the command line (``backtest``, ``test``) uses the commands here.
"""

from typing import TYPE_CHECKING

from .._core import lazy_exports

if TYPE_CHECKING:
    from ._commands import BacktestOptions, backtest_command, test_command

__all__ = ["BacktestOptions", "backtest_command", "test_command"]

if not TYPE_CHECKING:  # each name imported when first used
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "BacktestOptions": "._commands",
            "backtest_command": "._commands",
            "test_command": "._commands",
        },
    )
