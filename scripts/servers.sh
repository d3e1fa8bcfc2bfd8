#!/usr/bin/env bash
# Build, run and check the real telemetry servers used by aurum-otel's tests:
#
#   otelcol     OpenTelemetry Collector built with ocb from collector-config/builder-config.yaml
#   jaeger      Jaeger v2 built from its Go module
#   prometheus  Debian's prometheus package (prometheus + promtool)
#
# Usage: scripts/servers.sh build|start|stop NAME...   (NAME: otelcol jaeger prometheus all)
#        scripts/servers.sh status | env | validate
#
# Builds are cached under ~/.cache/aurum-otel/<name>-<version>/, so a warm `start`
# only launches the processes. Logs and pid files live in ~/.cache/aurum-otel/run/.
# Every server listens on 127.0.0.1 only; see collector-config/*.yaml for the ports.
set -euo pipefail

# ---------------------------------------------------------------- settings

# ocb version; must match the core component versions in builder-config.yaml.
OCB_VERSION=${AURUM_OCB_VERSION:-0.165.0}
# Jaeger v2 is published to the Go module proxy under its v1.x tag: the module
# path has no /v2 suffix, so proxy version v1.76.0 is the Jaeger v2.13.0 release.
JAEGER_MODULE_VERSION=${AURUM_JAEGER_MODULE_VERSION:-v1.76.0}
JAEGER_VERSION=${AURUM_JAEGER_VERSION:-v2.13.0}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG_DIR=$ROOT/collector-config
CACHE=${AURUM_OTEL_CACHE:-$HOME/.cache/aurum-otel}
RUN=$CACHE/run
START_TIMEOUT=${AURUM_OTEL_START_TIMEOUT:-60}
ALL_SERVERS=(otelcol jaeger prometheus)

# Builds share two cores with everything else on the machine; keep them modest.
export GOFLAGS=${GOFLAGS:--p=1}
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=$PATH:/usr/local/go/bin
fi

# ---------------------------------------------------------------- helpers

log() { printf '[servers] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

need_go() { command -v go >/dev/null || die "go not found (expected on PATH or /usr/local/go/bin)"; }

manifest_hash() { sha256sum "$CONFIG_DIR/builder-config.yaml" | cut -c1-12; }

otelcol_dir() { echo "$CACHE/otelcol-$OCB_VERSION-$(manifest_hash)"; }
otelcol_bin() { echo "$(otelcol_dir)/dist/aurum-otelcol"; }
ocb_bin() { echo "$CACHE/ocb-$OCB_VERSION/builder"; }
jaeger_dir() { echo "$CACHE/jaeger-$JAEGER_VERSION"; }
jaeger_bin() { echo "$(jaeger_dir)/jaeger"; }
prometheus_bin() { command -v prometheus || echo /usr/bin/prometheus; }
promtool_bin() { command -v promtool || echo /usr/bin/promtool; }

# URL that answers 2xx once the server is ready to take traffic.
ready_url() {
    case $1 in
        otelcol) echo http://127.0.0.1:13133/ ;;
        jaeger) echo http://127.0.0.1:16686/api/services ;;
        prometheus) echo http://127.0.0.1:9090/-/ready ;;
    esac
}

# Expand NAME arguments ("all" included) into a list of known servers.
servers_from_args() {
    [ $# -gt 0 ] || die "name a server: ${ALL_SERVERS[*]} or all"
    local name
    for name in "$@"; do
        case $name in
            all) printf '%s\n' "${ALL_SERVERS[@]}" ;;
            otelcol | jaeger | prometheus) echo "$name" ;;
            *) die "unknown server '$name' (expected: ${ALL_SERVERS[*]} all)" ;;
        esac
    done
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# ---------------------------------------------------------------- build

build_otelcol() {
    local dir bin ocb
    dir=$(otelcol_dir) bin=$(otelcol_bin) ocb=$(ocb_bin)
    if [ -x "$bin" ]; then
        log "otelcol: cached at $bin"
        return
    fi
    need_go
    if [ ! -x "$ocb" ]; then
        log "otelcol: installing ocb v$OCB_VERSION"
        GOBIN=$(dirname "$ocb") go install "go.opentelemetry.io/collector/cmd/builder@v$OCB_VERSION"
    fi
    log "otelcol: building into $dir (several minutes when cold)"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$CONFIG_DIR/builder-config.yaml" "$dir/builder-config.yaml"
    "$ocb" --config "$dir/builder-config.yaml" --output-path "$dir/dist"
    [ -x "$bin" ] || die "otelcol: ocb finished but $bin is missing"
    log "otelcol: built $bin"
}

# `go install github.com/jaegertracing/jaeger/cmd/jaeger@...` refuses to work
# because Jaeger's go.mod has replace directives. Instead generate a throwaway
# wrapper module that requires Jaeger as a tool, copies those replace
# directives, and builds the cmd/jaeger main package from it.
build_jaeger() {
    local dir bin src gomod
    dir=$(jaeger_dir) bin=$(jaeger_bin) src=$(jaeger_dir)/src
    if [ -x "$bin" ]; then
        log "jaeger: cached at $bin"
        return
    fi
    need_go
    log "jaeger: building $JAEGER_VERSION (module $JAEGER_MODULE_VERSION) into $dir (several minutes when cold)"
    rm -rf "$src"
    mkdir -p "$src"
    (
        cd "$src"
        go mod init aurum-otel/jaeger-build >/dev/null 2>&1
        gomod=$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION" |
            sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
        [ -f "$gomod" ] || die "jaeger: could not download github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION"
        {
            echo
            echo "// replace directives copied from Jaeger's own go.mod"
            echo "replace ("
            awk '/^replace \(/ { block = 1; next }
                 block && /^\)/ { block = 0; next }
                 block { print; next }
                 /^replace / { sub(/^replace /, ""); print "\t" $0 }' "$gomod"
            echo ")"
        } >>go.mod
        go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_MODULE_VERSION"
        local pkg=github.com/jaegertracing/jaeger/internal/version
        go build -o "$bin" \
            -ldflags "-s -w -X $pkg.latestVersion=$JAEGER_VERSION -X $pkg.date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
            github.com/jaegertracing/jaeger/cmd/jaeger
    )
    [ -x "$bin" ] || die "jaeger: build finished but $bin is missing"
    log "jaeger: built $bin"
}

build_prometheus() {
    if [ -x "$(prometheus_bin)" ] && [ -x "$(promtool_bin)" ]; then
        log "prometheus: installed at $(prometheus_bin)"
        return
    fi
    log "prometheus: installing Debian package"
    # Debian's package would start its own prometheus service on 0.0.0.0:9090;
    # forbid service starts during the install so only our instance ever runs.
    local policy=/usr/sbin/policy-rc.d created_policy=
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy"
        created_policy=1
    fi
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus)
    local status=0
    as_root "${install[@]}" || { as_root apt-get update && as_root "${install[@]}"; } || status=$?
    [ -z "$created_policy" ] || as_root rm -f "$policy"
    [ "$status" -eq 0 ] || die "prometheus: apt-get install failed"
    [ -x "$(prometheus_bin)" ] || die "prometheus: package installed but no prometheus binary"
}

# ---------------------------------------------------------------- run

pid_file() { echo "$RUN/$1.pid"; }
log_file() { echo "$RUN/$1.log"; }

running_pid() {
    local file pid
    file=$(pid_file "$1")
    [ -f "$file" ] || return 1
    pid=$(cat "$file")
    # The cache outlives reboots: make sure the pid is still our server (its
    # command line names our config directory), not a recycled pid.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$CONFIG_DIR/"; then
        echo "$pid"
    else
        rm -f "$file"
        return 1
    fi
}

is_ready() { curl -fsS -o /dev/null --max-time 2 "$(ready_url "$1")" 2>/dev/null; }

# Sets CMD to the command line that runs server $1.
server_command() {
    case $1 in
        otelcol) CMD=("$(otelcol_bin)" --config "$CONFIG_DIR/otelcol.yaml") ;;
        jaeger) CMD=("$(jaeger_bin)" --config "$CONFIG_DIR/jaeger.yaml") ;;
        prometheus)
            CMD=("$(prometheus_bin)"
                --config.file "$CONFIG_DIR/prometheus.yml"
                --web.listen-address 127.0.0.1:9090
                --web.enable-lifecycle
                # keeps the exemplars (trace ids) scraped from the collector's OpenMetrics
                # output: /api/v1/query_exemplars links a spike to its trace in Jaeger
                --enable-feature=exemplar-storage
                --storage.tsdb.path "$RUN/prometheus-data")
            ;;
    esac
}

start_server() {
    local name=$1 pid logf t0
    if pid=$(running_pid "$name"); then
        log "$name: already running (pid $pid)"
        return
    fi
    is_ready "$name" && die "$name: $(ready_url "$name") already answers but was not started by this script; stop that process first"
    "build_$name"
    mkdir -p "$RUN"
    logf=$(log_file "$name")
    # Prometheus state is disposable: begin each run with an empty TSDB.
    [ "$name" != prometheus ] || rm -rf "$RUN/prometheus-data"
    server_command "$name"
    t0=$(date +%s)
    nohup "${CMD[@]}" >"$logf" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$(pid_file "$name")"
    while ! is_ready "$name"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$(pid_file "$name")"
            log "$name: exited during startup; last lines of $logf:"
            tail -n 40 "$logf" >&2
            exit 1
        fi
        if [ $(($(date +%s) - t0)) -ge "$START_TIMEOUT" ]; then
            log "$name: not ready at $(ready_url "$name") after ${START_TIMEOUT}s; last lines of $logf:"
            tail -n 40 "$logf" >&2
            stop_server "$name"
            exit 1
        fi
        sleep 0.2
    done
    log "$name: ready in $(($(date +%s) - t0))s (pid $pid, log $logf)"
}

stop_server() {
    local name=$1 pid _
    if ! pid=$(running_pid "$name"); then
        log "$name: not running"
        return
    fi
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name: still alive after 10s, sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$(pid_file "$name")"
    log "$name: stopped (pid $pid)"
}

# ---------------------------------------------------------------- commands

cmd_status() {
    local name pid
    for name in "${ALL_SERVERS[@]}"; do
        if pid=$(running_pid "$name"); then
            if is_ready "$name"; then
                echo "$name: running, ready (pid $pid)"
            else
                echo "$name: running, NOT ready (pid $pid, log $(log_file "$name"))"
            fi
        else
            echo "$name: stopped"
        fi
    done
}

cmd_env() {
    cat <<EOF
export AURUM_OTEL_OTLP_GRPC_ENDPOINT=http://127.0.0.1:4317
export AURUM_OTEL_OTLP_HTTP_ENDPOINT=http://127.0.0.1:4318
export AURUM_OTEL_COLLECTOR_HEALTH_URL=http://127.0.0.1:13133/
export AURUM_OTEL_COLLECTOR_METRICS_URL=http://127.0.0.1:8889/metrics
export AURUM_OTEL_JAEGER_URL=http://127.0.0.1:16686
export AURUM_OTEL_PROMETHEUS_URL=http://127.0.0.1:9090
export AURUM_OTEL_CONFIG_DIR=$CONFIG_DIR
export AURUM_OTELCOL_BIN=$(otelcol_bin)
export AURUM_JAEGER_BIN=$(jaeger_bin)
export AURUM_PROMETHEUS_BIN=$(prometheus_bin)
export AURUM_PROMTOOL_BIN=$(promtool_bin)
EOF
}

cmd_validate() {
    build_otelcol
    build_prometheus
    "$(otelcol_bin)" validate --config "$CONFIG_DIR/otelcol.yaml"
    log "otelcol.yaml: valid"
    "$(promtool_bin)" check config "$CONFIG_DIR/prometheus.yml"
    # Jaeger takes ~20 minutes to build cold; check its config only once built.
    if [ -x "$(jaeger_bin)" ]; then
        "$(jaeger_bin)" validate --config "$CONFIG_DIR/jaeger.yaml"
        log "jaeger.yaml: valid"
    else
        log "jaeger.yaml: not checked (run '$0 build jaeger' first)"
    fi
}

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

main() {
    [ $# -gt 0 ] || usage 1
    local command=$1 name
    shift
    case $command in
        build) for name in $(servers_from_args "$@"); do "build_$name"; done ;;
        start) for name in $(servers_from_args "$@"); do start_server "$name"; done ;;
        stop) for name in $(servers_from_args "$@"); do stop_server "$name"; done ;;
        status) cmd_status ;;
        env) cmd_env ;;
        validate) cmd_validate ;;
        -h | --help | help) usage 0 ;;
        *) log "unknown command '$command'"; usage 1 ;;
    esac
}

main "$@"
