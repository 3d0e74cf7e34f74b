"""``SeriesReader`` (a page read as it arrives) against ``read_series`` (the page whole).

The scrape source reads pages with ``SeriesReader``, so an endless or huge page is never
held (issue 22); ``read_series`` is the reader it replaces there. For every page here, cut
in every way tried (a byte at a time, a few bytes, at random, whole) and looked at in
blocks of one byte to the default, the streamed read must give exactly what the whole read
gives: the same series in the same order, or the same error with the same line number.
The pages: the fuzz corpus (fuzz/corpus/), the pages of the other exposition tests, every
kind of malformed line of the fault tests, and hypothesis' random and mutated pages.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_exposition import FRAGMENTS, FUZZ_NAMES, PAGE, STEMS, text_pages
from test_fuzz_properties import pages_with_names

from metric_reader._sources._exposition import _FIND_MAX_NAMES, ExpositionError, read_series
from metric_reader._sources._exposition_stream import BLOCK, SeriesReader

CORPUS = Path(__file__).parents[2] / "fuzz" / "corpus"
PADDING = [f"zz_padding_{i}" for i in range(_FIND_MAX_NAMES + 1)]
"""Names that make both readers find lines one by one instead of by one regex scan."""
BLOCKS = [1, 7, BLOCK]

Outcome = tuple[str, object]


def outcome(read: object) -> Outcome:
    """What a read gave, comparable: the series (NaN equal to NaN) or the error's text."""
    assert isinstance(read, dict)
    return (
        "read",
        {
            name: [(labels, "NaN" if math.isnan(value) else value) for labels, value in series]
            for name, series in read.items()
        },
    )


def whole(page: bytes, names: Collection[str]) -> Outcome:
    try:
        return outcome(read_series(page, names))
    except ExpositionError as err:
        return ("refused", str(err))


def streamed(
    page: bytes, names: Collection[str], pieces: Iterator[bytes], block: int = BLOCK
) -> Outcome:
    reader = SeriesReader(names, block=block)
    for piece in pieces:
        reader.feed(piece)
    try:
        return outcome(reader.finish())
    except ExpositionError as err:
        return ("refused", str(err))


def cuts(page: bytes, seed: int) -> Iterator[Iterator[bytes]]:
    """The ways ``page`` is cut into pieces."""
    for size in (1, 2, 3, 5, 64, max(len(page), 1)):
        yield (page[i : i + size] for i in range(0, len(page), size))
    rng = random.Random(seed)
    for _ in range(3):
        points = sorted(rng.sample(range(len(page) + 1), min(len(page) + 1, rng.randint(1, 12))))
        yield (page[a:b] for a, b in zip([0, *points], [*points, len(page)], strict=True))


def assert_same(page: bytes, names: list[str]) -> None:
    for listed in (names, [*names, *PADDING]):
        expected = whole(page, listed)
        for block in BLOCKS:
            for index, pieces in enumerate(cuts(page, len(page))):
                got = streamed(page, listed, pieces, block)
                assert got == expected, (
                    f"cut {index}, block {block}, {len(listed)} names: {got!r} != {expected!r}"
                )


def corpus() -> list[tuple[str, bytes, list[str]]]:
    cases = []
    for path in sorted(CORPUS.iterdir()):
        head, _, page = path.read_bytes().partition(b"\n")
        names = list(dict.fromkeys(head.decode("utf-8", "surrogateescape").split(" ")))
        cases.append((path.name, page, names))
    return cases


@pytest.mark.parametrize(("name", "page", "names"), corpus(), ids=[c[0] for c in corpus()])
def test_the_fuzz_corpus_reads_the_same(name: str, page: bytes, names: list[str]) -> None:
    assert_same(page, names)
    assert_same(page, ["x", "my.metric", "a", "la.bel", "zz"])


@pytest.mark.parametrize(
    "names", [["queue_depth"], ["queue_depth", "lat", "rpc_seconds_bucket"], ["absent"], []]
)
def test_a_real_page_reads_the_same(names: list[str]) -> None:
    assert_same(PAGE, names)
    assert_same(PAGE.replace(b"\n", b"\r\n"), names)


MALFORMED = [
    b"fault_value",
    b'fault_value{kind="a"}',
    b"fault_value abc",
    b"fault_value 100 1700000000000 extra",
    b'fault_value{kind="a" 100',
    b'fault_value{kind="a\\"} 100',
    b'fault_value{,kind="a"} 100',
    b"fault_value! 100",
    b'{"fault_value",kind="a" 100',
    b'fault_value 100 # {trace_id="x"} many',
    b'fault_value{kind="caf\xe9"} 100',
    b'fault_value{kind="a"} 1\x0000',
]


@pytest.mark.parametrize("bad", MALFORMED)
def test_a_malformed_line_is_refused_the_same_and_named_by_its_number(bad: bytes) -> None:
    good = b"".join(b'fault_value{i="%d"} %d\nother_metric 1\n' % (i, i) for i in range(30))
    for page in (bad, good + bad, good + bad + b"\n" + good, good + bad + b"\n# EOF\n" + good):
        assert_same(page, ["fault_value"])
    after_eof = good + b"# EOF\n" + bad + b"\n"
    assert whole(after_eof, ["fault_value"])[0] == "read"
    assert_same(after_eof, ["fault_value"])


@pytest.mark.parametrize("length", [3000, 70_000])
def test_long_lines_read_the_same(length: int) -> None:
    """Lines longer than a piece, a block, and the start looked at to tell whether a line
    can matter (64 KiB)."""
    page = (
        b"# " + b"c" * length + b"\n"
        + b"x{a=\"" + b"v" * length + b"\"} 1\n"
        + b"x" * length + b" 2\n"
        + b" " * length + b"x 3\n"
        + b'{"x"' + b" " * length + b',a="b"} 4\n'
        + b'{"' + b"y" * length + b'"} 5\n'
        + b"x 6\n"
        + b"x{a=\"" + b"w" * length + b"\"} 7"
    )  # fmt: skip
    for text in (page, page.replace(b"x 6", b"x{a=} 6")):
        expected = whole(text, ["x"])
        for block in (1000, BLOCK):
            for size in (100, 999, 4096, 100_000):
                pieces = (text[i : i + size] for i in range(0, len(text), size))
                assert streamed(text, ["x"], pieces, block) == expected
    assert whole(page, ["x"])[0] == "read"


def test_many_watched_lines_read_the_same_and_the_first_malformed_one_is_named() -> None:
    page = b"".join(b'm{i="%d"} %d\nother 1\n\nn %d\n' % (i, i, i) for i in range(20_000))
    # Kept lines 1, 200 (a number of two bytes, in the varint kept) and 300 lines apart:
    page += b"m 1\n" * 200 + b"\n" * 199 + b"m 2\n" + b"\n" * 299 + b"m 3\n"
    bad = page + b"n{i=} 1\n" + page.replace(b"m{", b"m{{")
    expected = (
        "refused",
        "line 80701: expected a double-quoted value for label 'i': 'n{i=} 1'",
    )
    assert whole(bad, ["m", "n"]) == expected
    assert whole(bad, ["n", "m"]) == expected
    for text, names in ((page, ["m", "n"]), (bad, ["m", "n"]), (bad, ["n", "m"]), (bad, ["m"])):
        for block in (4096, BLOCK):
            pieces = (text[i : i + 1500] for i in range(0, len(text), 1500))
            assert streamed(text, names, pieces, block) == whole(text, names)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=120) | st.lists(st.sampled_from(FRAGMENTS), max_size=30).map(b"".join),
    st.lists(st.sampled_from(FUZZ_NAMES), max_size=4),
)
def test_random_bytes_read_the_same(page: bytes, names: list[str]) -> None:
    assert_same(page, names)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages_with_names())
def test_random_pages_of_any_names_read_the_same(case: tuple[bytes, list[str]]) -> None:
    page, names = case
    assert_same(page, names[:8])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_pages(), st.data())
def test_mutated_pages_read_the_same(page: tuple[str, list[str]], data: st.DataObject) -> None:
    raw = bytearray(page[0].encode())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at] = data.draw(st.sampled_from(FRAGMENTS) | st.binary(max_size=3))
    names = data.draw(st.lists(st.sampled_from([*STEMS, *FUZZ_NAMES, *page[1]]), max_size=5))
    assert_same(bytes(raw), names)
