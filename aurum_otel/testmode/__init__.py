"""Test mode: run a test suite in a migration phase, with every hybrid call shadowed and compared.

What the pytest plugin (:mod:`aurum_otel.pytest_plugin`) is made of, usable without pytest too:

- :mod:`~aurum_otel.testmode.pins`: the phases a test can run in and the in-memory store that pins
  them, for every migration or for the ones named;
- :mod:`~aurum_otel.testmode.run`: one run in a phase (the registry configured for it, shadows run
  inline, the comparisons read back from the shadow spans and judged).
"""

from aurum_otel.testmode.pins import PinnedStore, RunPhase, parse_phases
from aurum_otel.testmode.run import AurumShadowWarning, Finding, PhaseRun

__all__ = ["AurumShadowWarning", "Finding", "PhaseRun", "PinnedStore", "RunPhase", "parse_phases"]
