"""Recording what became of an owed plugin call: a row of the action history and the count
``metric_reader_actions_total{rule,plugin,outcome}``, always together."""

from __future__ import annotations

from .._cluster import ActionHistory
from .._core import HistoryEntry
from .._surface import ServiceMetrics


def record_action(history: ActionHistory, metrics: ServiceMetrics, entry: HistoryEntry) -> None:
    """Add ``entry`` to ``history`` (one INSERT: cheap, synchronous, never raises) and count
    it. Only the replica that acts records (leader election)."""
    history.record(entry)
    metrics.actions.labels(entry.rule, entry.plugin, entry.outcome).inc()
