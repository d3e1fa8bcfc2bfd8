"""A captured mismatch goes from the call path to ``aurum-migrate mismatches`` (issue 15.1-2):
inputs and both results, redacted, with the trace ids; nothing without the opt-in."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from aurum_otel import FileStore, Phase, Rollout, migrated, testing
from aurum_otel.cli import cli
from aurum_otel.forensics import capture as forensics

CANARY = "hunter2-canary"


@pytest.fixture
def shadowing() -> Path:
    state = Path(os.environ["AURUM_STATE_DIR"])
    FileStore.in_dir(state).transition("m", Phase.HYBRID, Rollout(percent=0, compare=100),
                                       actor="t", reason="t")
    forensics.reset()
    return state


def _mismatches() -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["mismatches", "m", "--json"])
    assert result.exit_code == 0, result.output
    found: Any = json.loads(result.stdout)
    return found if isinstance(found, list) else found.get("signatures", found)


def _routed(**options: Any) -> Any:
    @migrated("m", **options)
    def price(item: str, password: str) -> dict[str, Any]:
        return {"item": item, "cents": 100}

    @price.simplified
    def _price(item: str, password: str) -> dict[str, Any]:
        return {"item": item, "cents": "100"}

    return price


def test_a_captured_mismatch_reaches_the_mismatches_command_redacted(shadowing: Path) -> None:
    price = _routed(capture=True)
    with testing.capture(state_dir=shadowing) as telemetry:
        for item in ("a", "b", "c"):
            price(item, password=CANARY)
        telemetry.wait_for_shadows()
        trace_ids = {format(s.context.trace_id, "032x") for s in telemetry.spans("migrate m")}
    assert forensics.flush(5)
    stored = (shadowing / "mismatches.jsonl").read_text()
    assert CANARY not in stored
    assert "cents" in stored and '"a"' in stored  # the inputs and paths are there, the secret not
    groups = _mismatches()
    assert len(groups) == 1  # one bug, one signature
    assert CANARY not in json.dumps(groups)
    assert set(json.dumps(groups).split('"')) & trace_ids


def test_nothing_is_captured_without_the_opt_in(shadowing: Path) -> None:
    price = _routed()
    with testing.capture(state_dir=shadowing) as telemetry:
        price("a", password=CANARY)
        telemetry.wait_for_shadows()
    forensics.flush(5)
    assert not (shadowing / "mismatches.jsonl").exists()


def test_the_environment_turns_capture_on(shadowing: Path, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("AURUM_MIGRATION_M_CAPTURE", "1")
    price = _routed()
    with testing.capture(state_dir=shadowing) as telemetry:
        price("a", password=CANARY)
        telemetry.wait_for_shadows()
    assert forensics.flush(5)
    assert (shadowing / "mismatches.jsonl").exists()


def test_a_positional_argument_named_like_a_secret_is_redacted(shadowing: Path) -> None:
    price = _routed(capture=True)
    with testing.capture(state_dir=shadowing) as telemetry:
        price("a", CANARY)  # the password passed by position
        telemetry.wait_for_shadows()
    assert forensics.flush(5)
    assert CANARY not in (shadowing / "mismatches.jsonl").read_text()
