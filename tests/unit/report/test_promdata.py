"""Figures from Prometheus range queries: the PromQL asked, the points kept, the gaps, the errors."""

from __future__ import annotations

import math
from typing import Any

import pytest

from aurum_otel.report.promdata import PrometheusRange, ReportSourceError, gather_prometheus
from tests.unit.report.helpers import T0, history


class Answer:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code, self.body = status, body

    def json(self) -> Any:
        return self.body


class FakeSession:
    """Answers a range query by which figure it asks for."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []

    def get(self, url: str, params: dict[str, str], timeout: float) -> Answer:
        self.queries.append(params)
        query = params["query"]
        t = float(params["start"])
        step = float(params["step"])
        if query.startswith("histogram_quantile(0.95"):
            result = [{"metric": {"aurum_migration_implementation": "legacy"},
                       "values": [[t, "10"], [t + step, "10"]]},
                      {"metric": {"aurum_migration_implementation": "simplified"},
                       "values": [[t, "15"]]}]
        elif query.startswith("sum by (aurum_migration_implementation) (rate(") and "/" not in query:
            result = [{"metric": {"aurum_migration_implementation": "legacy"},
                       "values": [[t, "4.5"]]}]
        else:
            result = []
        return Answer(200, {"status": "success", "data": {"resultType": "matrix", "result": result}})


def test_points_per_implementation_on_the_step_grid_with_gaps() -> None:
    session = FakeSession()
    client = PrometheusRange("http://127.0.0.1:9090", session=session)  # type: ignore[arg-type]
    [data] = gather_prometheus(["orders"], {"orders": history()}, start=T0, end=T0 + 100,
                               client=client)
    legacy_calls = dict(data.calls[0].points)
    assert legacy_calls[T0] == 4.5
    assert math.isnan(legacy_calls[T0 + 5])  # no sample: a gap, not zero
    ratio = dict(data.ratio[0].points)
    assert ratio[T0] == 1.5 and math.isnan(ratio[T0 + 5])
    assert [m.actor for m in data.markers] == ["alice", "controller", "controller"]
    asked = [q["query"] for q in session.queries]
    assert any('aurum_migration_role="authoritative"' in q and 'implementation="simplified"' in q
               for q in asked), "the observed split is not counted from served calls"
    assert all('aurum_migration_name="orders"' in q for q in asked)
    assert {q["step"] for q in session.queries} == {"5"}


def test_a_refused_query_says_what_prometheus_said() -> None:
    class Refusing(FakeSession):
        def get(self, url: str, params: dict[str, str], timeout: float) -> Answer:
            return Answer(400, {"status": "error", "error": "parse error at char 3"})

    client = PrometheusRange("http://127.0.0.1:9090", session=Refusing())  # type: ignore[arg-type]
    with pytest.raises(ReportSourceError, match="refused a range query .*parse error at char 3"):
        gather_prometheus(["orders"], {}, start=T0, end=T0 + 60, client=client)


def test_an_unreachable_prometheus_says_how_to_fix_it() -> None:
    client = PrometheusRange("http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(ReportSourceError, match="cannot read Prometheus at http://127.0.0.1:9 .*"
                                                "--source file"):
        gather_prometheus(["orders"], {}, start=T0, end=T0 + 60, client=client)
