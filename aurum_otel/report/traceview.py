"""A routed call's trace drawn side by side: the authoritative call and its shadow on one time axis.

Left, the call span (``migrate <name>``) and its children other than the shadow; right, the shadow
span (``shadow <name>``) and its children (database spans...). Both columns share the trace's time
axis, so a shadow that ran after the call returned is visibly later. Under each, the span's
attributes; under both, the field-level differences the comparison found.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from aurum_otel import semconv
from aurum_otel.report.jaeger import MIGRATE_PREFIX, SHADOW_PREFIX, SpanRecord, TraceRecord
from aurum_otel.report.model import COLOURS
from aurum_otel.report.svg import nice_ticks

COLUMN_WIDTH = 600
ROW = 26
LABEL = 200
PAD = 16


def descendants(spans: Sequence[SpanRecord], root: SpanRecord, skip: str | None = None
                ) -> list[tuple[SpanRecord, int]]:
    """``root`` and every span under it with its depth, depth-first in start order."""
    out: list[tuple[SpanRecord, int]] = []

    def walk(span: SpanRecord, depth: int) -> None:
        out.append((span, depth))
        for child in spans:
            if child.parent_id == span.span_id and child.span_id != skip:
                walk(child, depth + 1)

    walk(root, 0)
    return out


def split_call(trace: TraceRecord) -> tuple[SpanRecord | None, SpanRecord | None]:
    """The trace's call span and its shadow span (either may be absent)."""
    call = next((s for s in trace.spans if s.name.startswith(MIGRATE_PREFIX)), None)
    shadow = None
    if call is not None:
        shadow = next((s for s in trace.spans if s.name.startswith(SHADOW_PREFIX)
                       and s.parent_id == call.span_id), None)
    if shadow is None:
        shadow = next((s for s in trace.spans if s.name.startswith(SHADOW_PREFIX)), None)
    return call, shadow


def _column(title: str, rows: list[tuple[SpanRecord, int]], start: int, end: int,
            colour: str, side: str) -> str:
    span_us = max(end - start, 1)
    ticks = nice_ticks(0.0, span_us / 1000.0, 4)
    scale_end = max(ticks[-1] * 1000.0, float(span_us))
    inner = COLUMN_WIDTH - LABEL - PAD
    height = 58 + ROW * max(len(rows), 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="trace-side {side}" width="{COLUMN_WIDTH}" '
           f'height="{height}" viewBox="0 0 {COLUMN_WIDTH} {height}" font-family="sans-serif" '
           f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
           f'<rect width="{COLUMN_WIDTH}" height="{height}" fill="#fff"/>'
           f'<text x="4" y="16" font-size="13" font-weight="bold">{escape(title)}</text>']
    axis_y = height - 22
    for tick in ticks:
        x = LABEL + tick * 1000.0 / scale_end * inner
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="26" y2="{axis_y}" stroke="#ddd"/>'
                   f'<text x="{x:.1f}" y="{axis_y + 14}" font-size="10" text-anchor="middle">'
                   f'{tick:g}</text>')
    out.append(f'<text x="{COLUMN_WIDTH - 4}" y="{height - 2}" font-size="10" text-anchor="end">'
               f'ms since the call began</text>')
    if not rows:
        out.append(f'<text x="{LABEL}" y="48" font-size="12" fill="#555">no span on this side '
                   f'(no shadow ran on this call)</text>')
    for i, (span, depth) in enumerate(rows):
        y = 30 + i * ROW
        x = LABEL + (span.start_us - start) / scale_end * inner
        width = max(span.duration_us / scale_end * inner, 1.5)
        opacity = 1.0 if depth == 0 else 0.55
        tip = f"{span.name} ({span.service}): {span.duration_us / 1000:.3f} ms"
        out.append(f'<g class="span" data-name="{escape(span.name)}"><title>{escape(tip)}</title>'
                   f'<text x="{4 + 10 * depth}" y="{y + 15}" font-size="11">'
                   f'{escape(span.name[:30 - depth])}</text>'
                   f'<rect x="{x:.1f}" y="{y + 3}" width="{width:.1f}" height="16" fill="{colour}" '
                   f'fill-opacity="{opacity}"/><text x="{min(x + width + 3, COLUMN_WIDTH - 60):.1f}" '
                   f'y="{y + 15}" font-size="10">{span.duration_us / 1000:.2f} ms</text></g>')
    out.append("</svg>")
    return "".join(out)


def _attributes(span: SpanRecord | None) -> str:
    if span is None:
        return ""
    keys = sorted(k for k in span.attributes if k.startswith((semconv.ATTR_PREFIX, "error", "db.",
                                                              "otel.status")))
    rows = "".join(f"<tr><td><code>{escape(k)}</code></td><td>{escape(span.attributes[k][:300])}"
                   f"</td></tr>" for k in keys)
    return f'<table class="attributes"><tr><th colspan="2">{escape(span.name)}</th></tr>{rows}</table>'


def trace_section(trace: TraceRecord, jaeger_ui: str | None = None) -> str:
    """One trace, drawn side by side, with attributes, differences and a link to Jaeger's UI."""
    call, shadow = split_call(trace)
    if call is None:
        return (f'<div class="trace" id="trace-{escape(trace.trace_id)}"><h3>trace '
                f'{escape(trace.trace_id)}</h3><p class="note">no routed call span in this '
                f'trace</p></div>')
    left = descendants(trace.spans, call, skip=shadow.span_id if shadow else None)
    right = descendants(trace.spans, shadow) if shadow else []
    everything = [s for s, _ in left + right]
    start = min(s.start_us for s in everything)
    end = max(s.end_us for s in everything)
    served = call.attributes.get(semconv.ATTR_IMPLEMENTATION, "?")
    shadow_impl = shadow.attributes.get(semconv.ATTR_IMPLEMENTATION, "?") if shadow else "-"
    comparison = shadow.attributes.get(semconv.ATTR_COMPARISON, "") if shadow else ""
    differences = shadow.attributes.get(semconv.ATTR_DIFFERENCES, "") if shadow else ""
    diff = "".join(f"<li><code>{escape(d)}</code></li>" for d in differences.split("; ") if d)
    diff_html = (f'<p>Differences found by the comparison:</p><ul class="differences">{diff}</ul>'
                 if diff else f'<p class="note">Comparison: {escape(comparison or "none")}; '
                              'no field-level difference recorded.</p>')
    link = (f' <a href="{escape(jaeger_ui)}/trace/{escape(trace.trace_id)}">open in Jaeger UI</a>'
            if jaeger_ui else "")
    call_svg = _column(f"authoritative: {served}", left, start, end,
                       COLOURS.get(served, "#000"), "call")
    shadow_svg = _column(f"shadow: {shadow_impl}", right, start, end,
                         COLOURS.get(shadow_impl, "#000"), "shadow")
    return (
        f'<div class="trace" id="trace-{escape(trace.trace_id)}">'
        f'<h3>trace <code>{escape(trace.trace_id)}</code> ({escape(trace.why)}): '
        f'{escape(call.name)}, served by {escape(served)}, shadow {escape(shadow_impl)}'
        f'{", " + escape(comparison) if comparison else ""}</h3><p class="note">'
        f'{len(trace.spans)} spans, {(end - start) / 1000:.2f} ms from the call to the last span.'
        f'{link}</p><div class="side-by-side">'
        f'<div class="side">{call_svg}{_attributes(call)}</div>'
        f'<div class="side">{shadow_svg}{_attributes(shadow)}</div></div>{diff_html}</div>')


def traces_section(traces: Sequence[TraceRecord], *, jaeger_ui: str | None = None,
                   problem: str | None = None) -> str:
    """The report's traces part (or why there is none)."""
    body = "".join(trace_section(t, jaeger_ui) for t in traces)
    if problem:
        body = f'<p class="note">Traces not shown: {escape(problem)}</p>' + body
    elif not traces:
        body = '<p class="note">No trace found for these migrations in Jaeger.</p>'
    return f'<section class="traces" id="traces"><h2>Traces, side by side</h2>{body}</section>'
