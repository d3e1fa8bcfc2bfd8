#!/usr/bin/env bash
# A private, loopback-only redis-server for aurum-otel's fleet tests (the shared phase store).
#
#   scripts/redis.sh install  apt-get install redis-server if missing (its system service is never started)
#   scripts/redis.sh start    start our own instance on 127.0.0.1:16379 and wait until it answers PING
#   scripts/redis.sh stop     shut it down (SHUTDOWN NOSAVE, SIGKILL if it does not exit) and wait
#   scripts/redis.sh kill     SIGKILL it at once (a crash, for outage tests)
#   scripts/redis.sh status   exit 0 if running and answering, 3 if not running, 1 if running but not answering
#   scripts/redis.sh env      print `export AURUM_TEST_REDIS_URL=redis://127.0.0.1:16379/0` (eval "$(scripts/redis.sh env)")
#
# The instance keeps nothing on disk (--save '' --appendonly no), runs daemonized with its pid file and
# log under ~/.cache/aurum-otel/run/ (redis.pid, redis.log; override the root with AURUM_CACHE_DIR) and
# is not the Debian service (which, if enabled, would listen on 6379: we never start or touch it).
#
# Knobs: AURUM_TEST_REDIS_PORT (16379), AURUM_REDIS_START_TIMEOUT (20), AURUM_REDIS_STOP_TIMEOUT (20).
set -euo pipefail

CACHE_ROOT="${AURUM_CACHE_DIR:-$HOME/.cache/aurum-otel}"
RUN_DIR="$CACHE_ROOT/run"
DATA_DIR="$RUN_DIR/redis"
PID_FILE="$RUN_DIR/redis.pid"
LOG_FILE="$RUN_DIR/redis.log"
HOST=127.0.0.1
PORT="${AURUM_TEST_REDIS_PORT:-16379}"
START_TIMEOUT="${AURUM_REDIS_START_TIMEOUT:-20}"
STOP_TIMEOUT="${AURUM_REDIS_STOP_TIMEOUT:-20}"

log() { printf '[redis.sh] %s\n' "$*" >&2; }
die() { printf '[redis.sh] ERROR: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

cmd_install() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    return 0
  fi
  log "installing Debian's redis-server package"
  # Debian's package would start its own service on 6379: forbid service starts during the install.
  local policy=/usr/sbin/policy-rc.d created_policy=
  if [ ! -e "$policy" ]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy"
    created_policy=1
  fi
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server)
  local status=0
  as_root "${install[@]}" || { as_root apt-get update && as_root "${install[@]}"; } || status=$?
  [ -z "$created_policy" ] || as_root rm -f "$policy"
  [ "$status" -eq 0 ] || die "apt-get install redis-server failed"
  command -v redis-server >/dev/null || die "redis-server package installed but no redis-server binary"
}

# The pid of our instance, if it runs (the pid file outlives reboots: check the command line too).
server_pid() {
  local pid
  [ -f "$PID_FILE" ] || return 1
  pid="$(tr -dc '0-9' <"$PID_FILE")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "redis-server.*$HOST:$PORT"; then
    printf '%s' "$pid"
  else
    return 1
  fi
}

ping() { [ "$(redis-cli -h "$HOST" -p "$PORT" --no-auth-warning ping 2>/dev/null)" = PONG ]; }

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    ss -Htln "sport = :$PORT" | grep -q .
  else
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
  fi
}

cmd_start() {
  cmd_install
  if server_pid >/dev/null; then
    if ping; then
      log "already running (pid $(server_pid)) on redis://$HOST:$PORT"
      return 0
    fi
    die "a redis-server (pid $(server_pid)) exists but does not answer PING; run '$0 stop' first"
  fi
  port_in_use && die "port $PORT is already in use by another process (set AURUM_TEST_REDIS_PORT)"
  mkdir -p "$DATA_DIR"
  chmod 700 "$RUN_DIR" "$DATA_DIR" 2>/dev/null || true
  rm -f "$PID_FILE"
  : >"$LOG_FILE"
  redis-server --bind "$HOST" --port "$PORT" --protected-mode yes \
    --save '' --appendonly no --dir "$DATA_DIR" \
    --daemonize yes --pidfile "$PID_FILE" --logfile "$LOG_FILE" \
    || die "redis-server failed to start (log: $LOG_FILE)"
  local start=$SECONDS
  until ping; do
    if (( SECONDS - start >= START_TIMEOUT )); then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "redis-server did not answer PING within ${START_TIMEOUT}s"
    fi
    sleep 0.1
  done
  log "ready: redis://$HOST:$PORT/0 (pid $(server_pid), log $LOG_FILE)"
}

wait_exit() {
  local pid=$1 timeout=$2 start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    (( SECONDS - start >= timeout )) && return 1
    sleep 0.1
  done
}

cmd_stop() {
  local pid
  if ! pid="$(server_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping redis-server (pid $pid)"
  redis-cli -h "$HOST" -p "$PORT" shutdown nosave >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  if ! wait_exit "$pid" "$STOP_TIMEOUT"; then
    log "still running after ${STOP_TIMEOUT}s, killing"
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 5 || die "could not stop pid $pid"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_kill() {
  local pid
  if ! pid="$(server_pid)"; then
    log "not running"
    return 0
  fi
  kill -KILL "$pid" 2>/dev/null || true
  wait_exit "$pid" 5 || die "could not kill pid $pid"
  rm -f "$PID_FILE"
  log "killed (pid $pid)"
}

cmd_status() {
  local pid
  if ! pid="$(server_pid)"; then
    echo "redis: not running"
    return 3
  fi
  if ping; then
    echo "redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'): running, pid $pid, redis://$HOST:$PORT/0"
    return 0
  fi
  echo "redis: running, pid $pid, NOT answering on $HOST:$PORT"
  return 1
}

cmd_env() {
  printf 'export AURUM_TEST_REDIS_URL=%q\n' "redis://$HOST:$PORT/0"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 {install|start|stop|kill|status|env}" >&2
    exit 2
    ;;
esac
