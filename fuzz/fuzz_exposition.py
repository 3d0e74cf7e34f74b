#!/usr/bin/env python3
"""Atheris (libFuzzer) harness for the exposition reader, ``read_series``.

An input is ``NAMES\\nPAGE``: its first line holds the metric names to read, split on
spaces (any bytes, decoded as UTF-8 with ``surrogateescape``, so odd and non-ASCII
names come up too); the rest is the scraped page. Each input is read twice, once with
the names alone (at most ``_FIND_MAX_NAMES`` legacy names: one ``bytes.find`` per name)
and once with padding names that force the line-by-line strategy, and:

* nothing but ``ExpositionError`` may escape, and its message is one line that starts
  with ``line N:``;
* both strategies must agree: the same series (NaN equal to NaN), or both refuse.

Run it with ``make fuzz`` or see docs/fuzzing.md. atheris is not a test dependency:
``pip install atheris`` first.
"""

from __future__ import annotations

import math
import sys

import atheris

import metric_reader  # noqa: F401  (imported uninstrumented: only the reader is of interest)

with atheris.instrument_imports(include=["metric_reader._sources._exposition"]):
    from metric_reader._sources._exposition import _FIND_MAX_NAMES, ExpositionError, read_series

_PADDING = [f"zz_fuzz_padding_{i}" for i in range(_FIND_MAX_NAMES + 1)]

Outcome = dict[str, list[tuple[dict[str, str], object]]] | None


def _split(data: bytes) -> tuple[list[str], bytes]:
    head, _, page = data.partition(b"\n")
    names = head.decode("utf-8", "surrogateescape").split(" ")
    # Keep the few-names strategy reachable: at most _FIND_MAX_NAMES distinct names.
    return list(dict.fromkeys(names))[:_FIND_MAX_NAMES], page


def _read(page: bytes, names: list[str]) -> Outcome:
    try:
        found = read_series(page, names)
    except ExpositionError as err:
        message = str(err)
        if not message.startswith("line ") or "\n" in message:
            raise AssertionError(f"badly worded ExpositionError: {message!r}") from err
        return None
    return {
        name: [(labels, "NaN" if math.isnan(value) else value) for labels, value in found[name]]
        for name in names
    }


def test_one_input(data: bytes) -> None:
    names, page = _split(data)
    few = _read(page, names)
    many = _read(page, [*names, *_PADDING])
    if many is not None:
        many = {name: many[name] for name in names}
    if few != many:
        raise AssertionError(f"the two strategies disagree: {few!r} != {many!r}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
