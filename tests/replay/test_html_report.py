"""The backtest report as a person sees it: written to a file, opened in headless Chromium,
looked at pixel by pixel. The marks must be where the calls were and the shading where the
series was pending and firing, on a page that loads nothing and runs nothing."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from _browser import BROWSER_TIMEOUT, browse
from PIL import Image

from metric_reader._core._chart import (
    AXIS_COLOUR,
    MARK_COLOURS,
    SPAN_COLOURS,
    SPAN_OPACITY,
    Chart,
    Line,
    Span,
)
from metric_reader._replay._html import (
    CALLS_PER_SERIES,
    SERIES_PER_RULE,
    ReportCall,
    ReportRule,
    ReportSeries,
    render_report,
)

START = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC
END = START + 3_600.0
STEP = 15.0
PENDING = (START + 600, START + 900)
FIRING = (START + 900, START + 2_100)
CALLS = [  # fire when the pending time is over, a repeat, a resolve when it ends
    ReportCall(START + 900, "fire", "webhook", 91.0, "200 OK"),
    ReportCall(START + 1_500, "repeat", "webhook", 95.0, "200 OK"),
    ReportCall(START + 2_100, "resolve", "webhook", 40.0, "200 OK"),
]
HOSTILE = "<script>document.title='pwned'</script> & \"q\""


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def shaded(colour: str) -> tuple[int, int, int]:
    """``colour`` at ``SPAN_OPACITY`` over white, as the browser blends it."""
    return tuple(round(SPAN_OPACITY * c + (1 - SPAN_OPACITY) * 255) for c in rgb(colour))  # type: ignore[return-value]


def value_at(at: float) -> float:
    """40 outside the breach, above the threshold (80) while pending and firing."""
    return 90.0 + (at - PENDING[0]) / 300 if PENDING[0] <= at < FIRING[1] else 40.0


def report(series_count: int = 1, calls: list[ReportCall] = CALLS) -> str:
    chart = Chart(
        START,
        END,
        [(START + k * STEP, value_at(START + k * STEP)) for k in range(int(3_600 / STEP) + 1)],
        [Line(80.0, "threshold >80"), Line(60.0, "clear <60", "clear")],
        [Span(*PENDING, "pending"), Span(*FIRING, "firing")],
    )
    return render_report(
        "backtest: queue_depth",
        "1 rule, 1 series, 3 plugin calls, from 2026-01-01 00:00 to 01:00 UTC",
        [
            ReportRule(
                "queue_depth " + HOSTILE,
                'queue_depth{queue="orders"}',
                ">80 for 5m, clear <60",
                [
                    ReportSeries({"queue": f"orders{k}", "x": HOSTILE}, chart, calls)
                    for k in range(series_count)
                ],
            )
        ],
    )


def runs(columns: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive columns as ``(first, last)`` runs."""
    out: list[list[int]] = []
    for column in sorted(columns):
        if out and column == out[-1][1] + 1:
            out[-1][1] = column
        else:
            out.append([column, column])
    return [(a, b) for a, b in out]


def columns_of(image: Image.Image, colour: tuple[int, int, int], least: int, tolerance: int = 2):
    """Columns with at least ``least`` pixels of ``colour`` (within ``tolerance`` a channel)."""
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    found = []
    for x in range(width):
        count = 0
        for y in range(height):
            pixel = pixels[x, y]
            if all(abs(pixel[i] - colour[i]) <= tolerance for i in range(3)):
                count += 1
        if count >= least:
            found.append(x)
    return found


@pytest.mark.timeout(BROWSER_TIMEOUT + 60)
def test_the_report_in_a_browser_has_its_marks_and_spans_at_their_times(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(report(), encoding="utf-8")
    shot = tmp_path / "report.png"
    browse(
        tmp_path,
        f"--screenshot={shot}",
        "--window-size=1200,700",
        "--force-device-scale-factor=1",
        page.as_uri(),
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 700)
    assert len(image.getcolors(maxcolors=1_000_000) or []) > 50, "the screenshot looks blank"

    # The plot's frame: two long vertical lines in the axis colour, one pixel each.
    frame = columns_of(image, rgb(AXIS_COLOUR), least=150, tolerance=0)
    assert len(frame) == 2, f"the plot frame should be two columns, found {frame}"
    left, width = frame[0] + 1, frame[1] - frame[0] - 1

    def x_of(at: float) -> float:
        return left + (at - START) / (END - START) * width

    marks = runs(columns_of(image, rgb(MARK_COLOURS["fire"]), least=100, tolerance=0))
    marks += runs(columns_of(image, rgb(MARK_COLOURS["resolve"]), least=100, tolerance=0))
    centres = sorted((a + b + 1) / 2 for a, b in marks)
    assert len(centres) == len(CALLS), f"one mark per call: {marks}"
    for centre, call in zip(centres, CALLS, strict=True):
        assert centre == pytest.approx(x_of(call.at), abs=3), call

    for state, (start, end) in (("pending", PENDING), ("firing", FIRING)):
        stretch = runs(columns_of(image, shaded(SPAN_COLOURS[state]), least=100, tolerance=3))
        # The marks, drawn over the shading, may cut a stretch in two.
        first, last = min(a for a, _ in stretch), max(b for _, b in stretch)
        assert first == pytest.approx(x_of(start), abs=3), (state, stretch)
        assert last + 1 == pytest.approx(x_of(end), abs=3), (state, stretch)

    assert not re.search(r"https?://", report())


def test_the_report_loads_nothing_runs_nothing_and_shows_hostile_text_as_text() -> None:
    html = report()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower()
    assert not re.search(r"https?://|src=|href=|@import|url\(", html)
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in html
    assert html.count("<svg") == 1
    for when in ("2026-01-01 00:15:00", "2026-01-01 00:25:00", "2026-01-01 00:35:00"):
        assert f"<td>{when}</td>" in html  # the calls' table, in UTC
    assert "webhook" in html and ">91<" in html


def test_the_report_is_bounded_for_many_series_and_calls() -> None:
    many_calls = [ReportCall(START + k, "repeat", "webhook", 1.0) for k in range(1_000)]
    html = report(series_count=SERIES_PER_RULE + 50, calls=many_calls)
    assert html.count("<svg") == SERIES_PER_RULE
    assert "and 50 more series, not drawn" in html
    assert f"and {1_000 - CALLS_PER_SERIES:,} more calls" in html
    # A chart with a mark every 4 pixels, its path and 100 rows of calls: under 50 kB.
    assert len(html) < SERIES_PER_RULE * 50_000
