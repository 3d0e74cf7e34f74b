"""Replays of rules over past or synthetic values: backtests, rule unit tests, their
reports (text, JSON, HTML).

Built on the engine's ``replay`` (the very steps the service runs) and the sources'
``query_range``; the command line (``backtest``, ``test``) uses the commands here.
"""

from ._commands import BacktestOptions, backtest_command, test_command

__all__ = ["BacktestOptions", "backtest_command", "test_command"]
