"""``aurum-migrate mismatches``: examples grouped by signature, as a user reads them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aurum_otel.cli import cli
from aurum_otel.forensics.capture import Capturer
from aurum_otel.forensics.storage import FILE_NAME, FileSink
from tests.unit.forensics.support import Clock, example

TRACE = "0af7651916cd43dd8448eb211c80319c"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **(env or {})})


@pytest.fixture
def state() -> Path:
    return Path(os.environ["AURUM_STATE_DIR"])


@pytest.fixture
def captured(state: Path) -> Capturer:
    """Three type bugs on port (two traces), one value bug on host, one on another migration."""
    capturer = Capturer(FileSink(state / FILE_NAME), synchronous=True, clock=Clock())
    for port, when, trace in ((8080, 1_790_000_000, TRACE), (9090, 1_790_000_100, "1" * 32),
                              (7070, 1_790_000_200, "2" * 32)):
        capturer.record(example({"port": port}, {"port": str(port)}, when=when, trace_id=trace,
                                kwargs={"path": "[bold]/etc/app[/bold]"}))
    capturer.record(example({"host": "a"}, {"host": "b"}, when=1_790_000_300))
    capturer.record(example({"x": 1}, {"x": 2}, name="database"))
    return capturer


def test_mismatches_groups_examples_by_signature(captured: Capturer) -> None:
    result = run("mismatches", "settings", "--jaeger-url", "http://jaeger:16686/")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "settings: 2 signature(s), 4 mismatch(es), 4 example(s) stored" in out
    assert "port: type int!=str" in out and "host: value" in out
    assert out.index("port: type int!=str") < out.index("host: value")  # most frequent first
    assert "3 mismatch(es), first 2026-09-21 14:13:20Z, last 2026-09-21 14:16:40Z" in out
    assert f"http://jaeger:16686/trace/{'2' * 32}" in out
    assert "[bold]/etc/app[/bold]" in out  # user data printed as typed, never markup
    assert "database" not in out


def test_mismatches_json_has_counts_shares_and_trace_links(captured: Capturer, state: Path) -> None:
    (state / "migration_metrics.json").write_text(json.dumps(
        {"settings_migration": {"comparisons": {"match": 396, "mismatch": 4}}}))
    result = run("mismatches", "settings", "--json",
                 env={"AURUM_JAEGER_URL": "http://jaeger:16686"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["mismatches"], data["stored"], data["comparisons"]) == (4, 4, 400)
    port, host = data["signatures"]
    assert port["shape"] == ["port: type int!=str"] and port["count"] == 3
    assert port["share"] == pytest.approx(0.0075)
    assert port["trace_ids"] == ["2" * 32, "1" * 32, TRACE]
    assert port["trace_links"][0] == f"http://jaeger:16686/trace/{'2' * 32}"
    assert port["example"]["kwargs"] == {"path": "[bold]/etc/app[/bold]"}
    assert host["count"] == 1 and len(host["signature"]) == 12


def test_since_keeps_the_recent_examples(captured: Capturer) -> None:
    data = json.loads(run("mismatches", "settings", "--json",
                          "--since", "2026-09-21T14:15:01+00:00").output)
    assert sorted((s["shape"], s["count"]) for s in data["signatures"]) == [
        (["host: value"], 1), (["port: type int!=str"], 1)]


def test_suppressed_mismatches_are_counted(state: Path) -> None:
    clock = Clock()
    capturer = Capturer(FileSink(state / FILE_NAME), synchronous=True, clock=clock, per_minute=2)
    for port in range(7):
        capturer.record(example({"port": port}, {"port": str(port)}))
    clock.now += 60
    capturer.record(example({"port": 1}, {"port": "1"}))
    [found] = json.loads(run("mismatches", "settings", "--json").output)["signatures"]
    assert (found["count"], found["stored"]) == (8, 3)


def test_no_examples_says_how_to_turn_capture_on() -> None:
    result = run("mismatches", "settings")
    assert result.exit_code == 0
    assert "no mismatch examples of settings captured" in result.output
    assert "AURUM_MIGRATION_SETTINGS_CAPTURE=1" in result.output


@pytest.mark.parametrize(("args", "code", "message"), [
    (("mismatches", "setings"), 3, "did you mean 'settings'"),
    (("mismatches", "Bad-Name"), 3, "NAME"),
    (("mismatches", "settings", "--since", "yesterday"), 64, "neither a duration"),
    (("mismatches", "settings", "--export-pytest", "t.py"), 64, "needs --target"),
    (("mismatches", "settings", "--export-pytest", "t.py", "--target", "nocolon"), 64,
     "is not module:function"),
    (("replay", "settings"), 64, "needs --target"),
], ids=["unknown-name", "invalid-name", "bad-since", "export-no-target", "bad-target",
        "replay-no-target"])
def test_bad_input_says_what_to_change(args: tuple[str, ...], code: int, message: str) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output


def test_export_with_nothing_captured_is_an_error(tmp_path: Path) -> None:
    result = run("mismatches", "settings", "--export-pytest", str(tmp_path / "t.py"),
                 "--target", "app:load")
    assert result.exit_code == 3
    assert "nothing to export" in result.output
    assert not (tmp_path / "t.py").exists()


def test_replay_of_an_unknown_signature_lists_the_captured_ones(captured: Capturer) -> None:
    result = run("replay", "settings", "--signature", "feedbeef0000", "--target", "app:load")
    assert result.exit_code == 3
    assert "no captured examples of settings with signature feedbeef0000" in result.output
