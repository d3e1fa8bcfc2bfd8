"""The test mode (``aurum_otel.pytest_plugin``), run on small suites with pytester.

Each suite is a real pytest run in this process; what is asserted is what a user sees: outcomes,
test ids, the failure text, warnings, and that nothing changes without ``--aurum-phases``.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]

PHASES = "--aurum-phases=legacy,hybrid,simplified"

# simplified answers the same total in another currency: a field-level difference.
DIFFERING = """
import pytest
from aurum_otel import migrated

@migrated("pricing")
def price(n):
    return {"total": n * 2, "currency": "EUR"}

@price.simplified
def _price_v2(n):
    return {"total": n * 2, "currency": "USD"}
"""

AGREEING = """
import pytest
from aurum_otel import migrated

@migrated("pricing")
def price(n):
    return {"total": n * 2, "currency": "EUR"}

@price.simplified
def _price_v2(n):
    return {"currency": "EUR", "total": n + n}
"""

TEST_PRICE = """
def test_price():
    assert price(2) == {"total": 4, "currency": "EUR"}
"""


def _suite(pytester: pytest.Pytester, *parts: str) -> None:
    pytester.makepyfile(test_suite="\n".join(parts))
    # hypothesis's own plugin costs seconds per run and has nothing to do here
    pytester.makeini("[pytest]\naddopts = -p no:hypothesispytest -p no:cacheprovider\n")


def test_without_the_option_each_test_runs_once_as_it_always_did(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, TEST_PRICE, """
from aurum_otel import get_registry, reset
from aurum_otel.shadow import InlineExecutor

def test_the_registry_is_the_libraries_own(monkeypatch):
    monkeypatch.setenv("AURUM_MIGRATION_PRICING_PHASE", "simplified")
    reset()  # the phase test_price resolved is cached for AURUM_REFRESH_INTERVAL
    assert price(2)["currency"] == "USD"   # the environment still pins
    assert not isinstance(get_registry().shadows, InlineExecutor)
""")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*::test_price PASSED*",
                                 "*::test_the_registry_is_the_libraries_own PASSED*"])
    result.stdout.no_fnmatch_line("*[[]aurum-*")


def test_a_differing_suite_fails_in_hybrid_and_simplified_only(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, TEST_PRICE)
    result = pytester.runpytest("-v", PHASES)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*::test_price?aurum-legacy? PASSED*",
        "*::test_price?aurum-hybrid? FAILED*",
        "*::test_price?aurum-simplified? FAILED*",
    ])
    # hybrid: legacy served the test (its assertion held); the shadow's difference failed it,
    # named by migration and field, without the values.
    hybrid = _failure_text(result, "test_price[aurum-hybrid]")
    assert "aurum-otel shadow comparisons in phase hybrid: 1 of 1 not a match" in hybrid
    assert "pricing" in hybrid and "currency" in hybrid and "mismatch" in hybrid
    assert "USD" not in hybrid and "EUR" not in hybrid


def test_an_agreeing_suite_passes_in_every_phase(pytester: pytest.Pytester) -> None:
    _suite(pytester, AGREEING, TEST_PRICE)
    result = pytester.runpytest("-v", "--aurum-phases=legacy,hybrid,hybrid-simplified,simplified")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*test_price?aurum-hybrid-simplified? PASSED*"])


def test_hybrid_shadows_every_call_before_it_returns(pytester: pytest.Pytester) -> None:
    _suite(pytester, AGREEING, """
from aurum_otel import migrated

calls = []

@migrated("tally")
def tally(n):
    calls.append(("legacy", n))
    return n

@tally.simplified
def _tally_v2(n):
    calls.append(("simplified", n))
    return n

def test_each_call_ran_both_before_returning(aurum_phase):
    for n in range(20):
        tally(n)
        assert calls[-2:] == [("legacy", n), ("simplified", n)]
    assert aurum_phase.phase == "hybrid"
""")
    result = pytester.runpytest("--aurum-phases=hybrid")
    result.assert_outcomes(passed=1)


def test_parametrized_tests_keep_their_ids_and_gain_the_phase(pytester: pytest.Pytester) -> None:
    _suite(pytester, AGREEING, """
@pytest.mark.parametrize("n", [1, 2])
def test_n(n):
    assert price(n)["total"] == 2 * n
""")
    result = pytester.runpytest("--collect-only", "-q", "--aurum-phases=legacy,simplified")
    result.stdout.fnmatch_lines([
        "*test_n?1-aurum-legacy?", "*test_n?1-aurum-simplified?",
        "*test_n?2-aurum-legacy?", "*test_n?2-aurum-simplified?",
    ])


def test_the_marker_runs_a_test_only_in_its_phase(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, """
@pytest.mark.aurum(phase="hybrid")
def test_only_hybrid():
    assert price(2) == {"total": 4, "currency": "EUR"}

@pytest.mark.aurum(phase="simplified")
def test_only_simplified():
    assert price(2)["currency"] == "USD"
""")
    result = pytester.runpytest("-v", "-rs", "--aurum-phases=legacy,hybrid")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines([
        "*::test_only_hybrid?aurum-hybrid? FAILED*",
        "SKIPPED*aurum phase simplified is not among --aurum-phases (legacy, hybrid)",
    ])
    result.stdout.no_fnmatch_line("*test_only_hybrid?aurum-legacy?*")


def test_the_marker_pins_its_phase_without_the_option(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, """
@pytest.mark.aurum(phase="simplified")
def test_served_by_simplified():
    assert price(2)["currency"] == "USD"

def test_untouched():
    assert price(2)["currency"] == "EUR"
""")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_served_by_simplified?aurum-simplified? PASSED*",
                                 "*::test_untouched PASSED*"])


def test_the_marker_pins_only_the_migrations_it_names(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, """
@migrated("tax")
def tax(n):
    return n // 5

@tax.simplified
def _tax_v2(n):
    return n // 5 + 1

@pytest.mark.aurum(migrations=["pricing"])
def test_pricing_only():
    assert tax(10) == 2       # tax is not pinned: legacy serves it, nothing shadows it
    price(2)
""")
    result = pytester.runpytest("-v", "--aurum-phases=legacy,hybrid")
    result.assert_outcomes(passed=1, failed=1)
    text = _failure_text(result, "test_pricing_only[aurum-hybrid]")
    assert "pricing: mismatch" in text and "tax:" not in text


def test_the_fixture_pins_a_phase_for_a_block(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, """
def test_block(aurum_phase):
    assert aurum_phase.phase is None            # no test mode around this test
    with aurum_phase("simplified") as phase:
        assert phase == "simplified" and aurum_phase.phase == "simplified"
        assert price(2)["currency"] == "USD"
    assert aurum_phase.phase is None
    assert price(2)["currency"] == "EUR"

def test_block_in_hybrid_fails_on_the_shadow(aurum_phase):
    with aurum_phase("hybrid", migrations=["pricing"]):
        assert price(2)["currency"] == "EUR"
""")
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    assert "currency" in _failure_text(result, "test_block_in_hybrid_fails_on_the_shadow")


def test_the_fixture_inside_a_phase_run_restores_that_phase(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, """
def test_block(aurum_phase):
    assert aurum_phase.phase == "simplified"
    with aurum_phase("legacy"):
        assert price(2)["currency"] == "EUR"
    assert price(2)["currency"] == "USD"
""")
    pytester.runpytest("--aurum-phases=simplified").assert_outcomes(passed=1)


def test_a_shadow_that_raises_is_a_mismatch_and_fails(pytester: pytest.Pytester) -> None:
    _suite(pytester, """
from aurum_otel import migrated

@migrated("pricing")
def price(n):
    return n

@price.simplified
def _price_v2(n):
    raise KeyError("boom")

def test_price():
    assert price(2) == 2
""")
    result = pytester.runpytest("--aurum-phases=hybrid")
    result.assert_outcomes(failed=1)
    assert "KeyError" in _failure_text(result, "test_price[aurum-hybrid]")


def test_a_comparator_error_fails_and_a_late_shadow_warns(pytester: pytest.Pytester) -> None:
    _suite(pytester, """
import time
from aurum_otel import migrated

def broken(a, b):
    raise RuntimeError("comparator bug")

@migrated("pricing", comparator=broken)
def price(n):
    return n

@price.simplified
def _price_v2(n):
    return n

@migrated("slow", shadow_timeout=0.02)
def slow(n):
    return n

@slow.simplified
def _slow_v2(n):
    time.sleep(0.06)
    return n

def test_comparator():
    assert price(2) == 2

def test_late():
    assert slow(2) == 2
""")
    result = pytester.runpytest("-v", "--aurum-phases=hybrid")
    result.assert_outcomes(passed=1, failed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*test_comparator?aurum-hybrid? FAILED*",
        "*test_late?aurum-hybrid? PASSED*",
        "*test_suite.py:*: AurumShadowWarning: aurum-otel: slow: timeout - simplified shadow*",
    ])
    comparator = _failure_text(result, "test_comparator[aurum-hybrid]")
    assert "pricing: error - simplified shadow" in comparator and "RuntimeError" in comparator
    strict = pytester.runpytest("-W", "error::aurum_otel.pytest_plugin.AurumShadowWarning",
                                "--aurum-phases=hybrid")
    strict.assert_outcomes(failed=2)


def test_the_phase_wins_over_the_developers_environment_and_leaves_it_as_it_was(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AURUM_MIGRATION_PRICING_ENABLED", "0")  # a kill switch in the shell
    _suite(pytester, DIFFERING, """
import os

def test_simplified_serves():
    assert price(2)["currency"] == "USD"
    assert "AURUM_MIGRATION_PRICING_ENABLED" not in os.environ
""")
    pytester.runpytest("--aurum-phases=simplified").assert_outcomes(passed=1)
    assert os.environ["AURUM_MIGRATION_PRICING_ENABLED"] == "0"


def test_a_test_that_failed_on_its_own_also_shows_the_mismatch(pytester: pytest.Pytester) -> None:
    _suite(pytester, DIFFERING, """
def test_fails_anyway():
    price(2)
    assert False, "own failure"
""")
    result = pytester.runpytest("--aurum-phases=hybrid")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*own failure*", "*aurum-otel shadow comparisons*", "*currency*"])


def test_bad_phases_and_markers_say_what_to_change(pytester: pytest.Pytester) -> None:
    _suite(pytester, AGREEING, TEST_PRICE, """
@pytest.mark.aurum(phase="hybird")
def test_typo():
    pass
""")
    result = pytester.runpytest("--aurum-phases=legacy,shadow")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aurum-phases*'shadow'*legacy, hybrid, hybrid-simplified,"
                                 " simplified*"])
    result = pytester.runpytest("--aurum-phases=legacy")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error, like a bad parametrize
    result.stdout.fnmatch_lines(["*test_typo: aurum(phase=...)='hybird' is not valid; allowed: "
                                 "legacy, hybrid, hybrid-simplified, simplified"])


def test_the_report_header_names_the_phases(pytester: pytest.Pytester) -> None:
    _suite(pytester, AGREEING, TEST_PRICE)
    result = pytester.runpytest(PHASES)
    result.stdout.fnmatch_lines(["aurum-otel test mode: legacy, hybrid, simplified*"])
    result = pytester.runpytest()
    result.stdout.no_fnmatch_line("*aurum-otel test mode*")


def _failure_text(result: pytest.RunResult, test_id: str) -> str:
    """The failure section of ``test_id`` in the run's output."""
    text = "\n".join(result.outlines)
    start = text.find(f"_ {test_id} _")
    assert start >= 0, f"no failure section for {test_id}"
    end = text.find("\n____", start + 1)
    following = text.find("short test summary", start)
    ends = [e for e in (end, following) if e >= 0]
    return text[start:min(ends)] if ends else text[start:]
