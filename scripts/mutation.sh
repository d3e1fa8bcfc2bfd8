#!/usr/bin/env bash
# Mutation testing (mutmut 3) of the modules that hold aurum-otel's promises. Not part of
# `make test` nor of pytest's default run: it takes minutes per module.
#
# Usage: scripts/mutation.sh [MODULE...]      (default: every module below, in this order)
#   MODULES: router shadow stores control openfeature compare flags rules
#   MUTATION_JOBS=1        worker processes (default 1: the machine is shared)
#   MUTATION_DIR=.mutation where each module's scratch copy and mutmut's mutants/ live
#   MUTATION_WITHOUT_PROMISES=1  leave out tests/unit/test_promises_*.py (the score before them)
#   MUTATION_ONLY='glob'   run only the mutants whose name matches (fnmatch on mutmut's names,
#                          e.g. 'aurum_otel.router.x_decide*'); '*__mutmut_*[05]' is a fixed 20 %
#                          sample (the mutants numbered ...0 and ...5 of every function)
#
# Each module runs in its own scratch copy of aurum_otel/, tests/ and pyproject.toml (a consistent
# snapshot while others edit the tree), with [tool.mutmut] set to that module and its fast tests.
# The score table (killed/survived/timeout/...) is printed at the end and written to
# $MUTATION_DIR/scores.txt; the survivors of each module to $MUTATION_DIR/<module>/survivors.txt
# (`cd $MUTATION_DIR/<module> && ../../.venv/bin/mutmut show NAME` prints a survivor's diff).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

JOBS=${MUTATION_JOBS:-1}
OUT=${MUTATION_DIR:-.mutation}
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
mkdir -p "$OUT"
{ bash scripts/setup.sh test && bash scripts/setup.sh mutation; } >"$OUT/setup.log" 2>&1 \
    || { cat "$OUT/setup.log"; exit 1; }
PY="$ROOT/.venv/bin/python"
MUTMUT="$ROOT/.venv/bin/mutmut"

# module -> "files to mutate (globs)|tests to run (paths, -k ...)"
spec() {
    case "$1" in
        router) echo "aurum_otel/router.py|tests/unit/test_router.py tests/unit/test_promises_router.py" ;;
        shadow) echo "aurum_otel/shadow/*|tests/unit/shadow/test_shadow.py tests/unit/shadow/test_call_path.py tests/unit/shadow/test_caller_contract.py tests/unit/shadow/test_promises.py --deselect=tests/unit/shadow/test_call_path.py::test_the_guides_example_never_crashes_closing_its_client" ;;
        stores) echo "aurum_otel/stores/file.py aurum_otel/stores/files.py aurum_otel/stores/model.py aurum_otel/stores/url.py aurum_otel/store.py aurum_otel/_files.py|tests/unit/stores/test_file.py tests/unit/stores/test_files.py tests/unit/stores/test_url.py tests/unit/stores/test_file_records.py tests/unit/stores/test_promises.py" ;;
        control) echo "aurum_otel/control/*|tests/unit/test_control.py tests/unit/test_control_resume.py tests/unit/test_promises_control.py" ;;
        openfeature) echo "aurum_otel/stores/openfeature*.py|tests/unit/stores/test_openfeature.py tests/unit/stores/test_promises_openfeature.py" ;;
        compare) echo "aurum_otel/compare.py aurum_otel/redact.py aurum_otel/mismatch_log.py aurum_otel/database/errors.py|tests/unit/test_compare.py tests/unit/test_compare_properties.py tests/unit/test_compare_redact.py tests/unit/test_compare_mismatch_log.py tests/unit/database/test_errors.py tests/unit/database/test_base.py" ;;
        flags) echo "aurum_otel/flags.py|tests/unit/test_flags.py tests/unit/test_promises_flags.py" ;;
        rules) echo "aurum_otel/health/rules.py|tests/unit/test_health.py tests/unit/health" ;;
        *) echo "unknown module '$1': use one of router shadow stores control openfeature compare flags rules" >&2
           return 64 ;;
    esac
}

# Write the scratch copy's [tool.mutmut]: the module's files and tests only.
configure() {
    local dir=$1 mutate=$2 tests=$3
    "$PY" - "$dir/pyproject.toml" "$mutate" "$tests" <<'EOF'
import json, os, re, sys
from pathlib import Path

path, mutate, tests = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
tests = [t for t in tests if not t.startswith("tests/") or Path(path.parent, t).exists()]
if os.environ.get("MUTATION_WITHOUT_PROMISES"):  # the score before tests/unit/test_promises_*
    tests = [t for t in tests if "/test_promises_" not in t]
text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", path.read_text())
text += "\n[tool.mutmut]\n" + "\n".join([
    'source_paths = ["aurum_otel"]',
    f"only_mutate = {json.dumps(mutate)}",
    f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
    # an event loop's __del__ in a forked test process is not a finding of the tests
    'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", '
    '"-W", "default::pytest.PytestUnraisableExceptionWarning"]',
    "use_git_change_detection = false",
    # fork each mutant's run from a server that has only collected the tests: the main process
    # ran the suite (worker threads, locks) and is not safe to fork
    'process_isolation = "forkserver"',
]) + "\n"
path.write_text(text)
EOF
}

# Count each status in a finished scratch copy; list survivors.
score() {
    local module=$1 dir=$2
    (cd "$dir" && "$PY" - "$module" <<'EOF'
import json, sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

module = sys.argv[1]
counts: Counter[str] = Counter()
survivors = []
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        status = "not checked" if code is None else status_by_exit_code[code]
        counts[status] += 1
        if status in ("survived", "no tests"):
            survivors.append(f"{status}\t{name}")
Path("survivors.txt").write_text("".join(s + "\n" for s in survivors))
total = sum(counts.values())
dead = counts["killed"] + counts["timeout"]
tested = dead + counts["survived"] + counts["no tests"]
pct = 100 * dead / tested if tested else 0.0
shown = ("killed", "survived", "timeout", "no tests", "not checked")
others = sum(v for k, v in counts.items() if k not in shown)
print(f"{module:<12} {counts['killed']:>6} {counts['survived']:>8} {counts['timeout']:>7} "
      f"{counts['no tests']:>8} {others:>6} {counts['not checked']:>9} {total:>6} {pct:>6.1f}%")
EOF
    )
}

# Run mutmut in the current scratch copy: every mutant, or the sample MUTATION_ONLY names. A sample
# is run by name: mutmut first generates the mutants and maps tests to functions (that run stops,
# on purpose, at a pattern that matches no mutant), then tests only the named ones.
run_module() {
    if [ -z "${MUTATION_ONLY:-}" ]; then
        nice -n 10 "$MUTMUT" run --max-children "$JOBS" >mutmut.log 2>&1
        return
    fi
    nice -n 10 "$MUTMUT" run --max-children "$JOBS" 'aurum_otel.no-such-mutant*' >mutmut.log 2>&1 || true
    local names
    names=$("$PY" -c '
import fnmatch, json, sys
from pathlib import Path
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    for name in json.loads(meta.read_text())["exit_code_by_key"]:
        if fnmatch.fnmatch(name, sys.argv[1]):
            print(name)
' "$MUTATION_ONLY")
    [ -n "$names" ] || { echo "MUTATION_ONLY='$MUTATION_ONLY' matches no mutant" >>mutmut.log; return 1; }
    # shellcheck disable=SC2086  # one argument per name
    nice -n 10 "$MUTMUT" run --max-children "$JOBS" $names >>mutmut.log 2>&1
}

modules=("$@")
[ ${#modules[@]} -gt 0 ] || modules=(router shadow stores control openfeature compare flags rules)
for module in "${modules[@]}"; do spec "$module" >/dev/null; done

table=()
for module in "${modules[@]}"; do
    IFS='|' read -r mutate tests <<<"$(spec "$module")"
    dir="$OUT/$module"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -r aurum_otel tests pyproject.toml "$dir/"
    find "$dir" -name __pycache__ -prune -exec rm -rf {} +
    configure "$dir" "$mutate" "$tests"
    echo "== $module: mutating $mutate; tests: $tests"
    started=$(date +%s)
    (cd "$dir" && run_module) || { echo "mutmut failed for $module; see $dir/mutmut.log"; tail -5 "$dir/mutmut.log"; }
    table+=("$(score "$module" "$dir")  $(( $(date +%s) - started ))s")
done

{
    printf '%-12s %6s %8s %7s %8s %6s %9s %6s %7s  %s\n' module killed survived timeout "no tests" other unchecked \
        total score time
    printf '%s\n' "${table[@]}"
    echo "(score = (killed + timeout) / (killed + timeout + survived + no tests);"
    echo " other = segfault/suspicious/skipped; unchecked = outside MUTATION_ONLY's sample)"
} | tee "$OUT/scores.txt"
