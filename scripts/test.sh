#!/usr/bin/env bash
# Set up and run every check and test of aurum-otel: the README's test command (`make test`).
#
#   1. a virtualenv in .venv with the package and its test extra;
#   2. the real servers (collector, Jaeger, Prometheus, Trino, Redis), built or fetched once and cached
#      under ~/.cache/aurum-otel, started on 127.0.0.1 and stopped again at the end;
#   3. ruff, mypy --strict, the collector/Prometheus config checks, then pytest (unit and
#      integration). pytest finding no test at all (exit 5) is a failure, never a success.
#
# AURUM_SKIP_SERVERS=1 runs only what needs no server (the integration tests then skip).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '\n[test] %s\n' "$*" >&2; }

bash scripts/setup.sh test
PY=$ROOT/.venv/bin/python
export PATH=$ROOT/.venv/bin:$PATH

started=()
cleanup() {
    if [ ${#started[@]} -gt 0 ]; then
        log "stopping servers: ${started[*]}"
        for name in "${started[@]}"; do
            if [ "$name" = trino ]; then bash scripts/trino.sh stop || true
            elif [ "$name" = redis ]; then bash scripts/redis.sh stop || true
            else bash scripts/servers.sh stop "$name" || true; fi
        done
    fi
}
trap cleanup EXIT

if [ "${AURUM_SKIP_SERVERS:-0}" != 1 ]; then
    log "building/fetching servers (cached under ~/.cache/aurum-otel)"
    bash scripts/servers.sh build all
    bash scripts/trino.sh fetch
    log "starting servers"
    for name in otelcol jaeger prometheus; do
        bash scripts/servers.sh start "$name"
        started+=("$name")
    done
    bash scripts/trino.sh start
    started+=(trino)
    bash scripts/redis.sh start
    started+=(redis)
    eval "$(bash scripts/servers.sh env)"
    eval "$(bash scripts/trino.sh env)"
    eval "$(bash scripts/redis.sh env)"
    export AURUM_TEST_TRINO_RESTART=1  # this run owns the Trino server: the restart test may stop it
    log "validating the shipped collector and Prometheus configuration"
    bash scripts/servers.sh validate
fi

log "ruff"
"$PY" -m ruff check aurum_otel tests examples $(test -d benchmarks && echo benchmarks)
log "mypy --strict"
"$PY" -m mypy
[ "${AURUM_SKIP_SERVERS:-0}" = 1 ] || bash scripts/browser.sh  # headless chromium for tests/integration/test_report_browser.py
log "pytest"
set +e
"$PY" -m pytest -ra "$@"
status=$?
set -e
if [ $status -eq 5 ]; then
    echo "[test] pytest collected no tests: that is a failure" >&2
    exit 1
fi
exit $status
