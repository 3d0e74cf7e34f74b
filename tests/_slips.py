"""Slips of the keyboard made from a setting's name, for the did-you-mean tests."""

from __future__ import annotations

from collections.abc import Iterable


def slips(name: str) -> list[str]:
    """The slips of the keyboard the refusal must catch, made from ``name``."""
    letters = [i for i, char in enumerate(name) if char != "_"]
    middle = letters[len(letters) // 2]
    swap = next(
        i for i in letters[len(letters) // 3 :] if name[i + 1 : i + 2] not in ("_", name[i])
    )
    slips = [
        name.lower(),
        name.title(),
        name[:middle] + name[middle + 1 :],  # a letter missing
        name[:middle] + name[middle] + name[middle:],  # a letter doubled
        name[:middle] + "x" + name[middle:],  # a letter extra
        name[:swap] + name[swap + 1] + name[swap] + name[swap + 2 :],  # neighbours swapped
    ]
    if "_" in name:
        slips.append(name.replace("_", ""))
    return slips


def slips_of(names: Iterable[str]) -> dict[str, str]:
    """Every slip of every name, each with the name it was made from (a slip that is a name
    itself, or is made from two names, is left out)."""
    names = tuple(names)
    made: dict[str, set[str]] = {}
    for name in names:
        for slip in slips(name):
            made.setdefault(slip, set()).add(name)
    return {
        slip: next(iter(sources))
        for slip, sources in made.items()
        if len(sources) == 1 and slip not in names
    }
