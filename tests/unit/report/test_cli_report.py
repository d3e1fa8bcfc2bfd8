"""``aurum-migrate report``: the file written from the state dir, and clear errors for bad input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from aurum_otel.cli import cli
from aurum_otel.phase import Phase, Rollout
from aurum_otel.report import parse_since
from aurum_otel.store import FileStore


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_report_writes_one_page_with_the_stores_transitions(tmp_path: Path) -> None:
    state = Path(os.environ["AURUM_STATE_DIR"])
    FileStore.in_dir(state).transition("orders", Phase.HYBRID, Rollout(10, 50), actor="alice",
                                       reason="first 10 % <after review>")
    output = tmp_path / "out.html"
    code, out, err = run("report", "orders", "-o", str(output), "--traces", "0")
    assert code == 0, err
    assert out.strip() == f"report: {output.resolve()}"
    html = output.read_text(encoding="utf-8")
    assert 'id="orders-calls"' in html and "first 10 % &lt;after review&gt;" in html
    assert "<td>alice</td>" in html
    assert not list(tmp_path.glob(".*.tmp"))


def test_unreachable_jaeger_keeps_the_report_and_says_why(tmp_path: Path) -> None:
    output = tmp_path / "out.html"
    code, _, err = run("report", "settings", "-o", str(output), "--jaeger-url", "http://127.0.0.1:9")
    assert code == 0, err
    assert "Traces not shown: cannot read Jaeger at http://127.0.0.1:9" in output.read_text()


@pytest.mark.parametrize(("args", "message"), [
    (("report", "ordrs_x", "-o", "x.html"), "unknown migration 'ordrs_x'"),
    (("report", "settings", "-o", "x.html", "--since", "soon"), "--since='soon' is not valid"),
    (("report", "settings", "-o", "x.html", "--source", "graphite"), "Invalid value for '--source'"),
    (("report", "settings", "-o", "x.html", "--source", "prometheus", "--prometheus-url",
      "http://127.0.0.1:9", "--traces", "0"), "cannot read Prometheus at http://127.0.0.1:9"),
])
def test_bad_input_exits_with_what_to_change(args: tuple[str, ...], message: str,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(*args)
    assert code in (3, 64)
    assert message in " ".join(err.split())
    assert not (tmp_path / "x.html").exists()


def test_since_durations() -> None:
    assert [parse_since(t) for t in ("90", "90s", "15m", "1h", "2d", "0.5h")] == [
        90, 90, 900, 3600, 172800, 1800]
    for bad in ("0", "-1m", "1w", "", "nan"):
        with pytest.raises(ValueError, match="--since"):
            parse_since(bad)


def test_the_report_period_starts_at_the_first_transition(tmp_path: Path) -> None:
    state = Path(os.environ["AURUM_STATE_DIR"])
    FileStore.in_dir(state).transition("orders", Phase.HYBRID, Rollout(0, 100), actor="a", reason="r")
    output = tmp_path / "out.html"
    assert run("report", "orders", "-o", str(output), "--traces", "0")[0] == 0
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert f"<td>{today}" in output.read_text()
