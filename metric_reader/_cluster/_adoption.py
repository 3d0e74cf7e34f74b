"""Election for a set of rules: the leader's action records marked in this replica's rules.

A follower takes on what the leader recorded as run, so that if it leads next it knows
which actions are done, when the last one was, and what still needs a resolve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import anyio

from .._config._settings import ElectionSettings
from .._core._events import EventKind
from .._engine._rules import Rule
from .._engine._state import LevelMachine
from ._election import ActionRecord, LeaderElector, default_identity
from ._kube import InCluster, LeaseClient


def rules_elector(
    config: ElectionSettings,
    cluster: InCluster,
    rules: Mapping[str, Rule],
    changed: Callable[[], None],
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
        found = _level(rules, record)
        return found is not None and not found[1].idle

    return LeaderElector(client, default_identity(), config, adopt, still_active=still_active)


def adopt_records(
    rules: Mapping[str, Rule], records: list[ActionRecord], now: float, wall: float
) -> bool:
    """Take on what the leader recorded as run, at monotonic ``now`` (wall-clock ``wall``);
    whether any rule's state changed."""
    changed = False
    for record in records:
        found = _level(rules, record)
        if record.status == "failed" or found is None:
            continue
        rule, level = found
        at = now - (wall - record.at)
        slack = rule.config.polling_interval + 1.0  # replicas poll at different moments
        since = level.resolved_at if record.kind == "resolve" else level.active_at
        if since is None or at < since - slack:
            continue  # a record of an earlier breach
        if level.adopt(_kind(record.kind), at, record.fire_count):
            assert rule.machine is not None
            rule.machine.revision += 1
            changed = True
    return changed


def _kind(text: str) -> EventKind:
    """The kind a record names; one this version does not know counts as a fire."""
    return "resolve" if text == "resolve" else "repeat" if text == "repeat" else "fire"


def _level(rules: Mapping[str, Rule], record: ActionRecord) -> tuple[Rule, LevelMachine] | None:
    rule_name, level_name, labels = record.key
    rule = rules.get(rule_name)
    series = None if rule is None or rule.machine is None else rule.machine.series.get(labels)
    level = None if series is None else series.level(level_name)
    return None if rule is None or level is None else (rule, level)
