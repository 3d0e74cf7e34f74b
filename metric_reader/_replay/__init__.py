"""Replays of recorded metrics through the rules (``metric-reader backtest``) and what they
write: the report."""
