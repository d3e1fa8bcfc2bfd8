"""Plots as hand-written SVG: no dependency, nothing fetched, a few kilobytes per plot.

Each plot is an ``<svg>`` of a fixed size with its title, labelled axes (with units), a legend,
the migration's steps as shaded bands and its transitions as numbered vertical lines (their
``<title>`` names the actor and the reason, shown on hover). Colours come from
:data:`~aurum_otel.report.model.COLOURS` (Okabe-Ito), the same for an implementation everywhere.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from html import escape

from aurum_otel.report.model import COLOURS, Band, Marker, Period, Series, Threshold, VerdictPoint

WIDTH = 760
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 62, 44
BAND_FILLS = ("#f2f2f2", "#e4e4e4")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering ``low..high`` (about ``count`` of them)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1.0
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def time_ticks(start: float, end: float, count: int = 6) -> list[float]:
    """Tick times on round seconds/minutes/hours."""
    span = max(end - start, 1.0)
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                             21600, 43200, 86400) if span / s <= count), 86400.0)
    first = math.ceil(start / step) * step
    return [first + i * step for i in range(int((end - first) // step) + 1)]


def clock(moment: float, span: float) -> str:
    return time.strftime("%H:%M:%S" if span < 600 else "%H:%M", time.gmtime(moment))


def fmt(value: float) -> str:
    return f"{value:.4g}"


class Frame:
    """The coordinate mapping of one plot."""

    def __init__(self, start: float, end: float, low: float, high: float,
                 width: int = WIDTH, height: int = HEIGHT) -> None:
        self.start, self.end = start, max(end, start + 1.0)
        self.low, self.high = low, high if high > low else low + 1.0
        self.width, self.height = width, height

    def x(self, moment: float) -> float:
        share = (moment - self.start) / (self.end - self.start)
        return LEFT + min(max(share, 0.0), 1.0) * (self.width - LEFT - RIGHT)

    def y(self, value: float) -> float:
        share = (value - self.low) / (self.high - self.low)
        return self.height - BOTTOM - min(max(share, 0.0), 1.0) * (self.height - TOP - BOTTOM)


def line_chart(*, plot_id: str, title: str, y_label: str, series: Sequence[Series],
               period: Period, thresholds: Sequence[Threshold] = (),
               y_max: float | None = None, empty: str = "no data in this period") -> str:
    """One time-series plot as an ``<svg>`` element (a string)."""
    values = [v for s in series for _, v in s.points if math.isfinite(v)]
    values += [t.value for t in thresholds]
    high = y_max if y_max is not None else max(values, default=1.0) * 1.1
    ticks = nice_ticks(0.0, high if high > 0 else 1.0)
    frame = Frame(period.start, period.end, 0.0, ticks[-1])
    out = [_open(plot_id, title, frame)]
    out += _bands(frame, period.bands)
    out += _axes(frame, ticks, y_label)
    for threshold in thresholds:
        y = frame.y(threshold.value)
        out.append(f'<line class="threshold" x1="{LEFT}" x2="{frame.width - RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}" stroke="{COLOURS["threshold"]}" stroke-dasharray="6 4" '
                   f'stroke-width="1.2"><title>{escape(threshold.label)}</title></line>')
    for line in series:
        out += _line(frame, line)
    out += _markers(frame, period.markers)
    if not values or all(not s.points for s in series):
        out.append(f'<text class="empty" x="{frame.width / 2:.0f}" y="{frame.height / 2:.0f}" '
                   f'text-anchor="middle" fill="#555">{escape(empty)}</text>')
    out.append(_legend(frame, [(s.label, COLOURS.get(s.key, "#000"), s.dashed) for s in series]
                       + [(t.label, COLOURS["threshold"], True) for t in thresholds]))
    out.append("</svg>")
    return "".join(out)


def verdict_chart(*, plot_id: str, title: str, verdicts: Sequence[VerdictPoint], period: Period
                  ) -> str:
    """Verdicts over time: one coloured tick per evaluation on three rows."""
    frame = Frame(period.start, period.end, 0.0, 3.0, height=180)
    rows = ("unhealthy", "inconclusive", "healthy")
    out = [_open(plot_id, title, frame)]
    out += _bands(frame, period.bands)
    out += _axes(frame, [], "")
    for i, row in enumerate(rows):
        y = frame.y(2.5 - i)
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{row}</text>')
    for point in verdicts:
        if point.status not in rows:
            continue
        y = frame.y(2.5 - rows.index(point.status))
        out.append(f'<rect x="{frame.x(point.at) - 2:.1f}" y="{y - 8:.1f}" width="4" height="16" '
                   f'fill="{COLOURS[point.status]}"><title>{escape(point.status)}: '
                   f'{escape(point.reason)}</title></rect>')
    out += _markers(frame, period.markers)
    out.append(_legend(frame, [(r, COLOURS[r], False) for r in reversed(rows)]))
    out.append("</svg>")
    return "".join(out)


def _open(plot_id: str, title: str, frame: Frame) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(plot_id)}" class="plot" '
            f'width="{frame.width}" height="{frame.height}" viewBox="0 0 {frame.width} '
            f'{frame.height}" role="img" aria-label="{escape(title)}" font-family="sans-serif">'
            f'<title>{escape(title)}</title>'
            f'<rect width="{frame.width}" height="{frame.height}" fill="#fff"/>'
            f'<text x="{LEFT}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>')


def _bands(frame: Frame, bands: Sequence[Band]) -> list[str]:
    out = []
    for i, band in enumerate(bands):
        x0, x1 = frame.x(band.start), frame.x(band.end)
        if x1 - x0 < 0.5:
            continue
        out.append(f'<rect class="band" x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" '
                   f'height="{frame.height - TOP - BOTTOM}" fill="{BAND_FILLS[i % 2]}">'
                   f'<title>step: {escape(band.label)}</title></rect>')
        fits = int((x1 - x0 - 6) / 5.5)
        if fits >= 4:
            label = band.label if len(band.label) <= fits else band.label[:fits - 1] + "…"
            out.append(f'<text x="{x0 + 3:.1f}" y="{TOP + 11}" font-size="10" fill="#444">'
                       f'{escape(label)}</text>')
    return out


def _axes(frame: Frame, ticks: Sequence[float], y_label: str) -> list[str]:
    bottom, right = frame.height - BOTTOM, frame.width - RIGHT
    out = [f'<line x1="{LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#333"/>',
           f'<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{bottom}" stroke="#333"/>']
    for tick in ticks:
        y = frame.y(tick)
        out.append(f'<line x1="{LEFT}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ccc" '
                   f'stroke-width="0.5"/><text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="11">{fmt(tick)}</text>')
    span = frame.end - frame.start
    for moment in time_ticks(frame.start, frame.end):
        x = frame.x(moment)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{bottom}" y2="{bottom + 4}" stroke="#333"/>'
                   f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="11">'
                   f'{clock(moment, span)}</text>')
    out.append(f'<text x="{(LEFT + right) / 2:.0f}" y="{frame.height - 6}" text-anchor="middle" '
               f'font-size="12">time (UTC)</text>')
    if y_label:
        middle = (TOP + bottom) / 2
        out.append(f'<text x="14" y="{middle:.0f}" text-anchor="middle" font-size="12" '
                   f'transform="rotate(-90 14 {middle:.0f})">{escape(y_label)}</text>')
    return out


def _line(frame: Frame, series: Series) -> list[str]:
    colour = COLOURS.get(series.key, "#000")
    segments: list[list[tuple[float, float]]] = [[]]
    for moment, value in series.points:
        if math.isfinite(value):
            segments[-1].append((frame.x(moment), frame.y(value)))
        elif segments[-1]:
            segments.append([])
    dash = ' stroke-dasharray="5 3"' if series.dashed else ""
    out = []
    for segment in segments:
        if len(segment) == 1:
            x, y = segment[0]
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        elif segment:
            path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(segment))
            out.append(f'<path class="series" data-key="{escape(series.key)}" d="{path}" fill="none" '
                       f'stroke="{colour}" stroke-width="2"{dash}><title>{escape(series.label)}'
                       f'</title></path>')
    return out


def _markers(frame: Frame, markers: Sequence[Marker]) -> list[str]:
    out = []
    for number, marker in enumerate(markers, 1):
        x = frame.x(marker.at)
        tip = escape(f"#{number} to {marker.to} by {marker.actor}: {marker.reason}")
        out.append(f'<g class="transition"><title>{tip}</title><line x1="{x:.1f}" x2="{x:.1f}" '
                   f'y1="{TOP - 6}" y2="{frame.height - BOTTOM}" stroke="#333" stroke-width="1.2" '
                   f'stroke-dasharray="2 2"/><text x="{x:.1f}" y="{TOP - 8}" text-anchor="middle" '
                   f'font-size="10" font-weight="bold">{number}</text></g>')
    return out


def _legend(frame: Frame, entries: Sequence[tuple[str, str, bool]]) -> str:
    out, x = ['<g class="legend">'], float(frame.width - RIGHT)
    for label, colour, dashed in reversed(entries):
        width = 26 + 6.5 * len(label)
        x -= width
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(f'<line x1="{x:.1f}" x2="{x + 18:.1f}" y1="34" y2="34" stroke="{colour}" '
                   f'stroke-width="3"{dash}/><text x="{x + 22:.1f}" y="38" font-size="11">'
                   f'{escape(label)}</text>')
    out.append("</g>")
    return "".join(out)
