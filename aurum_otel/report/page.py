"""The report as one self-contained HTML page: inline CSS and SVG, no script, nothing fetched.

A Content-Security-Policy meta tag (``default-src 'none'``) makes the browser refuse any request
the page might make, so "works offline" is enforced by the page itself, not only promised.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from aurum_otel.report.model import COLOURS, MigrationData, Threshold
from aurum_otel.report.svg import line_chart, verdict_chart

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font-family:sans-serif;margin:24px;color:#222;max-width:1560px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid svg{outline:1px solid #ddd}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
.note{color:#555;font-size:13px}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px}
.side{display:inline-block;vertical-align:top;margin-right:16px}
code{font-size:12px}
"""


def migration_section(data: MigrationData) -> str:
    """The plots and the transitions table of one migration."""
    name = data.name
    period = data.period
    plots = [
        line_chart(plot_id=f"{name}-calls", title=f"{name}: runs per implementation",
                   y_label="runs per second", series=data.calls, period=period),
        line_chart(plot_id=f"{name}-errors", title=f"{name}: error rate per implementation",
                   y_label="errors (% of runs)", series=data.error_rate,
                   thresholds=_threshold(data.limits.error_rate, "rule: simplified at most {:g} %"),
                   period=period),
        line_chart(plot_id=f"{name}-latency", title=f"{name}: latency p50 (dashed) and p95",
                   y_label="milliseconds", series=data.latency, period=period),
        line_chart(plot_id=f"{name}-ratio", title=f"{name}: p95 ratio simplified / legacy",
                   y_label="ratio (x)", series=data.ratio,
                   thresholds=_threshold(data.limits.ratio, "rule: at most {:g}x"), period=period),
        line_chart(plot_id=f"{name}-mismatch", title=f"{name}: mismatch rate of shadow comparisons",
                   y_label="mismatches (% of comparisons)", series=data.mismatch,
                   thresholds=_threshold(data.limits.mismatch_rate, "rule: at most {:g} %"),
                   empty="no comparison in this period", period=period),
        line_chart(plot_id=f"{name}-split", title=f"{name}: observed vs configured split",
                   y_label="served by simplified (%)", series=data.split, y_max=100.0, period=period),
    ]
    if data.verdicts:
        plots.append(verdict_chart(plot_id=f"{name}-verdicts", title=f"{name}: verdicts over time",
                                   verdicts=data.verdicts, period=period))
        verdicts = ""
    else:
        verdicts = ('<p class="note verdicts">Verdicts over time: no verdict history (the phase '
                    'store does not keep the verdicts of watch yet).</p>')
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in data.notes)
    return (f'<section class="migration" id="migration-{escape(name)}"><h2>{escape(name)}</h2>'
            f'<p class="note">{escape(data.source)}; {_period(data.start, data.end)}; shaded bands '
            f'are the steps, numbered lines the transitions.</p>'
            f'<div class="grid">{"".join(plots)}</div>{verdicts}{notes}'
            f'{transitions_table(data)}</section>')


def _threshold(value: float, text: str) -> tuple[Threshold, ...]:
    return (Threshold(value, text.format(value)),)


def transitions_table(data: MigrationData) -> str:
    if not data.markers:
        return '<p class="note">No transition in this period.</p>'
    rows = "".join(
        f"<tr><td>{i}</td><td>{_iso(m.at)}</td><td>{escape(m.to)}</td><td>{escape(m.actor)}</td>"
        f"<td>{escape(m.reason)}</td></tr>" for i, m in enumerate(data.markers, 1))
    return ('<table class="transitions"><tr><th>#</th><th>at (UTC)</th><th>to</th><th>actor</th>'
            f'<th>reason</th></tr>{rows}</table>')


def legend_key() -> str:
    items = [("legacy", "legacy"), ("simplified", "simplified"), ("ratio", "p95 ratio"),
             ("mismatch", "mismatch rate"), ("configured", "configured split"),
             ("threshold", "rule threshold (dashed)")]
    return '<p class="note">' + " ".join(
        f'<span class="swatch" style="background:{COLOURS[k]}"></span>{escape(label)}'
        for k, label in items) + " (Okabe-Ito palette)</p>"


def render(migrations: Sequence[MigrationData], *, traces: str = "", refresh: float | None = None,
           generated: float | None = None, title: str = "aurum-otel migration report") -> str:
    """The whole page; ``refresh`` (seconds) makes the browser reload it (the live page)."""
    moment = time.time() if generated is None else generated
    meta_refresh = f'<meta http-equiv="refresh" content="{refresh:g}">' if refresh else ""
    body = "".join(migration_section(m) for m in migrations) or (
        '<p class="note">No migration known: nothing to show.</p>')
    live = (f' Refreshes every {refresh:g} s (read-only).' if refresh else "")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">{meta_refresh}'
            f'<title>{escape(title)}</title><style>{STYLE}</style></head><body>'
            f'<h1>{escape(title)}</h1><p class="note">Generated {_iso(moment)} UTC.{live}</p>'
            f'{legend_key()}{body}{traces}</body></html>')


def _iso(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))


def _period(start: float, end: float) -> str:
    return f"{_iso(start)} to {_iso(end)} UTC"
