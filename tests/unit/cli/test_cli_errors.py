"""``aurum-migrate`` on hostile and mistaken input: plain text, clear errors, exit 3 or 64.

Run in process with click's CliRunner, through the same ``main`` as the console script.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from aurum_otel import testing
from aurum_otel.cli import cli
from aurum_otel.store import FileStore


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    testing.reset()  # a fresh process's view, as each command line gets
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "250", **(env or {})})
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("AURUM_STATE_DIR", str(tmp_path))
    return tmp_path


# ------------------------------------------------------------------ user data is never markup

def test_markup_in_a_reason_or_an_actor_prints_as_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state(monkeypatch, tmp_path)
    result = invoke("advance", "billing", "--new", "--reason", "ticket [/ops] rollout",
                    "--actor", "[bold]eve")
    assert result.exit_code == 0, result.output
    assert "by [bold]eve: ticket [/ops] rollout" in result.stdout
    status = invoke("status")
    assert status.exit_code == 0 and "[bold]eve: ticket [/ops] rollout" in status.stdout
    history = invoke("history", "billing")
    assert history.exit_code == 0 and "[bold]eve: ticket [/ops] rollout" in history.stdout


def test_a_malformed_store_url_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    state(monkeypatch, tmp_path)
    result = invoke("status", env={"AURUM_STATE_URL": "redis://user:secret@[/oops"})
    assert result.exit_code == 3
    assert "AURUM_STATE_URL='[/oops' is not valid" in result.stderr
    assert "secret" not in result.output


# ------------------------------------------------------------------ inputs that used to crash

NESTED = "rules:\n" + "".join("  " * i + "- any:\n" for i in range(60)) + "  " * 60 + "- error_rate: {}\n"
BAD_RULES = [
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "binary", id="binary"),
    pytest.param(b"window: .nan\n", "finite", id="nan-window"),
    pytest.param(b"window: .inf\n", "finite", id="inf-window"),
    pytest.param(b"rules:\n  - error_rate: {max_rate: .nan}\n", "finite", id="nan-threshold"),
    pytest.param(b"min_samples: .inf\n", "finite", id="inf-min-samples"),
    pytest.param(b"[" * 5000, "nested", id="deep-yaml"),
    pytest.param(NESTED.encode(), "nested", id="deep-rules"),
]


@pytest.mark.parametrize(("content", "needle"), BAD_RULES)
@pytest.mark.parametrize("command", ["health", "rules"])
def test_bad_rules_files_exit_3_and_say_why(
    command: str, content: bytes, needle: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state(monkeypatch, tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_bytes(content)
    result = invoke(command, "--rules", str(rules))
    assert result.exit_code == 3, result.output
    assert str(rules) in result.stderr and needle in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["health", "--window", "nan"], ["health", "--window", "inf"], ["rules", "--window", "nan"],
        ["watch", "settings", "--bake", "nan"], ["watch", "settings", "--interval", "inf"],
        ["watch", "settings", "--window", "-inf"], ["rules", "--for", "garbage"],
        ["rules", "--for", "30"], ["advance", "settings", "hybrid", "--percent", "nan"],
        ["advance", "settings", "hybrid", "--compare", "inf"], ["demo", "--duration", "nan"],
        ["monitor", "--interval", "nan"],
    ],
    ids=lambda a: " ".join(a),
)
def test_non_finite_numbers_and_bad_durations_are_usage_errors(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = state(monkeypatch, tmp_path)
    result = invoke(*args)
    assert result.exit_code == 64, result.output
    assert "Invalid value for" in result.stderr
    assert not (store / "migration_state.json").exists()  # nothing was written


def test_rules_into_a_missing_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state(monkeypatch, tmp_path)
    target = tmp_path / "no" / "such" / "rules.yml"
    result = invoke("rules", "-o", str(target))
    assert result.exit_code == 3
    assert f"the folder {target.parent} does not exist; create it" in result.stderr


def test_rules_onto_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state(monkeypatch, tmp_path)
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    result = invoke("rules", "-o", "/dev/full")
    assert result.exit_code == 3
    assert "cannot use /dev/full: No space left on device; free some disk space" in result.stderr


def test_rules_output_is_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state(monkeypatch, tmp_path)
    target = tmp_path / "rules.yml"
    assert invoke("rules", "-o", str(target)).exit_code == 0
    assert "AurumMigrationErrorRate" in target.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


ODD_METRICS = ["[]", '{"settings_migration": 5}', '{"settings_migration": {"implementations": [1]}}',
               '{"settings_migration": {"implementations": {"legacy": {"calls": "many"}}}}',
               '{"settings_migration": {"comparisons": {"mismatch": -3}}}', "\x00\x01", "{"]


@pytest.mark.parametrize("content", ODD_METRICS)
@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["monitor", "--once"],
                                     ["health", "settings"]])
def test_an_odd_metrics_file_never_crashes(
    command: list[str], content: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state(monkeypatch, tmp_path)
    (tmp_path / "migration_metrics.json").write_text(content)
    result = invoke(*command)
    assert result.exit_code in (0, 2, 3), result.output
    if result.exit_code == 3:
        assert "migration_metrics.json" in result.stderr or "metrics file" in result.stderr


# ------------------------------------------------------------------ names

def test_a_misspelt_name_fails_with_did_you_mean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    store = state(monkeypatch, tmp_path)
    result = invoke("rollback", "databse")
    assert result.exit_code == 3
    assert "unknown migration 'databse'; did you mean 'database'?" in result.stderr
    assert FileStore.in_dir(store).snapshot().records == {}  # nothing written
    for command in (["history", "databse"], ["health", "databse"], ["watch", "setings"]):
        result = invoke(*command)
        assert result.exit_code == 3 and "did you mean" in result.stderr, command


@pytest.mark.parametrize("name", ["", "Billing", "a\nb", 'a"b', "café", "x" * 64])
def test_invalid_names_are_refused_before_anything_is_written(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = state(monkeypatch, tmp_path)
    result = invoke("advance", name, "--new")
    assert result.exit_code == 3
    assert "NAME=" in result.stderr and "lower-case ASCII letters" in result.stderr
    assert not (store / "migration_state.json").exists()


def test_a_new_migration_is_created_explicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    store = state(monkeypatch, tmp_path)
    result = invoke("advance", "billing")
    assert result.exit_code == 3
    assert "run `aurum-migrate advance billing --new`" in result.stderr
    assert invoke("advance", "billing", "--new").exit_code == 0
    assert invoke("advance", "billing").exit_code == 0  # known from the store now
    assert FileStore.in_dir(store).snapshot().records["billing"].rollout.percent == 10


def test_names_known_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state(monkeypatch, tmp_path)
    result = invoke("history", "payments", env={"AURUM_MIGRATION_PAYMENTS_PHASE": "hybrid"})
    assert result.exit_code == 0 and "no transitions recorded for payments" in result.stdout


def test_records_under_invalid_names_are_reported_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A store written before names were checked (`advance ""` used to create '').
    store = state(monkeypatch, tmp_path)
    for name in ("", "billing"):
        FileStore.in_dir(store).transition(name, _hybrid(), actor="t", reason="t")
    result = invoke("status", "--json")
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.stdout)] == ["billing", "database", "settings"]
    assert "records under names that are not valid migration names ('')" in result.stderr


# ------------------------------------------------------------------ a store that cannot be read

@pytest.mark.parametrize("args", [["status", "--json"], ["status"], ["history", "settings"],
                                  ["history", "settings", "--json"]])
def test_a_corrupt_state_file_exits_3(args: list[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    state(monkeypatch, tmp_path)
    (tmp_path / "migration_state.json").write_text("{oops")
    result = invoke(*args)
    assert result.exit_code == 3, result.output
    assert "not valid JSON" in result.stderr


def test_one_bad_record_is_named_and_the_others_still_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One migration's unreadable record: status shows the others, names the bad one, exits 3;
    its history says why; advance on another migration lands."""
    from aurum_otel import Phase, Rollout

    state(monkeypatch, tmp_path)
    store = FileStore.in_dir(tmp_path)
    store.transition("settings", Phase.HYBRID, Rollout(percent=10), actor="a", reason="r")
    store.transition("database", Phase.HYBRID, Rollout(percent=10), actor="a", reason="r")
    document = json.loads(store.path.read_text())
    document["migrations"]["database"] = {"phase": "sideways", "rollout": {}}
    store.path.write_text(json.dumps(document))
    result = invoke("status", "--json")
    assert result.exit_code == 3
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["settings"]["phase"] == "hybrid"
    assert "'database'" in result.stderr and "unreadable" in result.stderr
    history = invoke("history", "database")
    assert history.exit_code == 3 and "unreadable" in history.stderr
    assert invoke("advance", "settings", "--percent", "50", "--reason", "ok").exit_code == 0


# ------------------------------------------------------------------ global settings

def test_a_bad_global_variable_is_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                 ) -> None:
    state(monkeypatch, tmp_path)
    result = invoke("status", env={"AURUM_REFRESH_INTERVAL": "0.5s"})
    assert result.exit_code == 3
    assert "AURUM_REFRESH_INTERVAL='0.5s' is not valid; allowed: a number of seconds" in result.stderr
    assert invoke("status", "--help", env={"AURUM_REFRESH_INTERVAL": "0.5s"}).exit_code == 0


# ------------------------------------------------------------------ the split (13.8)

def test_the_split_counts_authoritative_calls_beside_the_configured_percent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = state(monkeypatch, tmp_path)
    FileStore.in_dir(store).transition("settings", _hybrid(), _rollout(10), actor="t", reason="t")
    # 1000 calls at 10 %, every one shadowed: each side ran 1000 times, served 900 / 100.
    (store / "migration_metrics.json").write_text(json.dumps({"settings_migration": {
        "migration_phase": "hybrid", "legacy_calls": 900, "simplified_calls": 100,
        "implementations": {"legacy": {"calls": 1000, "errors": 0, "shadow_calls": 100},
                            "simplified": {"calls": 1000, "errors": 0, "shadow_calls": 900}},
        "comparisons": {"match": 1000}}}))
    rows = json.loads(invoke("status", "--json").stdout)
    split = next(r for r in rows if r["name"] == "settings")["split"]
    assert split == {"legacy": 900, "simplified": 100, "simplified_share": 0.1,
                     "configured_percent": 10.0}
    assert "900 / 100 (10.0% simplified; set 10%)" in invoke("status").stdout
    assert "900 / 100 (10.0% simplified; set 10%)" in invoke("monitor", "--once").stdout


def _hybrid():  # type: ignore[no-untyped-def]
    from aurum_otel.phase import Phase

    return Phase.HYBRID


def _rollout(percent: float):  # type: ignore[no-untyped-def]
    from aurum_otel.phase import Rollout

    return Rollout(percent=percent, compare=100)


def test_watch_holds_the_step_on_a_failing_source_then_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state(monkeypatch, tmp_path)
    assert invoke("advance", "settings", "hybrid", "--percent", "10", "--reason", "t").exit_code == 0
    result = invoke("watch", "settings", "--source", "prometheus", "--prometheus-url",
                    "http://127.0.0.1:1", "--interval", "0.2", "--give-up-after", "1")
    assert result.exit_code == 3
    assert "holding the step" in result.stdout and "NOT watched" in result.stderr
    record = FileStore.in_dir(tmp_path).snapshot().get("settings")
    assert record is not None and record.rollout.percent == 10  # nothing moved


def test_status_shows_a_pause_and_who_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    state(monkeypatch, tmp_path)
    assert invoke("advance", "settings", "hybrid", "--percent", "10", "--reason", "t").exit_code == 0
    assert invoke("pause", "settings", "--reason", "incident 42").exit_code == 0
    rows = {row["name"]: row for row in json.loads(invoke("status", "--json").stdout)}
    assert rows["settings"]["held"].startswith("paused by") and "incident 42" in rows["settings"]["held"]
    assert invoke("resume", "settings", "--reason", "fixed").exit_code == 0
    rows = {row["name"]: row for row in json.loads(invoke("status", "--json").stdout)}
    assert rows["settings"]["held"] is None
