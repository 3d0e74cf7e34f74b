"""The timeline drawing (``_core/_chart.py``): well-formed, escaped, bounded, deterministic."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from metric_reader._core._chart import (
    MARK_COLOURS,
    Chart,
    Line,
    Mark,
    Span,
    render_svg,
    state_spans,
    time_ticks,
)

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
HOSTILE = "</text><script>alert('x')</script> & \"quoted\" \x00\x1b"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything that is not well-formed XML


def path_points(svg: str) -> int:
    """Points of the value line: its path's vertices and its dots."""
    root = parse(svg)
    count = 0
    for path in root.iter("path"):
        if path.get("class") == "values":
            count += len(re.findall(r"[ML]", path.get("d", "")))
    for group in root.iter("g"):
        if group.get("class") == "values":
            count += len(list(group))
    return count


def busy_chart(points: int, step: float = 15.0) -> Chart:
    return Chart(
        T0,
        T0 + points * step,
        [(T0 + k * step, math.sin(k / 10.0) * 100 + (k % 7)) for k in range(points)],
        [Line(90, ">90")],
    )


@pytest.mark.parametrize("detailed", [True, False])
def test_every_text_is_escaped_and_the_svg_is_well_formed(detailed: bool) -> None:
    chart = Chart(
        T0,
        T0 + 600,
        [(T0, 1.0), (T0 + 300, 5.0), (T0 + 600, 2.0)],
        [Line(4.0, HOSTILE), Line(2.0, HOSTILE, "clear"), Line(6.0, HOSTILE, "hard")],
        [Span(T0 + 100, T0 + 200, "pending"), Span(T0 + 200, T0 + 400, "firing")],
        [Mark(T0 + 200, HOSTILE, "fire"), Mark(T0 + 400, HOSTILE, "resolve")],
    )
    svg = render_svg(chart, 600, 200, detailed=detailed)
    root = parse(svg)
    assert root.tag == "svg"
    assert "<script" not in svg
    assert not any(element.tag == "script" for element in root.iter())
    assert "\x00" not in svg and "\x1b" not in svg
    if detailed:
        texts = [element.text for element in root.iter("text")]
        assert HOSTILE.replace("\x00", "\ufffd").replace("\x1b", "\ufffd") in texts
    titles = [element.text for element in root.iter("title")]
    if detailed:
        assert any(title and "<script>" in title for title in titles)  # as text, not markup
    else:
        assert not titles and not list(root.iter("text"))  # a sparkline has no text


def test_a_week_at_15_seconds_is_drawn_with_at_most_two_points_per_pixel_column() -> None:
    week = busy_chart(7 * 24 * 240)  # 40,320 values
    svg = render_svg(week, 800, 200, detailed=True)
    plot_width = 800 - 64 - 12
    assert path_points(svg) <= 2 * plot_width
    assert len(svg) < 60_000
    small = render_svg(week, 120, 24, detailed=False)
    assert path_points(small) <= 2 * 118
    assert len(small) < 6_000


def test_downsampling_keeps_the_highest_and_lowest_value_of_a_column() -> None:
    points: list[tuple[float, float | None]] = [(T0 + k, 10.0) for k in range(10_000)]
    points[5_000] = (T0 + 5_000, 1_000.0)  # one spike among 10,000 flat values
    points[7_000] = (T0 + 7_000, -1_000.0)
    svg = render_svg(Chart(T0, T0 + 10_000, points), 200, 100, detailed=False)
    path = next(p for p in parse(svg).iter("path") if p.get("class") == "values")
    ys = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", path.get("d", ""))]
    # The y range is padded by 6 %: the spike is near the top, the dip near the bottom.
    assert min(ys) < 10 and max(ys) > 90
    assert 45 < ys[0] < 55  # the flat values, in the middle


def test_gaps_in_a_huge_series_stay_bounded() -> None:
    """A value, no value, a value, ...: a run per value would be 100,000 dots."""
    points = [(T0 + k, None if k % 2 else 1.0 * (k % 5)) for k in range(200_000)]
    svg = render_svg(Chart(T0, T0 + 200_000, points), 400, 100, detailed=False)
    assert path_points(svg) <= 2 * 398


def test_nan_is_a_gap_and_infinities_sit_on_the_edges() -> None:
    chart = Chart(
        T0,
        T0 + 40,
        [(T0, 1.0), (T0 + 10, 2.0), (T0 + 20, math.nan), (T0 + 30, 3.0), (T0 + 40, 4.0)],
    )
    svg = render_svg(chart, 400, 100, detailed=False)
    path = next(p for p in parse(svg).iter("path") if p.get("class") == "values")
    assert path.get("d", "").count("M") == 2  # two runs: the NaN breaks the line
    assert not re.search(r"\bnan\b", svg.lower())

    inf = Chart(T0, T0 + 20, [(T0, 1.0), (T0 + 10, math.inf), (T0 + 20, -math.inf)])
    svg = render_svg(inf, 400, 100, detailed=True)
    assert "inf" not in svg.lower().replace("-inf", "").replace("+inf", "")
    path = next(p for p in parse(svg).iter("path") if p.get("class") == "values")
    ys = [float(y) for y in re.findall(r"[ML][\d.]+ ([\d.]+)", path.get("d", ""))]
    assert ys[1] == pytest.approx(22.0)  # the top of the plot
    assert ys[2] == pytest.approx(100.0 - 34.0)  # its bottom


@pytest.mark.parametrize(
    ("points", "start", "end"),
    [
        ([(0.0, -1e308), (10.0, 1e308)], 0.0, 10.0),  # their difference overflows
        ([(0.0, 1e300), (10.0, 1e300)], 0.0, 10.0),
        ([(0.0, 5e-324), (1.0, 0.0)], 0.0, 1.0),  # the smallest float above 0
        ([(0.0, 1e-12), (1.0, 1.0000001e-12)], 0.0, 1.0),
        ([(1e20, 1.0)], 1e20, 1e20 + 10),  # no calendar has these times
        ([(-1e12, 1.0)], -1e12, -1e12 + 5),
        ([(0.0, 1.0)], math.nan, math.inf),
    ],
)
def test_extreme_numbers_and_times_draw_without_nan_or_errors(
    points: list[tuple[float, float | None]], start: float, end: float
) -> None:
    chart = Chart(start, end, points, [Line(1e308, "far"), Line(-math.inf, "none")])
    for detailed in (True, False):
        svg = render_svg(chart, 300, 100, detailed=detailed)
        parse(svg)
        numbers = re.findall(r'="([^"]*)"', svg)
        assert not [n for n in numbers if re.search(r"\b(nan|inf)\b", n.lower())], svg


def test_a_flat_series_a_single_point_and_no_values_still_draw() -> None:
    flat = Chart(T0, T0 + 60, [(T0 + k, 7.0) for k in range(61)], [Line(7.0, ">=7")])
    svg = render_svg(flat, 300, 100, detailed=True)
    path = next(p for p in parse(svg).iter("path") if p.get("class") == "values")
    ys = set(re.findall(r"[ML][\d.]+ ([\d.]+)", path.get("d", "")))
    assert len(ys) == 1  # one horizontal line, in the middle
    assert 22 < float(ys.pop()) < 66

    single = render_svg(Chart(T0, T0 + 60, [(T0 + 30, 3.0)]), 300, 100, detailed=True)
    assert path_points(single) == 1
    assert parse(single).find(".//circle") is not None  # a dot: a path of one point is unseen

    empty = render_svg(Chart(T0, T0, []), 300, 100, detailed=True)
    assert "no values" in empty
    parse(empty)


def test_lines_outside_the_values_are_inside_the_chart() -> None:
    chart = Chart(T0, T0 + 60, [(T0 + k, 1.0 + k / 100) for k in range(61)], [Line(500.0, ">500")])
    root = parse(render_svg(chart, 300, 100, detailed=True))
    line = next(e for e in root.iter("line") if e.get("class") == "line threshold")
    assert 22 <= float(line.get("y1", "nan")) <= 66


def test_marks_are_at_their_times_and_one_per_kind_in_a_few_pixels() -> None:
    marks = [Mark(T0 + 250, "fire webhook", "fire")]
    marks += [Mark(T0 + 500 + k * 0.001, "repeat webhook", "repeat") for k in range(1_000)]
    marks += [Mark(T0 + 750, "resolve webhook", "resolve")]
    chart = Chart(T0, T0 + 1_000, [(T0, 1.0), (T0 + 1_000, 2.0)], marks=marks)
    root = parse(render_svg(chart, 1_076, 200, detailed=True))  # plot 1000 px wide
    drawn = [g for g in root.iter("g") if (g.get("class") or "").startswith("mark")]
    assert len(drawn) == 3
    xs = [float(next(iter(g.iter("line"))).get("x1", "nan")) for g in drawn]
    assert xs == [64 + 250, 64 + 500, 64 + 750]
    colours = [next(iter(g.iter("line"))).get("stroke") for g in drawn]
    assert colours == [MARK_COLOURS["fire"], MARK_COLOURS["repeat"], MARK_COLOURS["resolve"]]
    titles = [g.findtext("title") for g in drawn]
    assert titles[1] == "repeat webhook (and 999 more here)"


def test_spans_are_shaded_where_they_are_and_many_short_ones_merge() -> None:
    spans = [Span(T0 + 100, T0 + 300, "pending"), Span(T0 + 300, T0 + 600, "firing")]
    spans += [
        Span(T0 + 700 + k * 0.01, T0 + 700 + k * 0.01 + 0.005, "firing") for k in range(5_000)
    ]
    chart = Chart(T0, T0 + 1_000, [(T0, 1.0)], spans=spans)
    root = parse(render_svg(chart, 1_076, 200, detailed=True))
    rects = [
        (r.get("class"), float(r.get("x", "nan")), float(r.get("width", "nan")))
        for r in root.iter("rect")
        if (r.get("class") or "").startswith("span")
    ]
    assert ("span pending", 164.0, 200.0) in rects
    assert ("span firing", 364.0, 300.0) in rects
    assert len(rects) == 3  # the 5,000 short spans are one shaded stretch
    assert rects[2][:2] == ("span firing", 764.0) and rects[2][2] == pytest.approx(50, abs=1)


def test_the_same_chart_renders_the_same_bytes() -> None:
    chart = busy_chart(5_000)
    assert render_svg(chart, 640, 180, detailed=True) == render_svg(
        busy_chart(5_000), 640, 180, detailed=True
    )


def test_spans_from_states_hold_from_one_evaluation_to_the_next() -> None:
    states = [(0.0, "ok"), (10.0, "pending"), (20.0, "pending"), (30.0, "firing"), (40.0, "ok")]
    assert state_spans(states, 50.0) == [Span(10.0, 30.0, "pending"), Span(30.0, 40.0, "firing")]
    assert state_spans([(0.0, "firing")], 5.0) == [Span(0.0, 5.0, "firing")]
    assert state_spans([], 5.0) == []


def test_time_ticks_are_round_utc_times() -> None:
    ticks = time_ticks(T0, T0 + 3600, 4)
    assert [label for _, label in ticks] == ["22:15", "22:30", "22:45", "23:00"]
    assert all(at % 900 == 0 for at, _ in ticks)
    days = time_ticks(T0, T0 + 7 * 86400, 8)
    assert [label for _, label in days][:2] == ["11-15", "11-16"]
    assert time_ticks(T0, T0, 5) == []
