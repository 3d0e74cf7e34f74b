"""Names that are a slip of the keyboard away from a known one: ``THRESHOLD_DURATON``,
``METRICNAME``, ``threshold_duration``, ``PLUGIN_TIMOEUT``.

A slip is the same name but for case and the separators ``_``, ``-`` and ``.``, and at most
one letter missing, extra, wrong, or two neighbours swapped. Anything farther is not called
a slip, so the unrelated variables of a container (``HOSTNAME``, ``KUBERNETES_SERVICE_HOST``,
``SSL_CERT_FILE``, two letters from ``TLS_CERT_FILE``) are never taken for one.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

_SEPARATORS = str.maketrans("", "", "_-.")


@functools.cache  # the known names, over and over: each variable is held against them all
def _normalised(name: str) -> str:
    return name.translate(_SEPARATORS).lower()


def slip_of(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is a slip of (the closest), or None."""
    wanted = _normalised(name)
    letters = set(wanted)
    best: tuple[int, str] | None = None
    for candidate in known:
        target = _normalised(candidate)
        # Cheap tests first: a slip changes the length by at most one and the set of letters
        # by at most two.
        if abs(len(target) - len(wanted)) > 1 or len(letters ^ set(target)) > 2:
            continue
        distance = _distance(wanted, target, 1)
        if distance <= 1 and (best is None or distance < best[0]):
            best = (distance, candidate)
    return None if best is None else best[1]


def _distance(a: str, b: str, limit: int) -> int:
    """The optimal string alignment distance (Levenshtein plus swapped neighbours), or
    ``limit + 1`` as soon as it is certain to exceed ``limit``."""
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]
