"""What a source returns: one value per series."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
"""A series' label set without ``__name__``, sorted by label name: hashable and canonical."""


def labels_of(mapping: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, v) for k, v in mapping.items() if k != "__name__"))


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Labels
    value: float
