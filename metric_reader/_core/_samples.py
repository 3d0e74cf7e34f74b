"""What a source returns: one value per series."""

from __future__ import annotations

from collections.abc import Mapping

from ._record import record

Labels = tuple[tuple[str, str], ...]
"""A series' label set without ``__name__``, sorted by label name: hashable and canonical."""


def labels_of(mapping: Mapping[str, str]) -> Labels:
    if "__name__" in mapping:  # copied and sorted in C: this runs for every series read
        mapping = dict(mapping)
        del mapping["__name__"]
    return tuple(sorted(mapping.items()))


@record(frozen=True, slots=True)
class Sample:
    labels: Labels
    value: float
