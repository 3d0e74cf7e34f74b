"""Sharding: which replica runs which rule, when ``SHARD_COUNT`` replicas share one rule file.

A rule belongs to shard ``shard_of(rule.name, count)``: Prometheus' relabel ``hashmod`` of
the rule name. It is stable across processes, machines and Python versions (no ``hash()``,
whose seed changes per process), so every replica agrees on the split without talking to
the others, and a rule keeps its shard as long as its name and the count stay the same.
"""

from __future__ import annotations

import hashlib
import re

_ORDINAL = re.compile(r".+-(0|[1-9][0-9]*)")
"""A StatefulSet pod name: the set's name, ``-``, the ordinal (no leading zeros)."""


def shard_of(rule_name: str, count: int) -> int:
    """The shard (``0 <= shard < count``) that runs the rule named ``rule_name``.

    Exactly Prometheus' ``hashmod``: the last 8 bytes of the MD5 of the UTF-8 name, read as a
    big-endian unsigned 64-bit integer, modulo ``count``.
    """
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    digest = hashlib.md5(rule_name.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest[8:], "big") % count


def ordinal_from_hostname(hostname: str) -> int | None:
    """The ordinal of a StatefulSet pod (``metric-reader-2`` -> 2), or None if the host name
    is not ``NAME-ORDINAL``. Only the first label of a dotted name counts
    (``metric-reader-2.metric-reader.monitoring.svc`` -> 2)."""
    first = hostname.strip().split(".", 1)[0]
    match = _ORDINAL.fullmatch(first)
    return int(match[1]) if match else None
