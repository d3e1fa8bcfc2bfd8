"""mismatch_log: mismatch log lines are rate-limited per migration, with a summary of the rest."""

from __future__ import annotations

import logging

import pytest

from aurum_otel.compare import deep_compare
from aurum_otel.hooks import MismatchReport
from aurum_otel.mismatch_log import MismatchLog
from aurum_otel.phase import Comparison, Implementation, Phase


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Lines:
    """The lines written so far (caplog.messages is a fresh list at each read)."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def __call__(self) -> list[str]:
        return self.caplog.messages


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Lines:
    caplog.set_level(logging.INFO, logger="test.mismatch")
    return Lines(caplog)


def make(clock: Clock, burst: int = 3, interval: float = 60.0) -> MismatchLog:
    return MismatchLog(logging.getLogger("test.mismatch"), burst=burst, interval=interval,
                       clock=clock)


def test_twenty_mismatches_give_a_burst_then_one_summary(lines: Lines) -> None:
    clock = Clock()
    log = make(clock)
    result = deep_compare({"a": 1}, {"a": 2})
    written = [log.warn("settings", result) for _ in range(20)]
    assert written == [True] * 3 + [False] * 17
    assert len(lines()) == 3
    assert all(line.startswith("settings: mismatch; a: int#") for line in lines())
    clock.now += 20.0  # a third of the interval: one token back
    assert log.warn("settings", result)
    assert lines()[3] == ("settings: suppressed 17 mismatch log lines in the last 20s (at most 3 "
                          "per 60s per migration; the comparisons metric counts them all)")
    assert lines()[4].startswith("settings: mismatch")
    assert not log.warn("settings", result)  # that token is spent again


def test_each_migration_has_its_own_bucket(lines: Lines) -> None:
    log = make(Clock(), burst=1)
    assert log.emit("a", "a 1") and not log.emit("a", "a 2")
    assert log.emit("b", "b 1")
    assert lines() == ["a 1", "b 1"]


def test_the_bucket_refills_no_higher_than_its_burst(lines: Lines) -> None:
    clock = Clock()
    log = make(clock, burst=2, interval=10.0)
    clock.now += 1000.0
    assert [log.emit("m", str(i)) for i in range(4)] == [True, True, False, False]
    clock.now += 4.9  # 0.98 of a token
    assert not log.emit("m", "x")
    clock.now += 0.2
    assert log.emit("m", "y")
    assert lines()[-2:] == ["m: suppressed 3 mismatch log lines in the last 5s (at most 2 per 10s "
                            "per migration; the comparisons metric counts them all)", "y"]


def test_flush_writes_pending_summaries_once(lines: Lines) -> None:
    clock = Clock()
    log = make(clock, burst=1)
    log.emit("m", "first")
    log.emit("m", "second")
    clock.now += 2.0
    log.flush()
    log.flush()
    assert lines() == ["first", "m: suppressed 1 mismatch log line in the last 2s (at most 1 per "
                                "60s per migration; the comparisons metric counts them all)"]


def test_lines_below_the_loggers_level_take_no_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="test.mismatch")
    log = make(Clock(), burst=1)
    assert not log.emit("m", "an error run", level=logging.INFO)
    assert log.emit("m", "a mismatch")
    assert caplog.messages == ["a mismatch"]


def test_report_logs_mismatches_at_warning_and_other_results_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="test.mismatch")
    log = make(Clock())
    for result in (Comparison.MISMATCH, Comparison.TIMEOUT):
        log.report(MismatchReport(name="m", phase=Phase.HYBRID,
                                  authoritative=Implementation.LEGACY,
                                  shadow=Implementation.SIMPLIFIED, result=result,
                                  differences=("a: int != str",)))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "m: simplified shadow mismatch vs legacy; a: int != str"),
        (logging.INFO, "m: simplified shadow timeout vs legacy; a: int != str"),
    ]


def test_reset_forgets_the_buckets(lines: Lines) -> None:
    log = make(Clock(), burst=1)
    log.emit("m", "1")
    log.reset()
    assert log.emit("m", "2") and lines() == ["1", "2"]


@pytest.mark.parametrize(("burst", "interval"), [(0, 60.0), (1, 0.0)])
def test_a_bad_limit_is_refused_with_what_to_change(burst: int, interval: float) -> None:
    with pytest.raises(ValueError, match="burst >= 1 and interval > 0"):
        MismatchLog(burst=burst, interval=interval)


def test_suppression_after_a_flush_is_counted_afresh(lines: Lines) -> None:
    clock = Clock()
    log = make(clock, burst=1, interval=10.0)
    log.emit("m", "1")
    log.emit("m", "2")
    log.flush()
    log.emit("m", "3")  # suppressed again, counted from zero
    clock.now += 10.0
    assert log.emit("m", "4")
    assert lines()[-2:] == ["m: suppressed 1 mismatch log line in the last 10s (at most 1 per 10s "
                            "per migration; the comparisons metric counts them all)", "4"]


def test_reports_of_two_migrations_use_two_buckets(lines: Lines) -> None:
    log = make(Clock(), burst=1)
    for name in ("a", "b", "a"):
        log.report(MismatchReport(name=name, phase=Phase.HYBRID,
                                  authoritative=Implementation.LEGACY,
                                  shadow=Implementation.SIMPLIFIED, result=Comparison.MISMATCH))
    assert lines() == ["a: simplified shadow mismatch vs legacy",
                       "b: simplified shadow mismatch vs legacy"]
