"""Plots of a metric rule's series (issue 16, part 4): the SVG is parsed back, and what it draws is counted.

Pure: hand-made QueryResults, no Prometheus. Each case parses the document with xml.etree (so it is well-formed) and
asserts what an operator would see: the lines, the gaps, the threshold and its label, the legend's words.
"""

from __future__ import annotations

import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence

from deploy_verify.checks.plot import MAX_SERIES, MIME, evidence, series_svg
from deploy_verify.checks.result import Verdict
from deploy_verify.checks.transports.prometheus import QueryResult, Sample, Series

NS = "{http://www.w3.org/2000/svg}"
END = 1796285400.0  # 2026-12-03 08:10:00 UTC
STEP = 10.0
WINDOW = 300.0  # 31 points


def result(series: Sequence[Series], end: float = END, window: float = WINDOW, step: float = STEP) -> QueryResult:
    return QueryResult("sum(rate(x[1m]))", "matrix", tuple(series), end - window, end, step, "http://prom:9090")


def line(
    values: Sequence[float | None], labels: Mapping[str, str] | None = None, end: float = END, step: float = STEP
) -> Series:
    """A series over the window ending `end`, a point every `step`; None is a missing point (absent at that step)."""
    start = end - step * (len(values) - 1)
    samples = tuple(Sample(start + i * step, v) for i, v in enumerate(values) if v is not None)
    return Series.of(labels or {}, samples)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # our own output, parsed to prove it is well-formed


def elements(root: ET.Element, tag: str, cls: str | None = None) -> list[ET.Element]:
    return [e for e in root.iter(f"{NS}{tag}") if cls is None or e.get("class") == cls]


def texts(root: ET.Element, cls: str) -> list[str]:
    return [e.text or "" for e in elements(root, "text", cls)]


def points(polyline: ET.Element) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in (polyline.get("points") or "").split())]


def plot_box(root: ET.Element) -> tuple[float, float, float, float]:
    """left, top, right, bottom of the plot area."""
    (rect,) = elements(root, "rect", "plot")
    left, top = float(rect.get("x", "")), float(rect.get("y", ""))
    return left, top, left + float(rect.get("width", "")), top + float(rect.get("height", ""))


def test_both_windows_are_drawn_with_the_threshold_and_a_legend() -> None:
    now = result(
        [line([0.004 + 0.0002 * i for i in range(31)], {"route": "/cart"}), line([0.002] * 31, {"route": "/"})]
    )
    before = result([line([0.003] * 31, {"route": "/cart"}, end=END - 7200)], end=END - 7200)
    root = parse(series_svg(now, before, 0.01, "error ratio"))

    assert len(elements(root, "polyline", "now")) == 2
    (base,) = elements(root, "polyline", "baseline")
    # muted: dashed, and the colour of the series with its labels after the deploy, lightened
    assert (base.get("stroke-dasharray"), base.get("stroke")) == ("4,2", "#9ac2dd")
    assert [p.get("stroke") for p in elements(root, "polyline", "now")] == ["#1f77b4", "#d62728"]
    assert all(len(points(p)) == 31 for p in elements(root, "polyline"))
    (threshold,) = elements(root, "line", "threshold")
    assert threshold.get("stroke-dasharray") == "5,3"
    _, top, _, bottom = plot_box(root)
    assert top < float(threshold.get("y1", "")) < bottom
    assert texts(root, "threshold") == ["threshold 0.01"]
    assert texts(root, "legend") == [
        "after deploy: to 08:10 UTC",
        "before deploy: to 06:10 UTC",
        '{route="/cart"}',
        '{route="/"}',
    ]
    assert texts(root, "xtick") == ["0", "-1m", "-2m", "-3m", "-4m", "-5m"]
    assert texts(root, "ytick") == ["0", "0.005", "0.010", "0.015"]
    assert root.findtext(f"{NS}title") == "error ratio"


def test_the_time_axis_is_in_seconds_before_each_windows_end() -> None:
    now = result([line([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])], window=60.0)
    before = result([line([1.0] * 7, end=END - 86400)], end=END - 86400, window=60.0)
    root = parse(series_svg(now, before, None, "rps"))
    now_line, base_line = elements(root, "polyline", "now")[0], elements(root, "polyline", "baseline")[0]
    # a day apart, yet drawn over the same x: both windows end at the right edge of the plot
    assert [x for x, _ in points(now_line)] == [x for x, _ in points(base_line)]
    assert points(now_line)[-1][0] == plot_box(root)[2]
    assert texts(root, "xtick") == ["0", "-10s", "-20s", "-30s", "-40s", "-50s", "-60s"]
    assert elements(root, "line", "threshold") == []
    six_hours = result([line([1.0] * 37, step=600.0)], window=21600.0, step=600.0)
    assert texts(parse(series_svg(six_hours, None, None, "rps")), "xtick") == [
        "0",
        "-1h",
        "-2h",
        "-3h",
        "-4h",
        "-5h",
        "-6h",
    ]


def test_nan_and_missing_points_break_the_line() -> None:
    values: list[float | None] = [1.0, 2.0, math.nan, 3.0, 4.0, None, None, 5.0, 6.0, 7.0, math.nan, 8.0]
    root = parse(series_svg(result([line(values)], window=110.0), None, None, "p95"))
    runs = [len(points(p)) for p in elements(root, "polyline", "now")]
    assert runs == [2, 2, 3]  # 1 2 | 3 4 | (two steps absent) 5 6 7 |
    (dot,) = elements(root, "circle", "now")  # the 8 alone after a NaN: a dot, since a one-point line is invisible
    assert float(dot.get("cx", "")) == plot_box(root)[2]


def test_labels_and_title_are_escaped() -> None:
    nasty = "a<b>&\"c'\x01"
    root = parse(series_svg(result([line([1.0, 2.0], {"route": nasty})]), None, 1.5, f"title {nasty}", unit='<&">'))
    assert root.findtext(f"{NS}title") == "title a<b>&\"c'\ufffd"  # a control character XML forbids is replaced
    assert '{route="a<b>&\\"c\'\\u0001"}' in texts(root, "legend")  # as PromQL writes the label
    assert 'unit: <&">' in texts(root, "legend")
    assert texts(root, "threshold") == ['threshold 1.5 <&">']


def test_no_series_says_no_samples() -> None:
    root = parse(series_svg(result([]), None, 0.01, "error ratio"))
    assert texts(root, "empty") == ["no samples: the query returned no series"]
    assert elements(root, "polyline") == elements(root, "circle") == elements(root, "line", "threshold") == []
    assert texts(root, "legend") == ["after deploy: to 08:10 UTC"]


def test_only_nan_says_no_samples() -> None:
    root = parse(series_svg(result([line([math.nan] * 5)]), result([]), None, "ratio"))
    assert texts(root, "empty") == ["no samples: every point is NaN"]
    assert elements(root, "polyline") == []


def test_an_instant_query_is_one_dot_in_the_middle() -> None:
    instant = QueryResult("up", "vector", (Series.of({}, (Sample(END, 0.5),)),), END, END, 0.0, "http://prom:9090")
    root = parse(series_svg(instant, None, None, "up"))
    left, top, right, bottom = plot_box(root)
    (dot,) = elements(root, "circle", "now")
    assert float(dot.get("cx", "")) == (left + right) / 2
    assert top < float(dot.get("cy", "")) < bottom
    assert elements(root, "polyline") == []
    assert texts(root, "xtick") == ["0"]
    assert "value" in texts(root, "legend")  # a series without labels


def test_a_constant_series_gets_a_range_around_it() -> None:
    for constant in (0.0, 250.0, -3.0):
        root = parse(series_svg(result([line([constant] * 10)]), None, None, "flat"))
        _, top, _, bottom = plot_box(root)
        (flat,) = elements(root, "polyline", "now")
        ys = {y for _, y in points(flat)}
        assert len(ys) == 1
        assert top < ys.pop() < bottom
        assert len(texts(root, "ytick")) >= 3


def test_infinities_are_clipped_to_the_edge_and_marked() -> None:
    root = parse(series_svg(result([line([1.0, 2.0, math.inf, 2.0, -math.inf])]), None, 3.0, "p99", unit="s"))
    _, top, _, bottom = plot_box(root)
    (drawn,) = elements(root, "polyline", "now")
    ys = [y for _, y in points(drawn)]
    assert (ys[2], ys[4]) == (top, bottom)
    marks = elements(root, "polygon", "inf")
    assert len(marks) == 2
    assert texts(root, "legend")[-3:] == ["+Inf drawn at the top edge", "-Inf drawn at the bottom edge", "unit: s"]
    assert texts(root, "threshold") == ["threshold 3 s"]


def test_many_series_are_capped_and_counted() -> None:
    many = [line([float(i), float(i + 1)], {"pod": f"web-{i:02d}"}) for i in range(20)]
    long = line([1.0, 2.0], {"route": "/a/very/long/route/that/goes/on/and/on"})
    root = parse(series_svg(result([long, *many]), result(many[:10]), None, "rps"))
    assert len(elements(root, "polyline", "now")) == MAX_SERIES
    assert len(elements(root, "polyline", "baseline")) == MAX_SERIES
    legend = texts(root, "legend")
    assert '{route="/a/very/long/route/…' in legend  # cut to 28 characters
    assert "+13 more after deploy" in legend
    assert "+2 more before deploy" in legend


def test_large_and_small_values_use_si_prefixes() -> None:
    root = parse(series_svg(result([line([5000.0, 20000.0])]), None, 12000.0, "bytes", unit="B"))
    assert texts(root, "ytick") == ["0", "5 kB", "10 kB", "15 kB", "20 kB", "25 kB"]
    assert texts(root, "threshold") == ["threshold 12 kB"]
    root = parse(series_svg(result([line([0.0001, 0.0004])]), None, 0.0002, "latency", unit="s"))
    assert texts(root, "ytick") == ["0", "100 µs", "200 µs", "300 µs", "400 µs", "500 µs"]
    assert texts(root, "threshold") == ["threshold 200 µs"]


def test_the_verdict_colours_the_frame() -> None:
    svg = series_svg(result([line([1.0, 2.0])]), None, None, "x", verdict=Verdict.FAIL)
    frame = next(iter(elements(parse(svg), "rect")))
    assert frame.get("stroke") == "#c62828"


def test_same_input_same_bytes() -> None:
    def draw() -> str:
        now = result([line([1.0, math.nan, 3.0, math.inf], {"b": "2", "a": "1"})])
        return series_svg(now, result([line([2.0, 2.0])], end=END - 60), 2.5, "x", unit="s")

    first = draw()
    assert first == draw()
    assert first.startswith('<svg xmlns="http://www.w3.org/2000/svg" width="640" height="240"')


def test_evidence_is_an_svg_attachment() -> None:
    svg = series_svg(result([line([1.0, 2.0])]), None, None, "x")
    attached = evidence(svg, "plot: error ratio")
    assert (attached.name, attached.mime, attached.content) == ("plot: error ratio", "image/svg+xml", svg)
    assert MIME == "image/svg+xml"


def test_the_metrics_module_does_not_import_the_plot() -> None:
    """Start-up stays cheap: metrics imports the plot only inside the function that makes one."""
    code = "import sys, deploy_verify.checks.metrics; print('deploy_verify.checks.plot' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False", done.stderr


def test_a_short_plot_names_fewer_series_in_its_legend() -> None:
    eight = [line([float(i), float(i + 1)], {"pod": f"web-{i}"}) for i in range(MAX_SERIES)]
    root = parse(series_svg(result(eight), None, None, "rps", height=140))
    assert len(elements(root, "polyline", "now")) == MAX_SERIES  # all drawn
    legend = texts(root, "legend")
    assert legend == [
        "after deploy: to 08:10 UTC",
        '{pod="web-0"}',
        '{pod="web-1"}',
        '{pod="web-2"}',
        '{pod="web-3"}',
        '{pod="web-4"}',
        "+3 more after deploy",
    ]
    assert max(float(e.get("y", "")) for e in elements(root, "text", "legend")) <= 140


def test_values_near_the_float_limit_still_plot() -> None:
    root = parse(series_svg(result([line([-1e308, 1e308])]), None, None, "extreme"))
    (drawn,) = elements(root, "polyline", "now")
    _, top, _, bottom = plot_box(root)
    assert all(top <= y <= bottom for _, y in points(drawn))
    assert texts(root, "ytick")[-1] == "2e+300"  # beyond the SI prefixes, and clipped to a finite range


def test_the_plot_imports_nothing_heavy() -> None:
    """The plot needs only the standard library and the result types: no HTTP stack, no plotting library."""
    code = (
        "import sys, deploy_verify.checks.plot; "
        "print(sorted(m for m in ('requests', 'urllib3', 'matplotlib', 'pytest') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]", done.stderr
