"""Recording what became of an owed plugin call: a row of the action history and the count
``metric_reader_actions_total{rule,plugin,outcome}``, always together; and of a verified
fix: its rows marked and ``metric_reader_fixes_total{rule,plugin,result}``."""

from __future__ import annotations

from .._cluster import ActionHistory
from .._core import HistoryEntry
from .._surface import ServiceMetrics


def record_action(history: ActionHistory, metrics: ServiceMetrics, entry: HistoryEntry) -> None:
    """Add ``entry`` to ``history`` (one INSERT: cheap, synchronous, never raises) and count
    it. Only the replica that acts records (leader election)."""
    history.record(entry)
    metrics.actions.labels(entry.rule, entry.plugin, entry.outcome).inc()


def mark_fix(
    history: ActionHistory,
    metrics: ServiceMetrics,
    rule: str,
    key: str,
    plugins: tuple[str, ...],
    held: bool,
) -> None:
    """A fix was verified: the history rows of its call say whether it held, and it is
    counted in ``metric_reader_fixes_total`` once per plugin it went to."""
    history.mark(key, held)
    result = "verified" if held else "unverified"
    for plugin in plugins or ("",):
        metrics.fixes.labels(rule, plugin, result).inc()
