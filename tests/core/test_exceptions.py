"""The exception tree drawn in ``_core/_exceptions.py`` is the one the classes form."""

from __future__ import annotations

import re

from metric_reader._cluster._state_lock import StateFileInUse
from metric_reader._core import _exceptions
from metric_reader._core._exceptions import MetricReaderError
from metric_reader._sources._prometheus import NotJson

ELSEWHERE = {"StateFileInUse": StateFileInUse, "NotJson": NotJson}


def _drawn() -> dict[str, str | None]:
    """Each class in the docstring's drawing, with the class drawn above it."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (_exceptions.__doc__ or "").splitlines():
        found = re.match(r"^ {4}[│├└─ ]*([A-Z]\w+)", line)  # the drawing is indented
        if found is None:
            continue
        depth, name = found.start(1), found.group(1)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def test_the_drawing_matches_the_classes() -> None:
    defined = {
        name: value
        for name, value in vars(_exceptions).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    drawn = _drawn()
    assert set(drawn) == set(defined) | set(ELSEWHERE)
    for name, parent in drawn.items():
        cls = defined.get(name) or ELSEWHERE[name]
        assert parent is None or cls.__bases__[0] is (defined.get(parent) or ELSEWHERE[parent])
        assert issubclass(cls, MetricReaderError)
