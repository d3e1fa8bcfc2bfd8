"""Traces from Jaeger's JSON: the call and its shadow side by side on one time axis."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aurum_otel.report.jaeger import JaegerClient, choose_traces, parse_trace
from aurum_otel.report.promdata import ReportSourceError
from aurum_otel.report.traceview import split_call, trace_section


def tag(key: str, value: Any) -> dict[str, Any]:
    return {"key": key, "type": "string", "value": value}


def span(span_id: str, name: str, start: int, duration: int, parent: str | None = None,
         **tags: Any) -> dict[str, Any]:
    return {"traceID": "t1", "spanID": span_id, "operationName": name, "startTime": start,
            "duration": duration, "processID": "p1",
            "references": [{"refType": "CHILD_OF", "traceID": "t1", "spanID": parent}] if parent else [],
            "tags": [tag(k.replace("_", "."), v) for k, v in tags.items()]}


TRACE = {"traceID": "t1", "processes": {"p1": {"serviceName": "shop"}}, "spans": [
    span("a", "migrate orders", 1_000, 2_000, aurum_migration_implementation="legacy"),
    span("b", "SELECT orders", 1_100, 1_500, "a"),
    span("c", "shadow orders", 3_200, 800, "a", aurum_migration_implementation="simplified",
         aurum_migration_comparison="mismatch",
         aurum_migration_differences="$.total: 10 != 11; $.items[0]: missing"),
    span("d", "SELECT orders v2", 3_300, 500, "c"),
]}


def test_the_call_and_its_shadow_are_split_with_their_children() -> None:
    trace = parse_trace(TRACE, "latest mismatch")
    call, shadow = split_call(trace)
    assert (call and call.name, shadow and shadow.name) == ("migrate orders", "shadow orders")
    html = trace_section(trace, jaeger_ui="http://127.0.0.1:16686")
    left, right = html.split('class="trace-side shadow"')
    assert 'data-name="SELECT orders"' in left and 'data-name="shadow orders"' not in left
    assert 'data-name="shadow orders"' in right and 'data-name="SELECT orders v2"' in right
    assert "authoritative: legacy" in left and "shadow: simplified" in right
    assert "<li><code>$.total: 10 != 11</code></li><li><code>$.items[0]: missing</code></li>" in html
    assert 'href="http://127.0.0.1:16686/trace/t1"' in html


def test_both_sides_share_one_time_axis() -> None:
    html = trace_section(parse_trace(TRACE))
    # the trace runs 1000..4000 us (3 ms); the shadow starts 2.2 ms in: its bar starts at
    # 2.2/3 of the drawable width on the right, where the call's bar starts at 0 on the left
    import re
    bars = dict(re.findall(r'data-name="([^"]+)"><title>.*?</title><text.*?</text><rect x="([\d.]+)"', html))
    assert float(bars["migrate orders"]) == 200.0
    assert float(bars["shadow orders"]) == pytest.approx(200 + 2.2 / 3 * 384, abs=0.1)


def test_a_call_without_a_shadow_says_so() -> None:
    trace = parse_trace({**TRACE, "spans": TRACE["spans"][:2]})
    assert "no shadow ran on this call" in trace_section(trace)


class FakeSession:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, dict[str, Any]]] = []

    def get(self, url: str, params: dict[str, Any] | None = None, timeout: float = 0) -> Any:
        self.asked.append((url, dict(params or {})))
        path = url.split("16686", 1)[1]
        key = path + ("?" + params["operation"] if params and "operation" in params else "")
        body = self.answers.get(key)
        return FakeResponse(404 if body is None else 200, body)


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self._body = status, body
        self.text = json.dumps(body)

    def json(self) -> Any:
        return self._body


def test_choose_mismatches_first_then_slowest_without_duplicates() -> None:
    slow = {**TRACE, "traceID": "t2", "spans": [
        {**span("x", "migrate orders", 0, 9_000), "traceID": "t2"}]}
    session = FakeSession({"/api/services": {"data": ["shop", "jaeger"]},
                           "/api/traces?shadow orders": {"data": [TRACE]},
                           "/api/traces?migrate orders": {"data": [TRACE, slow]}})
    client = JaegerClient("http://127.0.0.1:16686", session=session)  # type: ignore[arg-type]
    chosen = choose_traces(client, "orders", mismatches=1, slowest=1)
    assert [(t.trace_id, t.why) for t in chosen] == [("t1", "latest mismatch"), ("t2", "slowest")]
    shadow_query = next(p for u, p in session.asked if p.get("operation") == "shadow orders")
    assert json.loads(shadow_query["tags"]) == {"aurum.migration.comparison": "mismatch"}
    assert all(p.get("service") != "jaeger" for _, p in session.asked)


def test_an_unknown_trace_id_says_what_to_check() -> None:
    client = JaegerClient("http://127.0.0.1:16686", session=FakeSession({}))  # type: ignore[arg-type]
    with pytest.raises(ReportSourceError, match="has no trace 'abc'; check the id"):
        client.trace("abc")
