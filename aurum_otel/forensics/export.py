"""From production to a test: captured examples written as a pytest module.

``aurum-migrate mismatches NAME --export-pytest FILE --target module:function`` writes a module
with one parametrised case per signature (the latest replayable example of each, inputs as they
were stored: redacted). Each case calls the target's two implementations in the test process and
fails until they agree; a case that cannot be rebuilt is skipped, saying why.
"""

from __future__ import annotations

import pprint
from collections.abc import Sequence
from typing import Any

from aurum_otel.forensics.replay import FIXED, Outcome, load_target, replay_example
from aurum_otel.forensics.report import Group

_CASE_KEYS = ("signature", "shape", "args", "kwargs", "authoritative", "shadow", "truncated",
              "trace_id")

_TEMPLATE = '''"""Regression tests for migration {name!r}: one case per mismatch signature captured.

Written by `aurum-migrate mismatches {name} --export-pytest` (inputs as captured: redacted).
Each case runs both implementations of {target} and fails until they agree.
"""

import pytest

from aurum_otel.forensics.export import check_case

TARGET = {target!r}

CASES = {cases}


@pytest.mark.parametrize("case", CASES, ids=[case["signature"] for case in CASES])
def test_{name}_implementations_agree(case):
    message = check_case(TARGET, case)
    if message.startswith("skip: "):
        pytest.skip(message[len("skip: "):])
    assert not message, message
'''


def case_of(group: Group) -> dict[str, Any]:
    """The case of one signature: its latest example that can be replayed (else its latest)."""
    chosen = next((e for e in reversed(group.examples) if not e.get("truncated")), group.example)
    return {key: chosen.get(key) for key in _CASE_KEYS}


def module_text(name: str, target: str, groups: Sequence[Group]) -> str:
    """The test module's source."""
    cases = [case_of(g) for g in groups]
    return _TEMPLATE.format(name=name, target=target,
                            cases=pprint.pformat(cases, width=100, sort_dicts=False))


def check_case(target: str, case: dict[str, Any]) -> str:
    """``""`` when ``target``'s implementations agree on ``case``; ``"skip: why"`` when the case
    cannot be rebuilt; otherwise what still differs."""
    outcome = replay_example(load_target(target), case)
    if outcome.status == FIXED:
        return ""
    if outcome.status == "skipped":
        return f"skip: {outcome.detail}"
    return describe(outcome, case)


def describe(outcome: Outcome, case: dict[str, Any]) -> str:
    shape = "; ".join(case.get("shape") or ())
    lines = [f"signature {outcome.signature} ({shape}): {outcome.status}"]
    if outcome.detail:
        lines.append(outcome.detail)
    lines.extend(outcome.differences)
    return "\n".join(lines)
