"""The report page: self-contained, every plot a well-formed SVG of its size, transitions named."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET

from aurum_otel.report.filedata import from_section
from aurum_otel.report.model import COLOURS, VerdictPoint
from aurum_otel.report.page import CSP, render
from aurum_otel.report.svg import HEIGHT, WIDTH
from tests.unit.report.helpers import T0, flush, history, section

SVG = "{http://www.w3.org/2000/svg}"


def page(**kwargs: object) -> str:
    data = from_section("orders", section([
        (T0 + 1, flush((100, 2, 1), (50, 5, 3), match=40, mismatch=10)),
        (T0 + 11, flush((90, 0, 1), (60, 1, 2), match=50, mismatch=0)),
    ]), history(), start=T0, end=T0 + 100, source="file test")
    return render([data], generated=T0 + 100, **kwargs)  # type: ignore[arg-type]


def svgs(html: str) -> dict[str, ET.Element]:
    out = {}
    for text in re.findall(r"<svg .*?</svg>", html, re.S):
        element = ET.fromstring(text)  # well-formed, or this raises
        out[element.get("id") or ""] = element
    return out


def test_one_self_contained_file_that_fetches_nothing() -> None:
    html = page()
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in html
    assert "default-src 'none'" in CSP
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "url(" not in html


def test_every_plot_is_an_svg_of_its_size_with_title_axes_and_legend() -> None:
    plots = svgs(page())
    assert sorted(plots) == sorted(f"orders-{p}" for p in
                                   ("calls", "errors", "latency", "ratio", "mismatch", "split"))
    for element in plots.values():
        assert (element.get("width"), element.get("height")) == (str(WIDTH), str(HEIGHT))
        texts = [t.text or "" for t in element.iter(f"{SVG}text")]
        assert "time (UTC)" in texts
        assert element.find(f"{SVG}g[@class='legend']") is not None
        assert element.findall(f".//{SVG}path[@class='series']")
    errors = plots["orders-errors"]
    assert any("rule: simplified at most 5 %" in (t.text or "") for t in errors.iter(f"{SVG}text"))
    assert "errors (% of runs)" in [t.text for t in errors.iter(f"{SVG}text")]


def test_an_implementation_has_the_same_colour_on_every_plot() -> None:
    plots = svgs(page())
    for element in plots.values():
        for path in element.findall(f".//{SVG}path[@class='series']"):
            key = path.get("data-key")
            assert path.get("stroke") == COLOURS[key or ""]
    assert COLOURS["legacy"] != COLOURS["simplified"]


def test_transitions_are_marked_with_actor_and_reason() -> None:
    html = page()
    calls = svgs(html)["orders-calls"]
    tips = [g.find(f"{SVG}title").text for g in calls.findall(f"{SVG}g[@class='transition']")]  # type: ignore[union-attr]
    assert tips == ["#1 to hybrid 0% / compare 100% by alice: start the shadow run",
                    "#2 to hybrid 50% / compare 25% by controller: healthy for 60 s",
                    "#3 to legacy by controller: error rate 12 % above 5 %"]
    assert "<td>controller</td><td>error rate 12 % above 5 %</td>" in html


def test_without_a_verdict_history_the_page_says_so_and_with_one_draws_it() -> None:
    assert "no verdict history" in page()
    data = from_section("orders", section([]), history(), start=T0, end=T0 + 100, source="x")
    drawn = render([data.__class__(**{**{f: getattr(data, f) for f in data.__slots__},  # type: ignore[attr-defined]
                                      "verdicts": (VerdictPoint(T0 + 50, "unhealthy", "errors"),)})])
    assert "no verdict history" not in drawn
    assert 'id="orders-verdicts"' in drawn


def test_names_and_reasons_are_escaped() -> None:
    data = from_section("orders", section([]), [], start=T0, end=T0 + 10, source="<b>x</b>")
    html = render([data])
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_the_live_page_refreshes_itself() -> None:
    assert '<meta http-equiv="refresh" content="5">' in page(refresh=5.0)
    assert 'http-equiv="refresh"' not in page()


def test_the_configured_split_is_drawn_as_steps_never_slopes() -> None:
    split = svgs(page())["orders-split"]
    path = next(p for p in split.findall(f".//{SVG}path[@class='series']")
                if p.get("data-key") == "configured")
    points = [tuple(map(float, xy.split(","))) for xy in re.findall(r"[\d.]+,[\d.]+", path.get("d") or "")]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        assert x0 == x1 or y0 == y1, f"a slope from {(x0, y0)} to {(x1, y1)}"
    assert len({y for _, y in points}) == 2  # 0 % and 50 %
