"""Replays of rules over past or synthetic values: backtests, rule unit tests, their
reports (text, JSON, HTML).

Built on the engine's ``replay`` (the very steps the service runs) and the sources'
``query_range``; the command line (``backtest``, ``test``) uses the commands here.
"""
