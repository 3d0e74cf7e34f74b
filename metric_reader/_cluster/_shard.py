"""Sharding: which replica runs which rule, when ``SHARD_COUNT`` replicas share one rule file.

A rule belongs to shard ``shard_of(rule.name, count)``: Prometheus' relabel ``hashmod`` of
the rule name. It is stable across processes, machines and Python versions (no ``hash()``,
whose seed changes per process), so every replica agrees on the split without talking to
the others, and a rule keeps its shard as long as its name and the count stay the same.
"""

from __future__ import annotations

import hashlib

from .._config import RuleConfig, Settings


def shard_of(rule_name: str, count: int) -> int:
    """The shard (``0 <= shard < count``) that runs the rule named ``rule_name``.

    Exactly Prometheus' ``hashmod``: the last 8 bytes of the MD5 of the UTF-8 name, read as a
    big-endian unsigned 64-bit integer, modulo ``count``.
    """
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    digest = hashlib.md5(rule_name.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % count


def owned_rules(settings: Settings) -> tuple[RuleConfig, ...]:
    """The rules this replica runs: those whose name hashes to its shard (all of them
    without sharding)."""
    if settings.shard_count == 1:
        return settings.rules
    return tuple(
        rule
        for rule in settings.rules
        if shard_of(rule.name, settings.shard_count) == settings.shard_index
    )
