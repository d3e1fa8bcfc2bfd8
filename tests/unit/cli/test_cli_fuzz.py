"""Fuzz ``aurum-migrate``: any arguments, rules YAML, state and metrics file contents give only
the documented exit codes (0, 1, 2, 3, 64) and never a traceback."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aurum_otel import testing
from aurum_otel.cli import EXIT_CODES, cli

WORDS = st.sampled_from([
    "settings", "database", "databse", "billing", "", "hybrid", "simplified", "legacy", "sideways",
    "nan", "inf", "-inf", "-1", "0", "10", "150", "1e400", "30s", "garbage", "[/ops]", "[bold]",
    "a\nb", "café", "--json", "--new", "--step", "--once", "-o", "--help", "--percent",
    "--compare", "--fallback", "--no-fallback", "--reason", "--actor", "--window", "--bake",
    "--interval", "--for", "--rules", "--check", "--source", "file", "prometheus", "--max-ticks",
    "1", "--rollback-after", "RULES", "OUT", "\x00",
])
COMMANDS = ["status", "advance", "rollback", "history", "health", "watch", "monitor", "rules"]
JSONISH = st.one_of(
    st.sampled_from(["", "{", "[]", "null", "{}", "\x00\xff", '{"version": 1, "migrations": []}',
                     '{"settings_migration": 5}', '{"settings_migration": {"implementations": 3}}',
                     '{"migrations": {"settings": {"phase": "hybrid", "rollout": "x"}}}']),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["settings_migration", "migrations", "phase",
                                                   "implementations", "calls", "version", "x"]),
                                   inner, max_size=3),
                 max_leaves=8).map(repr),
)
YAMLISH = st.one_of(st.text(max_size=60), st.sampled_from([
    "window: .nan", "rules: [{error_rate: {max_rate: .inf}}]", "rules: [{latency: {quantile: 0.5}}]",
    "rules: [{any: []}]", "[" * 300, "min_samples: -1", "rules: {x: 1}", "window: 1e999",
]))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS), words=st.lists(WORDS, max_size=6), rules=YAMLISH,
       state=st.none() | JSONISH, metrics=st.none() | JSONISH)
def test_only_documented_exit_codes_and_never_a_traceback(
    command: str, words: list[str], rules: str, state: str | None, metrics: str | None
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "rules.yaml").write_text(rules, encoding="utf-8", errors="surrogatepass")
        if state is not None:
            (root / "migration_state.json").write_text(state)
        if metrics is not None:
            (root / "migration_metrics.json").write_text(metrics)
        args = [command, *(str(root / "rules.yaml") if w == "RULES" else
                           str(root / "out" / "r.yml") if w == "OUT" else w for w in words)]
        if command == "watch":  # bounded: one evaluation
            args += ["--max-ticks", "1", "--interval", "0.1"]
        if command == "monitor":  # bounded: one render
            args += ["--once"]
        testing.reset()
        with contextlib.chdir(root):  # `rules -o --interval` writes a file named "--interval"
            result = CliRunner().invoke(cli, args, env={
                "AURUM_STATE_DIR": str(root), "COLUMNS": "200",
                "AURUM_PROMETHEUS_URL": "http://127.0.0.1:9"})
        assert result.exit_code in EXIT_CODES, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, repr(result.exception))
        assert "Traceback" not in result.output, (args, result.output)
        assert "this is a bug in aurum-otel" not in result.stderr, (args, result.stderr)
        testing.reset()
