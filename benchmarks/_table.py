"""The benchmark's table: a row per figure, the run's sizes, and how rows are printed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Row:
    measure: str
    ours: str
    peer: str
    figure: float
    op: str  # "<=", ">=", "<", "info"
    target: float | None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.op == "info" or self.target is None:
            return "info"
        ok = {"<=": self.figure <= self.target, ">=": self.figure >= self.target,
              "<": self.figure < self.target}[self.op]
        return "PASS" if ok else "FAIL"

    @property
    def target_text(self) -> str:
        return "—" if self.op == "info" or self.target is None else f"{self.op} {self.target:g}"


@dataclass
class Sizes:
    rounds: int
    n_call: int  # calls per batch, measure 1
    n_hybrid: int  # calls per batch, measure 2
    n_off: int  # calls per batch, measure 3
    n_threads: int  # total calls per throughput run, measure 4
    thread_rounds: int
    latency_samples: int  # per side, measures 5 and 6
    flood: int  # measure 6: calls while the shadow hangs
    rss_calls: int
    rss_warmup: int


FULL = Sizes(rounds=15, n_call=2000, n_hybrid=600, n_off=20000, n_threads=1500, thread_rounds=15,
             latency_samples=150, flood=3000, rss_calls=1_000_000, rss_warmup=100_000)
QUICK = Sizes(rounds=5, n_call=600, n_hybrid=200, n_off=5000, n_threads=600, thread_rounds=5,
              latency_samples=40, flood=1500, rss_calls=50_000, rss_warmup=10_000)



def spread(result: Any) -> str:
    return (f"ratio IQR {result.ratio_low:.2f}-{result.ratio_high:.2f}, {result.rounds} rounds x "
            f"{result.n} calls")



def render_text(rows: list[Row]) -> str:
    headers = ("measure", "ours", "peer", "ratio", "target", "result")
    table = [(r.measure, r.ours, r.peer, _fmt(r.figure), r.target_text, r.verdict) for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    widths[0] = min(widths[0], 72)
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for row, r in zip(table, rows, strict=True):
        first = row[0] if len(row[0]) <= widths[0] else row[0][: widths[0] - 1] + "…"
        lines.append("  ".join(c.ljust(w) for c, w in zip((first, *row[1:]), widths, strict=True)))
        if r.notes:
            lines.append(" " * 4 + r.notes)
    return "\n".join(lines)


def render_markdown(rows: list[Row]) -> str:
    lines = ["| measure | ours | peer | ratio | target | result | notes |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.measure} | {r.ours} | {r.peer} | {_fmt(r.figure)} | {r.target_text} | "
                     f"{r.verdict} | {r.notes} |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"

