"""``SERIES_LIMIT``: how many series one rule may read and track.

Like Prometheus' ``sample_limit``, a read that returns more series than the limit fails for
that rule: nothing is evaluated from it, as after a failed poll, so a truncated set never
resolves or starts a breach. The limit also bounds what the rule remembers: when new series
would take it past the limit, absent series in OK with no action owed or running are
forgotten first, the longest absent first (forgetting them changes nothing the rule does:
one that comes back starts in OK, as it would have). Only when the series that cannot be
forgotten (breached, or acting) fill the room does the read fail, and then nothing is
forgotten.
"""

from __future__ import annotations

import math

from .._core import Labels, Sample
from ._rule import Rule
from ._rule_machine import RuleMachine

HINT = "narrow the query or label_filters, or raise SERIES_LIMIT"


def admit(rule: Rule, samples: list[Sample]) -> str | None:
    """Make room for ``samples`` among the series ``rule`` tracks; return why the read must
    fail for the rule instead (one line, naming the rule, the count and the setting)."""
    limit = rule.config.series_limit
    if len(samples) + len(rule.series) <= limit:
        return None  # the usual poll: whatever is new fits, nothing to count or forget
    read = {sample.labels for sample in samples}
    if len(read) > limit:
        return (
            f"rule {rule.name!r}: the read returned {len(read)} series, more than "
            f"SERIES_LIMIT={limit}; nothing was evaluated: {HINT}"
        )
    if rule.make_room(read, limit):
        return None
    tracked = len(rule.series)
    new = len(read.difference(rule.series))
    return (
        f"rule {rule.name!r}: {new} new series would make {tracked + new} tracked, more "
        f"than SERIES_LIMIT={limit} (the others are read now, breached or acting); nothing "
        f"was evaluated: {HINT}"
    )


def make_room(machine: RuleMachine, read: set[Labels], limit: int) -> bool:
    """Forget absent idle series of ``machine``, the longest absent first, until the series
    ``read`` fit among ``limit``; return whether they do. When they cannot fit, nothing is
    forgotten."""
    tracked = machine.series
    # The placeholder of a rule that never saw a series goes once real ones are read.
    placeholders = sum(1 for series in tracked.values() if series.placeholder) if read else 0
    over = len(tracked) - placeholders + len(read.difference(tracked)) - limit
    if over <= 0:
        return True
    forgettable = sorted(
        (
            (-math.inf if series.last_seen is None else series.last_seen, index, labels)
            for index, (labels, series) in enumerate(tracked.items())
            if labels not in read and series.idle and not series.placeholder
        ),
    )
    if len(forgettable) < over:
        return False  # refused as it is: a read that fails changes nothing, as a failed poll
    for _, _, labels in forgettable[:over]:
        del tracked[labels]
    machine.revision += 1
    return True
