"""A metric rule's series as a small SVG: the window after the deploy in strong colours, the baseline window's in
muted dashed ones, the threshold as a dashed line, for the Allure step of the rule.

    svg = series_svg(now, baseline, 0.01, "error ratio", unit=None)
    result_evidence = evidence(svg, "error ratio")      # image/svg+xml

Hand-written and stdlib only, so that the suite's start-up pays nothing for it (no plotting library is imported);
callers import this module inside the function that makes a plot. Both windows share one time axis, in seconds before
each window's end, since a baseline window usually ends hours before the current one; the legend says when each
ended. Output is deterministic (same input, same bytes): coordinates are rounded to a tenth of a pixel, series are
drawn in the order Prometheus returned them, and nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deploy_verify.checks.result import Evidence, Verdict

if TYPE_CHECKING:  # types only: the plot itself needs nothing from the transport (requests, urllib3)
    from deploy_verify.checks.transports.prometheus import QueryResult, Sample, Series

MIME = "image/svg+xml"
MAX_SERIES = 8  # drawn per window; the rest are counted in the legend ("+N more"), the JSON evidence has them all
LABEL_CHARS = 28  # a legend label longer than this is cut with an ellipsis
STRONG = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
MUTED = "#9e9e9e"  # a baseline series whose labels are not drawn after the deploy
VERDICT_COLOURS = {Verdict.PASS: "#2e7d32", Verdict.FAIL: "#c62828", Verdict.ERROR: "#ef6c00"}
LEGEND_WIDTH = 180
MARGIN_LEFT, MARGIN_TOP, MARGIN_BOTTOM = 56, 28, 26
ROW = 14  # legend row height
_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0, even escaped


@dataclass(frozen=True)
class _Box:
    """The plot area in pixels, and the data ranges it maps: x in seconds before the window's end, y in values."""

    left: float
    top: float
    right: float
    bottom: float
    x0: float
    x1: float
    y0: float
    y1: float
    ystep: float  # between two value ticks

    def x(self, t: float) -> float:
        return self.left + (t - self.x0) / (self.x1 - self.x0) * (self.right - self.left)

    def y(self, v: float) -> float:
        if math.isinf(v):  # clipped to the edge it points at; marked by the caller
            return self.top if v > 0 else self.bottom
        y = self.bottom - (v - self.y0) / (self.y1 - self.y0) * (self.bottom - self.top)
        return min(max(y, self.top), self.bottom)  # beyond ±1e300 (see _value_range): at the edge as well


def series_svg(
    now: QueryResult,
    baseline: QueryResult | None,
    threshold: float | None,
    title: str,
    unit: str | None = None,
    width: int = 640,
    height: int = 240,
    *,
    verdict: Verdict | None = None,
) -> str:
    """The SVG document (a str) of `now` and, when given, `baseline`, with `threshold` as a dashed line (None, NaN or
    ±Inf: none drawn). `verdict` colours the frame. Labels, title and unit are user data and are escaped."""
    windows = [(now, False)] + ([(baseline, True)] if baseline is not None else [])
    numbers = [s.v for result, _ in windows for series in result.series[:MAX_SERIES] for s in series.samples]
    finite = [v for v in numbers if math.isfinite(v)]
    limit = threshold if threshold is not None and math.isfinite(threshold) else None
    frame = VERDICT_COLOURS[verdict] if verdict is not None else "#bdbdbd"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="sans-serif" font-size="10">',
        f"<title>{_text(title)}</title>",
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#fff" stroke="{frame}"/>',
        f'<text x="8" y="16" font-size="12" font-weight="bold">{_text(_cut(title, 80))}</text>',
    ]
    box_right = width - LEGEND_WIDTH
    if not any(not math.isnan(v) for v in numbers):
        why = "the query returned no series" if not any(r.series for r, _ in windows) else "every point is NaN"
        cx, cy = (MARGIN_LEFT + box_right) / 2, height / 2
        out.append(f'<text class="empty" x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle">no samples: {why}</text>')
        out += _legend(windows, None, box_right, unit, [], height)
        return "\n".join([*out, "</svg>"]) + "\n"
    span = max(r.end - r.start for r, _ in windows)
    y0, y1, ystep = _value_range(finite + ([limit] if limit is not None else []))
    x0, x1 = (-span, 0.0) if span > 0 else (-1.0, 1.0)  # an instant query: its one moment in the middle
    box = _Box(MARGIN_LEFT, MARGIN_TOP, box_right - 12, height - MARGIN_BOTTOM, x0, x1, y0, y1, ystep)
    out += _axes(box, unit)
    colours = {s.labels: STRONG[i % len(STRONG)] for i, s in enumerate(now.series[:MAX_SERIES])}
    notes: list[str] = []
    for result, muted in reversed(windows):  # the baseline first, so the current window is drawn on top
        for series in result.series[:MAX_SERIES]:
            colour = colours.get(series.labels, MUTED) if not muted else _muted(colours.get(series.labels))
            out += _series(box, result, series, colour, muted, notes)
    if limit is not None:
        y = box.y(limit)
        out.append(
            f'<line class="threshold" x1="{box.left:.1f}" y1="{y:.1f}" x2="{box.right:.1f}" y2="{y:.1f}" '
            'stroke="#000" stroke-width="1" stroke-dasharray="5,3"/>'
        )
        label = f"threshold {_number(limit, unit)}"
        out.append(
            f'<text class="threshold" x="{box.right - 2:.1f}" y="{y - 3:.1f}" text-anchor="end">{_text(label)}</text>'
        )
    out += _legend(windows, colours, box_right, unit, notes, height)
    return "\n".join([*out, "</svg>"]) + "\n"


def evidence(svg: str, name: str = "plot") -> Evidence:
    """The SVG as an attachment of a result (image/svg+xml)."""
    return Evidence(name, svg, MIME)


# --- drawing -----------------------------------------------------------------------------------------------------


def _series(box: _Box, result: QueryResult, series: Series, colour: str, muted: bool, notes: list[str]) -> list[str]:
    """One series: a polyline per run of consecutive numbers (NaN or a missing step breaks the line), a dot for a
    run of one point, a triangle at the edge for each ±Inf."""
    dash = ' stroke-dasharray="4,2"' if muted else ""
    kind = "baseline" if muted else "now"
    out: list[str] = []
    for run in _runs(series.samples, result.step):
        points = [(box.x(s.t - result.end), box.y(s.v)) for s in run]
        if len(points) == 1:
            ((x, y),) = points
            out.append(f'<circle class="{kind}" cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{colour}"/>')
        else:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f'<polyline class="{kind}" points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>'
            )
        for sample, (x, y) in zip(run, points, strict=True):
            if math.isinf(sample.v):
                tip, base = (y, y + 6) if sample.v > 0 else (y, y - 6)
                out.append(
                    f'<polygon class="inf" points="{x:.1f},{tip:.1f} {x - 3:.1f},{base:.1f} {x + 3:.1f},{base:.1f}" '
                    f'fill="{colour}"/>'
                )
                note = "+Inf drawn at the top edge" if sample.v > 0 else "-Inf drawn at the bottom edge"
                if note not in notes:
                    notes.append(note)
    return out


def _runs(samples: tuple[Sample, ...], step: float) -> list[list[Sample]]:
    """The samples split where a point is NaN or where one or more steps are missing between two points."""
    runs: list[list[Sample]] = [[]]
    previous: Sample | None = None
    for sample in samples:
        gap = previous is not None and step > 0 and sample.t - previous.t > 1.5 * step
        if math.isnan(sample.v) or gap:
            runs.append([])
        if not math.isnan(sample.v):
            runs[-1].append(sample)
        previous = sample
    return [run for run in runs if run]


def _axes(box: _Box, unit: str | None) -> list[str]:
    out = [
        f'<rect class="plot" x="{box.left:.1f}" y="{box.top:.1f}" width="{box.right - box.left:.1f}" '
        f'height="{box.bottom - box.top:.1f}" fill="none" stroke="#616161"/>'
    ]
    step = box.ystep
    ticks = [i * step for i in range(math.ceil(box.y0 / step - 1e-9), math.floor(box.y1 / step + 1e-9) + 1)]
    for v in ticks:
        y = box.y(v)
        out.append(f'<line x1="{box.left:.1f}" y1="{y:.1f}" x2="{box.right:.1f}" y2="{y:.1f}" stroke="#eeeeee"/>')
        label = _tick(v, step, max(abs(t) for t in ticks), unit)
        out.append(f'<text class="ytick" x="{box.left - 4:.1f}" y="{y + 3:.1f}" text-anchor="end">{label}</text>')
    span = box.x1 - box.x0
    if box.x1 > 0:  # an instant query: one moment, centred; only "now" is worth a tick
        span = 0.0
    tstep = next((s for s in _TIME_STEPS if span / s <= 6), math.ceil(span / 6)) if span else 1
    for i in range(math.floor(span / tstep + 1e-9) + 1):
        t = -i * tstep
        if t < box.x0 - 1e-9:
            break
        x = box.x(t)
        out.append(
            f'<line x1="{x:.1f}" y1="{box.bottom:.1f}" x2="{x:.1f}" y2="{box.bottom + 3:.1f}" stroke="#616161"/>'
        )
        out.append(
            f'<text class="xtick" x="{x:.1f}" y="{box.bottom + 13:.1f}" text-anchor="middle">{_ago(t, tstep)}</text>'
        )
    return out


def _legend(
    windows: list[tuple[QueryResult, bool]],
    colours: dict[tuple[tuple[str, str], ...], str] | None,
    left: float,
    unit: str | None,
    notes: list[str],
    height: int,
) -> list[str]:
    """Right of the plot: one row per window (when it ended), one per series named, '+N more', then the notes; series
    rows give way to the others when the height runs out."""
    rows: list[tuple[str, str, bool]] = []  # (colour, text, dashed)
    for result, muted in windows:
        which = "before deploy" if muted else "after deploy"
        rows.append(("#9e9e9e" if muted else "#424242", f"{which}: to {_clock(result.end)}", muted))
    tail = [("", note, False) for note in notes] + (
        [("", f"unit: {_cut(unit, LABEL_CHARS - 6)}", False)] if unit else []
    )
    room = max(0, (height - MARGIN_TOP - 6) // ROW - len(rows) - len(tail) - len(windows))
    named = windows[0][0].series[: min(MAX_SERIES, room)] if colours is not None else ()
    for series in named:
        label = _cut(series.describe() if series.labels else "value", LABEL_CHARS)
        rows.append((colours[series.labels] if colours else "", label, False))
    for result, muted in windows:
        more = len(result.series) - (len(named) if not muted else min(MAX_SERIES, len(result.series)))
        if more > 0 and (muted or colours is not None):
            rows.append(("", f"+{more} more {'before' if muted else 'after'} deploy", False))
    rows += tail
    out = []
    for i, (colour, text, dashed) in enumerate(rows):
        y = MARGIN_TOP + 6 + i * ROW
        if colour:
            dash = ' stroke-dasharray="4,2"' if dashed else ""
            out.append(
                f'<line x1="{left:.1f}" y1="{y - 3:.1f}" x2="{left + 14:.1f}" y2="{y - 3:.1f}" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
        out.append(f'<text class="legend" x="{left + 18:.1f}" y="{y:.1f}">{_text(text)}</text>')
    return out


def _muted(colour: str | None) -> str:
    """A baseline series in its current series' colour, lightened; grey when no such series is drawn."""
    if colour is None:
        return MUTED
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{round(c + (255 - c) * 0.55):02x}" for c in (r, g, b))


# --- numbers and text --------------------------------------------------------------------------------------------


def _value_range(values: list[float]) -> tuple[float, float, float]:
    """The y range and its tick step: the values with a 5 % margin (a threshold at the highest value stays off the
    frame), snapped to ticks; a constant (or no finite value: only ±Inf) still gets a range, so nothing divides by 0."""
    if not values:
        return 0.0, 1.0, 0.25
    lo, hi = max(min(values), -1e300), min(max(values), 1e300)  # so that hi - lo stays finite (1e308 - -1e308)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-300):
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    margin = (hi - lo) * 0.05
    lo, hi = lo - margin if lo < 0 or lo - margin >= 0 else 0.0, hi + margin  # a rate or ratio does not dip below 0
    step = _nice(hi - lo)
    return math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step, step


def _nice(span: float) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving about four ticks over `span`."""
    raw = span / 4
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))  # 0.2 is 0.2000000001 here


def _tick(v: float, step: float, largest: float, unit: str | None) -> str:
    """A tick's value with one SI prefix for the whole axis (chosen by its largest tick) and as many decimals as the
    step needs: '0', '250m', '1.5k'; plain numbers between 0.001 and 10 000."""
    if largest >= 1e15 or 0 < largest < 1e-9:  # beyond the prefixes: an exponent
        return _text(_with_unit(f"{v:.3g}", "", unit)) if v else "0"
    scale, prefix = _prefix(largest)
    decimals = max(0, -math.floor(math.log10(step / scale) + 1e-9))
    text = f"{v / scale:.{decimals}f}"
    if float(text) == 0:
        return "0"  # never '-0', nor '0 kB'
    return _text(_with_unit(text, prefix, unit))


def _number(v: float, unit: str | None) -> str:
    if abs(v) >= 1e15 or 0 < abs(v) < 1e-9:
        return _with_unit(f"{v:.4g}", "", unit)
    scale, prefix = _prefix(abs(v))
    return _with_unit(f"{v / scale:.4g}", prefix, unit)


def _prefix(magnitude: float) -> tuple[float, str]:
    if magnitude == 0 or 1e-3 <= magnitude < 1e4:
        return 1.0, ""
    return next(((scale, p) for scale, p in _SI if magnitude >= scale), _SI[-1])


def _with_unit(number: str, prefix: str, unit: str | None) -> str:
    """'250m', '250 ms' with a unit (the prefix joins the unit), '0.25 s'."""
    return f"{number} {prefix}{_cut(unit, 8)}" if unit else number + prefix


def _ago(t: float, step: float) -> str:
    """Seconds before the window's end, as a tick, in the unit the axis' step divides: '0', '-30s', '-5m', '-2h'."""
    if t == 0:
        return "0"
    if step % 3600 == 0:
        return f"-{-t / 3600:g}h"
    if step % 60 == 0:
        return f"-{-t / 60:g}m"
    return f"-{-t:g}s"


def _clock(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M UTC")


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _text(text: str) -> str:
    """Text for XML content or a quoted attribute: escaped, and without the control characters XML 1.0 forbids."""
    text = _XML_INVALID.sub("\ufffd", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
