"""aurum-otel's pytest plugin: the test mode (entry point ``pytest11``: ``aurum``).

``pytest --aurum-phases=legacy,hybrid,simplified`` runs every collected test function once per
phase (``test_x[aurum-hybrid]``); in ``hybrid`` and ``hybrid-simplified`` every routed call is
shadowed and compared before it returns, and a mismatch fails the test with the field-level
differences (see :mod:`aurum_otel.testmode.run` for what fails and what warns).

``@pytest.mark.aurum(phase=..., migrations=[...])`` runs a test only in that phase (or phases) and
pins only the migrations named; the ``aurum_phase`` fixture pins a phase for a block.

Without ``--aurum-phases``, a test that neither carries the marker nor asks for the fixture runs
exactly as it would without the plugin: nothing is parametrized, configured or read.
The phase is pinned for the test function's body (its fixtures have been set up before, and are
torn down after, in whatever phase the process would otherwise be in).
"""

from __future__ import annotations

import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import pytest

from aurum_otel.errors import ConfigurationError
from aurum_otel.testmode import AurumShadowWarning, PhaseRun, RunPhase, parse_phases
from aurum_otel.testmode.pins import check_migrations
from aurum_otel.testmode.run import report

__all__ = ["AurumPhase", "AurumShadowWarning", "aurum_phase"]

PARAM = "_aurum_run_phase"
_PHASES = pytest.StashKey[tuple[RunPhase, ...]]()
_RUN = pytest.StashKey[PhaseRun]()
MARKER = ("aurum(phase=None, migrations=None): run this test only in the given phase (or list of "
          "phases), pinning only the migrations named (default: every migration); see "
          "aurum_otel.pytest_plugin")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aurum-otel", "aurum-otel test mode")
    group.addoption(
        "--aurum-phases", dest="aurum_phases", default=None, metavar="PHASES",
        help="run each test once per phase, comma-separated: legacy, hybrid (legacy serves, "
             "simplified shadows every call), hybrid-simplified (simplified serves, legacy "
             "shadows), simplified. A shadow mismatch fails the test.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    raw = config.getoption("aurum_phases")
    if raw is not None:
        try:
            config.stash[_PHASES] = parse_phases(raw)
        except ConfigurationError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_report_header(config: pytest.Config) -> str | None:
    phases = config.stash.get(_PHASES, None)
    if phases is None:
        return None
    return (f"aurum-otel test mode: {', '.join(p.value for p in phases)} "
            "(each test once per phase; shadows compared inline)")


@pytest.hookimpl(trylast=True)  # after @pytest.mark.parametrize: test_x[1-aurum-hybrid]
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    selected = metafunc.config.stash.get(_PHASES, None)
    marker = metafunc.definition.get_closest_marker("aurum")
    wanted = _marker_phases(marker, metafunc.definition.nodeid)
    if wanted is None:
        if selected is None:
            return  # no test mode for this test
        wanted = selected
    elif selected is not None:
        kept = tuple(p for p in selected if p in wanted)
        if not kept:
            among = ", ".join(p.value for p in selected)
            reason = (f"aurum phase {', '.join(p.value for p in wanted)} is not among "
                      f"--aurum-phases ({among})")
            metafunc.fixturenames.append(PARAM)
            metafunc.parametrize(PARAM, [pytest.param(wanted[0], marks=pytest.mark.skip(reason))],
                                 ids=[f"aurum-{wanted[0].value}"])
            return
        wanted = kept
    metafunc.fixturenames.append(PARAM)
    metafunc.parametrize(PARAM, list(wanted), ids=[f"aurum-{p.value}" for p in wanted])


def _marker_phases(marker: pytest.Mark | None, where: str) -> tuple[RunPhase, ...] | None:
    if marker is None:
        return None
    unknown = set(marker.kwargs) - {"phase", "migrations"}
    if marker.args or unknown:
        pytest.fail(f"{where}: aurum(phase=..., migrations=[...]) takes only those two keywords, "
                    f"not {sorted(unknown) or list(marker.args)}", pytrace=False)
    phase = marker.kwargs.get("phase")
    try:
        _migrations(marker)
        if phase is None:
            return None
        given = [phase] if isinstance(phase, str | RunPhase) else list(phase)
        return tuple(dict.fromkeys(RunPhase.parse(p, variable="aurum(phase=...)") for p in given))
    except ConfigurationError as exc:
        pytest.fail(f"{where}: {exc}", pytrace=False)


def _migrations(marker: pytest.Mark | None) -> frozenset[str] | None:
    if marker is None:
        return None
    return check_migrations(marker.kwargs.get("migrations"), variable="aurum(migrations=...)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    callspec = getattr(item, "callspec", None)
    phase = callspec.params.get(PARAM) if callspec is not None else None
    if not isinstance(phase, RunPhase):
        return (yield)
    run = PhaseRun(phase, _migrations(item.get_closest_marker("aurum")))
    with _started(item, run):
        try:
            outcome = yield
        except BaseException:
            _judge(item, run, failed=True)
            raise
        _judge(item, run, failed=False)
        return outcome


@contextmanager
def _started(item: pytest.Item, run: PhaseRun) -> Iterator[PhaseRun]:
    environ = pytest.MonkeyPatch()
    item.stash[_RUN] = run
    try:
        run.start(environ)
        yield run
    finally:
        del item.stash[_RUN]
        run.stop()
        environ.undo()


def _judge(item: pytest.Item, run: PhaseRun, *, failed: bool) -> None:
    """Fail the test on a mismatch; warn when a shadow verified nothing."""
    findings = run.findings()
    for finding in findings:
        if finding.warns:
            path, line, _ = item.reportinfo()  # shown at the test, not at this plugin
            warnings.warn_explicit(AurumShadowWarning(f"aurum-otel: {finding.line()}"),
                                   AurumShadowWarning, str(path), (line or 0) + 1)
    if not any(f.fails for f in findings):
        return
    text = report(findings, run.phase)
    if failed:  # the test's own failure comes first; the comparisons are shown beside it
        item.add_report_section("call", "aurum-otel shadow comparisons", text)
        return
    pytest.fail(text, pytrace=False)


class AurumPhase:
    """The ``aurum_phase`` fixture: the phase this test runs in, and a way to pin another.

    ``aurum_phase.phase`` is the phase in force (``None`` outside test mode);
    ``with aurum_phase("simplified", migrations=["settings"]):`` pins a phase for the block
    (every migration unless ``migrations`` names some). Inside a test mode run the block's
    comparisons are judged with the test's; outside one, when the block ends.
    """

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    @property
    def phase(self) -> str | None:
        run = self._item.stash.get(_RUN, None)
        return run.phase.value if run is not None else None

    @contextmanager
    def __call__(self, phase: str, migrations: list[str] | None = None) -> Iterator[str]:
        try:
            wanted = RunPhase.parse(phase, variable="aurum_phase(phase)")
            names = check_migrations(migrations, variable="aurum_phase(migrations=...)")
        except ConfigurationError as exc:
            raise pytest.UsageError(str(exc)) from None
        run = self._item.stash.get(_RUN, None)
        if run is not None:
            with run.pinned(wanted, names):
                yield wanted.value
            return
        run = PhaseRun(wanted, names)
        with _started(self._item, run):
            yield wanted.value
            _judge(self._item, run, failed=False)


@pytest.fixture
def aurum_phase(request: pytest.FixtureRequest) -> AurumPhase:
    """Pin a migration phase inside a test: ``with aurum_phase("hybrid"): ...``."""
    return AurumPhase(request.node)
