"""Capture: size cap, rate limit per signature, redaction (the canary), never raising, opt-in."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from aurum_otel.forensics import capture
from aurum_otel.forensics.capture import Capturer, Example, Side, capture_enabled
from aurum_otel.forensics.example import DEFAULT_MAX_BYTES, size
from aurum_otel.forensics.jsonable import Budget, decode, encode
from tests.unit.forensics.support import Clock, MemorySink, example

CANARY = "canary-7f3a9c51"


# ---------------------------------------------------------------- size cap


def test_an_example_over_the_cap_is_stored_within_it_with_a_marker(sink: MemorySink) -> None:
    capturer = Capturer(sink, max_bytes=4096, synchronous=True)
    big = {"rows": [{"id": i, "text": "x" * 500} for i in range(200)]}
    assert capturer.record(example(big, {"rows": []}, args=("y" * 100_000,)))
    [line] = sink.lines
    assert len(line.encode("utf-8")) <= 4096
    record = json.loads(line)
    assert record["truncated"] is True
    assert '"$aurum":"truncated"' in line  # the marker where a part was cut
    assert record["signature"] and record["shape"] == ["rows: length"]


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
    | st.binary(max_size=200),
    lambda inner: st.lists(inner, max_size=8) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=12), inner, max_size=8),
    max_leaves=60,
)


@settings(max_examples=60, deadline=None)
@given(args=st.lists(json_like, max_size=4), value=json_like,
       cap=st.integers(min_value=1024, max_value=8192))
def test_every_stored_example_is_json_within_its_cap(args: list[Any], value: Any, cap: int) -> None:
    sink = MemorySink()
    Capturer(sink, max_bytes=cap, synchronous=True).record(
        example(value, [value, 1], args=tuple(args)))
    [line] = sink.lines
    assert len(line.encode("utf-8")) <= cap
    assert isinstance(json.loads(line), dict)


# ---------------------------------------------------------------- rate limit


def test_a_storm_stores_per_minute_examples_per_signature_and_counts_the_rest(
        sink: MemorySink, clock: Clock) -> None:
    capturer = Capturer(sink, per_minute=10, clock=clock, synchronous=True)
    port_bug = [example({"port": 8000 + i}, {"port": str(8000 + i)}) for i in range(25)]
    host_bug = [example({"host": f"h{i}"}, {"host": f"g{i}"}) for i in range(25)]
    for one, other in zip(port_bug, host_bug, strict=True):
        capturer.record(one)
        capturer.record(other)
    assert len(sink.lines) == 20  # 10 of each signature
    assert capturer.stats.rate_limited == 30
    clock.now += 6  # a minute's tenth: one token back
    capturer.record(port_bug[0])
    last = sink.records[-1]
    assert last["shape"] == ["port: type int!=str"]
    assert last["suppressed_before"] == 15  # so `mismatches` counts 25 + 1, not 11
    assert capturer.record(port_bug[0]) is False


def test_a_storm_of_distinct_signatures_keeps_a_bounded_number_of_buckets(
        sink: MemorySink, clock: Clock) -> None:
    capturer = Capturer(sink, clock=clock, synchronous=True)
    for i in range(capture.MAX_SIGNATURES + 500):
        capturer.record(example({f"f{i}": 1}, {f"f{i}": 2}))
    assert len(capturer._buckets) == capture.MAX_SIGNATURES


def test_a_slow_store_never_blocks_record_and_the_queue_is_bounded(clock: Clock) -> None:
    release = threading.Event()

    class Stuck(MemorySink):
        def append(self, name: str, line: str) -> None:
            release.wait(5)
            super().append(name, line)

    stuck = Stuck()
    capturer = Capturer(stuck, queue_size=4, clock=clock)
    started = time.perf_counter()
    accepted = sum(capturer.record(example({f"k{i}": 1}, {f"k{i}": 2})) for i in range(40))
    assert time.perf_counter() - started < 0.5
    assert accepted <= 5  # four waiting, at most one taken by the writer
    assert capturer.stats.queue_full == 40 - accepted
    release.set()
    assert capturer.flush(2.0)
    assert len(stuck.lines) == accepted
    capturer.close()


# ---------------------------------------------------------------- redaction: the canary


def _canary_example() -> Example:
    kwargs = {
        "password": CANARY, "api_key": CANARY,                              # known keys
        "config": {"db": {"dsn": f"postgres://app:{CANARY}@db/x", "Token": CANARY}},
        "message": f"login with password={CANARY} failed",                  # known key in text
        "note": CANARY,                                                     # unknown key
        "pair": ("user", CANARY),                                           # unknown, in a tuple
    }
    return Example(
        name="settings", phase="hybrid", percent=0, compare=100,
        args=(CANARY, (CANARY, "x"), SecretStr(CANARY)),
        arg_names=("client_secret", "payload"),  # the third has no known name: a SecretStr
        kwargs=kwargs,
        authoritative=Side("legacy", {"auth": {"user": "u", "key": CANARY}, "echo": CANARY,
                                      "url": f"https://u:{CANARY}@api/"}),
        shadow=Side.raised("simplified", ValueError(f"bad token: {CANARY}")),
        differences=("reason: shadow_raised",), result="error",
    )


def test_the_canary_appears_only_under_keys_the_policy_does_not_know(sink: MemorySink) -> None:
    Capturer(sink, synchronous=True).record(_canary_example())
    [line] = sink.lines
    record = json.loads(line)
    # Known keys (password, api_key, dsn, Token, auth, client_secret), credentials in text
    # (password=..., token: ..., scheme://user:...@) and SecretStr: redacted.
    assert record["kwargs"]["password"] == record["kwargs"]["api_key"] == "<redacted>"
    assert record["kwargs"]["config"]["db"] == {"dsn": "<redacted>", "Token": "<redacted>"}
    assert record["kwargs"]["message"] == "login with password=<redacted> failed"
    assert record["args"][0] == record["args"][2] == "<redacted>"
    assert record["authoritative"]["value"]["auth"] == "<redacted>"
    assert record["authoritative"]["value"]["url"] == "https://u:<redacted>@api/"
    assert record["shadow"]["error_message"] == "bad token: <redacted>"
    # Keys it does not know keep their values: a plain value, in tuples, a result field.
    assert record["kwargs"]["note"] == CANARY
    assert record["kwargs"]["pair"] == {"$aurum": "tuple", "items": ["user", CANARY]}
    assert record["args"][1] == {"$aurum": "tuple", "items": [CANARY, "x"]}
    assert record["authoritative"]["value"]["echo"] == CANARY
    assert line.count(CANARY) == 4
    assert record["redacted"] == 10  # the ten places above
    assert CANARY not in json.dumps([record["differences"], record["shape"]])


def test_a_redact_hook_removes_what_the_key_patterns_do_not_know(sink: MemorySink) -> None:
    def policy(data: dict[str, Any]) -> dict[str, Any]:
        data["kwargs"].pop("note")
        data["kwargs"]["pair"] = "<mine>"
        data["args"][1] = "<mine>"
        data["authoritative"]["value"]["echo"] = "<mine>"
        data["signature"] = "forged"  # ignored: the hook decides what is shown, not the bug
        return data

    Capturer(sink, synchronous=True).record(_canary_example(), redact=policy)
    [line] = sink.lines
    assert CANARY not in line
    assert json.loads(line)["signature"] != "forged"


@pytest.mark.parametrize("hook", [lambda d: 1 / 0, lambda d: None, lambda d: [d]],
                         ids=["raises", "returns-none", "returns-list"])
def test_a_failing_redact_hook_stores_nothing(sink: MemorySink, hook: Any) -> None:
    capturer = Capturer(sink, synchronous=True)
    assert capturer.record(_canary_example(), redact=hook) is False
    assert sink.lines == []
    assert capturer.stats.rejected_by_hook == 1


# ---------------------------------------------------------------- never raising, values as JSON


class Hostile:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no ==")

    __hash__ = object.__hash__


def test_record_never_raises(monkeypatch: pytest.MonkeyPatch, sink: MemorySink) -> None:
    capture.record(None)  # type: ignore[arg-type]  # not even an example
    capture.configure(Capturer(sink, synchronous=True))
    capture.record(example(Hostile(), Hostile(), args=(Hostile(),)))
    [record] = sink.records
    assert record["args"] == [{"$aurum": "repr", "type": f"{__name__}:Hostile",
                               "repr": "<Hostile>"}]

    class Broken(MemorySink):
        def append(self, name: str, line: str) -> None:
            raise OSError(28, "No space left on device")

    capturer = capture.configure(Capturer(Broken(), synchronous=True))
    capture.record(example(1, 2))
    assert capturer.stats.failed == 1 and "No space left" in capturer.stats.errors[0]


def test_the_process_capturer_writes_on_its_own_thread(sink: MemorySink) -> None:
    capture.configure(Capturer(sink))
    capture.record(example(1, 2))
    assert capture.flush(2.0)
    assert len(sink.lines) == 1 and capture.stats().written == 1


def test_bytes_are_stored_as_base64_with_a_marker(sink: MemorySink) -> None:
    Capturer(sink, synchronous=True).record(example(b"\x00\xffabc", b"abc"))
    value = sink.records[0]["authoritative"]["value"]
    assert value == {"$aurum": "bytes", "base64": base64.b64encode(b"\x00\xffabc").decode()}


plain_text = st.text(alphabet="abcxyz 019-_", max_size=20)
revivable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | plain_text
    | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.frozensets(st.integers(), max_size=5)
    | st.dictionaries(st.from_regex(r"k[0-9]{1,3}", fullmatch=True), inner, max_size=5)
    | st.dictionaries(st.integers(), inner, max_size=3),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(revivable)
def test_what_is_stored_comes_back_as_it_was(value: Any) -> None:
    stored = json.loads(json.dumps(encode(value, Budget(1 << 20)), allow_nan=False))
    back = decode(stored)
    assert back == value
    assert type(back) is type(value)


# ---------------------------------------------------------------- opt-in


@pytest.mark.parametrize(("variable", "option", "expected"), [
    (None, False, False), (None, True, True), ("1", False, True), ("on", False, True),
    ("0", True, False), ("false", True, False), ("maybe", True, True), ("maybe", False, False),
], ids=lambda v: repr(v))
def test_capture_is_opt_in_by_code_or_environment(monkeypatch: pytest.MonkeyPatch,
                                                  variable: str | None, option: bool,
                                                  expected: bool) -> None:
    if variable is not None:
        monkeypatch.setenv("AURUM_MIGRATION_BILLING_V2_CAPTURE", variable)
    assert capture_enabled("billing_v2", option) is expected


def test_an_invalid_name_is_never_captured() -> None:
    assert capture_enabled("Bad-Name", True) is False


def test_a_redacted_example_is_smaller_than_its_cap_and_says_so(sink: MemorySink) -> None:
    Capturer(sink, synchronous=True).record(_canary_example())
    assert size(sink.records[0]) <= DEFAULT_MAX_BYTES
    assert sink.records[0]["truncated"] is False
