"""Election for a set of rules: the leader's action records marked in this replica's rules.

A follower takes on what the leader recorded as run, so that if it leads next it knows
which actions are done, when the last one was, and what still needs a resolve; and the
leader's governor (budgets spent, breakers, silences, the pause), so that a failover never
resets a budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from .._config import ElectionSettings
from .._core import EventKind, to_mono
from .._engine import Governor, Rule
from ._election import ActionRecord, LeaderElector, default_identity
from ._kube import InCluster, LeaseClient


def rules_elector(
    config: ElectionSettings,
    cluster: InCluster,
    rules: Mapping[str, Rule],
    changed: Callable[[], None],
    governor: Governor | None = None,
) -> LeaderElector:
    """A leader elector on the configured Lease that marks in ``rules`` (by name) what the
    leader ran; ``changed`` is called when that changed their state."""
    client = LeaseClient(
        cluster,
        config.lock_namespace or cluster.namespace,
        config.lock_name,
        timeout=max(1.0, config.retry_period),
    )

    def adopt(records: list[ActionRecord]) -> None:
        if adopt_records(rules, records, anyio.current_time(), time.time()):
            changed()

    def still_active(record: ActionRecord) -> bool:
        rule_name, level_name, labels = record.key
        rule = rules.get(rule_name)
        return rule is not None and rule.busy(level_name, labels)

    identity = default_identity()
    share = take = None
    if governor is not None:

        def share() -> dict[str, Any]:
            return {**governor.export(), "by": identity}

        def take(shared: dict[str, Any]) -> None:
            governor.adopt(shared, time.time())
            changed()

    return LeaderElector(
        client, identity, config, adopt, still_active=still_active, share=share, take=take
    )


def adopt_records(
    rules: Mapping[str, Rule], records: list[ActionRecord], now: float, wall: float
) -> bool:
    """Take on what the leader recorded as run, at monotonic ``now`` (wall-clock ``wall``);
    whether any rule's state changed (the rule counts the change itself)."""
    changed = False
    for record in records:
        rule_name, level_name, labels = record.key
        rule = rules.get(rule_name)
        if record.status == "failed" or rule is None:
            continue
        at = to_mono(record.at, now, wall)
        if rule.adopt(level_name, labels, _kind(record.kind), at, record.fire_count):
            changed = True
    return changed


def _kind(text: str) -> EventKind:
    """The kind a record names; one this version does not know counts as a fire."""
    return "resolve" if text == "resolve" else "repeat" if text == "repeat" else "fire"
