#!/usr/bin/env bash
# Local, loopback-only Trino server for aurum-otel integration tests.
#
#   scripts/trino.sh fetch    download + verify + unpack Trino from Maven Central (cached, idempotent)
#   scripts/trino.sh start    write config into the run dir, start the server, wait until it answers SELECT 1
#   scripts/trino.sh stop     stop the server and wait for it to exit
#   scripts/trino.sh status   exit 0 if the server is running and answering, 3 if not running
#   scripts/trino.sh env      print the `export AURUM_TEST_TRINO_*=...` lines for tests (eval "$(scripts/trino.sh env)")
#
# Layout (override the root with AURUM_CACHE_DIR):
#   ~/.cache/aurum-otel/trino-<version>/        immutable install: bin/ lib/ plugin/{memory,tpch,password-authenticators,...}
#   ~/.cache/aurum-otel/run/trino/              generated state: etc/, tls/ (CA + server PEM), password.db, shared secret
#   ~/.cache/aurum-otel/run/trino-data/         Trino node.data-dir: var/log/server.log, var/run/launcher.pid
#
# Listeners (both bound to 127.0.0.1 only):
#   http://127.0.0.1:18080   no authentication; any user name via X-Trino-User
#   https://127.0.0.1:18443  password authentication (file authenticator, bcrypt), user "aurum"
#
# Trino 476 (the newest trino-server-core on Maven Central) is built for Java 24; it runs unchanged on the
# Temurin 25 JDK used here. Startup on a 2-core box is 30-50 s, so the JVM runs C1-only by default
# (AURUM_TRINO_FULL_JIT=1 restores C2) and can optionally use a JDK 25 AOT cache (AURUM_TRINO_AOT=1: the first
# start records it and the following stop writes it, ~140 MB and ~40 s extra once; later starts are ~25% faster).
#
# Knobs: AURUM_TRINO_VERSION, AURUM_TRINO_JAVA_HOME, AURUM_CACHE_DIR, AURUM_MAVEN_REPO, AURUM_TRINO_HEAP (2G),
#   AURUM_TRINO_START_TIMEOUT (180), AURUM_TRINO_STOP_TIMEOUT (60), AURUM_TRINO_JVM_OPTS (extra JVM flags),
#   AURUM_TEST_TRINO_PORT (18080), AURUM_TEST_TRINO_HTTPS_PORT (18443), AURUM_TEST_TRINO_USER (aurum),
#   AURUM_TEST_TRINO_PASSWORD (canary-s3cr3t-pw; applied to password.db on every start).
set -euo pipefail

TRINO_VERSION="${AURUM_TRINO_VERSION:-476}"
MAVEN_REPO="${AURUM_MAVEN_REPO:-https://repo.maven.apache.org/maven2}"
TRINO_JAVA_HOME="${AURUM_TRINO_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
CACHE_ROOT="${AURUM_CACHE_DIR:-$HOME/.cache/aurum-otel}"
INSTALL_DIR="$CACHE_ROOT/trino-$TRINO_VERSION"
RUN_DIR="$CACHE_ROOT/run/trino"
DATA_DIR="$CACHE_ROOT/run/trino-data"
ETC_DIR="$RUN_DIR/etc"
TLS_DIR="$RUN_DIR/tls"

TRINO_HOST=127.0.0.1
HTTP_PORT="${AURUM_TEST_TRINO_PORT:-18080}"
HTTPS_PORT="${AURUM_TEST_TRINO_HTTPS_PORT:-18443}"
TRINO_USER="${AURUM_TEST_TRINO_USER:-aurum}"
TRINO_PASSWORD="${AURUM_TEST_TRINO_PASSWORD:-canary-s3cr3t-pw}"
TRINO_HEAP="${AURUM_TRINO_HEAP:-2G}"
START_TIMEOUT="${AURUM_TRINO_START_TIMEOUT:-180}"
STOP_TIMEOUT="${AURUM_TRINO_STOP_TIMEOUT:-60}"
# AOT caches are only valid for the exact JDK build, so key the file by it.
JDK_BUILD="$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$TRINO_JAVA_HOME/release" 2>/dev/null || true)"
AOT_FILE="$CACHE_ROOT/trino-$TRINO_VERSION-jdk${JDK_BUILD:-unknown}.aot"

# Coordinates on Maven Central. trino-server-core (packaging "provisio", file type tar.gz) already contains
# plugin/password-authenticators; memory and tpch are separate plugin zips.
# The .sha1 published next to each artifact is always checked (Central has no .sha256 for these); for the
# default version the SHA-1 and SHA-256 are also pinned here, so a tampered mirror/proxy is caught.
declare -A PINNED_SHA1=(
  [trino-server-core-476.tar.gz]=6bae2db438f8e6a2a8d9c8b566bb5e5b05870138
  [trino-memory-476.zip]=ed0e99bd6eb31739867bb8da1d16aeb8ca7a83c1
  [trino-tpch-476.zip]=ab0b7644e855d8291cbec4e94b8985d66fa50254
)
declare -A PINNED_SHA256=(
  [trino-server-core-476.tar.gz]=0f388f9967c177ae70a47c099082fc95387f0c3cb96d8000d1d41fc3a5223158
  [trino-memory-476.zip]=bade81c52e2f7177a7b867aee1b10fae48fefda9c38f3ec6aeb006fdde5f0378
  [trino-tpch-476.zip]=d83467efe864b1e77013208c293835e197bc3135318c2895521c1efbb7f232bd
)
PLUGINS=(memory tpch)

log() { printf '[trino.sh] %s\n' "$*" >&2; }
die() { printf '[trino.sh] ERROR: %s\n' "$*" >&2; exit 1; }

java_bin() { printf '%s/bin/java' "$TRINO_JAVA_HOME"; }

check_java() {
  [[ -x "$(java_bin)" ]] || die "Temurin JDK not found at $TRINO_JAVA_HOME (set AURUM_TRINO_JAVA_HOME)"
  local major
  major="$("$(java_bin)" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  [[ "$major" =~ ^[0-9]+$ && "$major" -ge 24 ]] || die "Trino $TRINO_VERSION needs Java >= 24, $TRINO_JAVA_HOME is '$major'"
}

sha1_of() { sha1sum "$1" | awk '{print $1}'; }

# download <url> <dest>: curl the artifact and its .sha1, verify, move into place.
download_verified() {
  local url="$1" dest="$2" name expected published actual sha256
  name="$(basename "$dest")"
  log "downloading $url"
  curl -fsSL --retry 3 --retry-delay 2 --connect-timeout 20 -o "$dest.part" "$url" \
    || die "download failed: $url"
  published="$(curl -fsSL --retry 3 --connect-timeout 20 "$url.sha1" | awk '{print $1}' | tr 'A-F' 'a-f')" \
    || die "could not fetch checksum: $url.sha1"
  [[ "$published" =~ ^[0-9a-f]{40}$ ]] || die "malformed checksum in $url.sha1: '$published'"
  expected="${PINNED_SHA1[$name]:-$published}"
  [[ "$expected" == "$published" ]] || die "$url.sha1 ($published) does not match the pinned SHA-1 ($expected)"
  actual="$(sha1_of "$dest.part")"
  if [[ "$actual" != "$expected" ]]; then
    rm -f "$dest.part"
    die "SHA-1 mismatch for $name: got $actual, expected $expected"
  fi
  sha256="$(sha256sum "$dest.part" | awk '{print $1}')"
  if [[ -n "${PINNED_SHA256[$name]:-}" && "$sha256" != "${PINNED_SHA256[$name]}" ]]; then
    rm -f "$dest.part"
    die "SHA-256 mismatch for $name: got $sha256, expected ${PINNED_SHA256[$name]}"
  fi
  mv "$dest.part" "$dest"
  log "verified $name sha1=$actual sha256=$sha256"
}

unzip_to() {
  local zip="$1" dest="$2"
  if command -v unzip >/dev/null 2>&1; then
    unzip -q "$zip" -d "$dest"
  else
    python3 -m zipfile -e "$zip" "$dest"
  fi
}

installed() { [[ -f "$INSTALL_DIR/.aurum-complete" && -x "$INSTALL_DIR/bin/launcher" ]]; }

cmd_fetch() {
  if installed; then
    log "Trino $TRINO_VERSION already installed at $INSTALL_DIR"
    return 0
  fi
  command -v curl >/dev/null || die "curl is required"
  mkdir -p "$CACHE_ROOT"
  # Serialise concurrent fetches (parallel test sessions) on the same cache.
  exec 9>"$CACHE_ROOT/.trino-$TRINO_VERSION.lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if installed; then
    log "Trino $TRINO_VERSION installed by a concurrent fetch at $INSTALL_DIR"
    return 0
  fi

  local tmp g="$MAVEN_REPO/io/trino"
  tmp="$(mktemp -d "$CACHE_ROOT/.trino-$TRINO_VERSION.tmp.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT

  local core="trino-server-core-$TRINO_VERSION.tar.gz"
  download_verified "$g/trino-server-core/$TRINO_VERSION/$core" "$tmp/$core"
  local p
  for p in "${PLUGINS[@]}"; do
    download_verified "$g/trino-$p/$TRINO_VERSION/trino-$p-$TRINO_VERSION.zip" "$tmp/trino-$p-$TRINO_VERSION.zip"
  done

  log "unpacking into $INSTALL_DIR"
  mkdir -p "$tmp/unpack"
  tar -xzf "$tmp/$core" -C "$tmp/unpack"
  local root="$tmp/unpack/trino-server-core-$TRINO_VERSION"
  [[ -x "$root/bin/launcher" ]] || die "unexpected layout in $core (no bin/launcher)"
  [[ -d "$root/plugin/password-authenticators" ]] || die "$core has no plugin/password-authenticators"
  for p in "${PLUGINS[@]}"; do
    mkdir -p "$tmp/zip-$p"
    unzip_to "$tmp/trino-$p-$TRINO_VERSION.zip" "$tmp/zip-$p"
    [[ -d "$tmp/zip-$p/trino-$p-$TRINO_VERSION" ]] || die "unexpected layout in trino-$p-$TRINO_VERSION.zip"
    rm -rf "${root:?}/plugin/$p"
    mv "$tmp/zip-$p/trino-$p-$TRINO_VERSION" "$root/plugin/$p"
  done
  {
    echo "version=$TRINO_VERSION"
    echo "io.trino:trino-server-core:tar.gz:$TRINO_VERSION sha1=$(sha1_of "$tmp/$core")"
    for p in "${PLUGINS[@]}"; do
      echo "io.trino:trino-$p:zip:$TRINO_VERSION sha1=$(sha1_of "$tmp/trino-$p-$TRINO_VERSION.zip")"
    done
  } >"$root/.aurum-complete"
  rm -rf "$INSTALL_DIR"
  mv "$root" "$INSTALL_DIR"
  rm -rf "$tmp"
  trap - EXIT
  log "installed Trino $TRINO_VERSION at $INSTALL_DIR"
}

launcher() {
  JAVA_HOME="$TRINO_JAVA_HOME" "$INSTALL_DIR/bin/launcher" \
    -etc-dir "$ETC_DIR" -data-dir "$DATA_DIR" -jvm-dir "$TRINO_JAVA_HOME" "$@"
}

server_pid() {
  local f="$DATA_DIR/var/run/launcher.pid" pid
  [[ -f "$f" ]] || return 1
  pid="$(tr -dc '0-9' <"$f")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
}

port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    ss -Htln "sport = :$1" | grep -q .
  else
    (exec 3<>"/dev/tcp/$TRINO_HOST/$1") 2>/dev/null
  fi
}

gen_tls() {
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  if [[ -f "$TLS_DIR/server.pem" && -f "$TLS_DIR/ca.pem" ]] \
     && openssl x509 -in "$TLS_DIR/server.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    return 0
  fi
  command -v openssl >/dev/null || die "openssl is required for the HTTPS listener"
  log "generating test CA and server certificate in $TLS_DIR"
  local t="$TLS_DIR/tmp"
  rm -rf "$t"; mkdir -p "$t"
  cat >"$t/ca.ext" <<'EOF'
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
EOF
  cat >"$t/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid,issuer
EOF
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$t/ca.key" 2>/dev/null
  openssl req -new -key "$t/ca.key" -subj "/CN=aurum-otel test CA" -out "$t/ca.csr"
  openssl x509 -req -in "$t/ca.csr" -signkey "$t/ca.key" -days 3650 -sha256 \
    -extfile "$t/ca.ext" -out "$t/ca.pem" 2>/dev/null
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$t/server.key" 2>/dev/null
  openssl req -new -key "$t/server.key" -subj "/CN=127.0.0.1" -out "$t/server.csr"
  openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$t/server.ext" -out "$t/server.crt" 2>/dev/null
  # Trino/airlift PEM keystore: unencrypted PKCS#8 private key followed by the certificate chain.
  cat "$t/server.key" "$t/server.crt" "$t/ca.pem" >"$t/server.pem"
  chmod 600 "$t/server.pem" "$t/ca.key" "$t/server.key"
  mv "$t/ca.pem" "$TLS_DIR/ca.pem"
  mv "$t/server.pem" "$TLS_DIR/server.pem"
  rm -rf "$t"
}

# bcrypt hash of $TRINO_PASSWORD (passed via the environment, never on a command line).
bcrypt_hash() {
  export AURUM_BCRYPT_INPUT="$TRINO_PASSWORD"
  local h=""
  if python3 -c 'import bcrypt' >/dev/null 2>&1; then
    h="$(python3 -c 'import bcrypt, os
print(bcrypt.hashpw(os.environ["AURUM_BCRYPT_INPUT"].encode(), bcrypt.gensalt(rounds=10)).decode())')"
  elif command -v htpasswd >/dev/null 2>&1; then
    h="$(printf '%s\n' "$AURUM_BCRYPT_INPUT" | htpasswd -niB -C 10 "$TRINO_USER" | cut -d: -f2-)"
  else
    # Fall back to the bcrypt library that ships inside Trino's password-authenticators plugin.
    local src="$RUN_DIR/BcryptHash.java"
    cat >"$src" <<'EOF'
public class BcryptHash {
    public static void main(String[] args) {
        char[] pw = System.getenv("AURUM_BCRYPT_INPUT").toCharArray();
        System.out.println(at.favre.lib.crypto.bcrypt.BCrypt.with(at.favre.lib.crypto.bcrypt.BCrypt.Version.VERSION_2Y)
                .hashToString(10, pw));
    }
}
EOF
    h="$("$(java_bin)" -cp "$INSTALL_DIR/plugin/password-authenticators/*" "$src")"
    rm -f "$src"
  fi
  unset AURUM_BCRYPT_INPUT
  [[ "$h" == \$2* ]] || die "could not produce a bcrypt hash (pip install bcrypt, or apt-get install apache2-utils)"
  printf '%s' "$h"
}

write_config() {
  mkdir -p "$ETC_DIR/catalog" "$DATA_DIR"
  chmod 700 "$RUN_DIR"
  gen_tls

  if [[ ! -s "$RUN_DIR/shared-secret" ]]; then
    (umask 077; openssl rand -base64 48 | tr -d '\n' >"$RUN_DIR/shared-secret")
  fi
  local secret
  secret="$(cat "$RUN_DIR/shared-secret")"

  local hash
  hash="$(bcrypt_hash)"
  (umask 077; printf '%s:%s\n' "$TRINO_USER" "$hash" >"$RUN_DIR/password.db")

  cat >"$ETC_DIR/node.properties" <<EOF
node.environment=aurum_test
node.id=aurum-otel-trino
node.data-dir=$DATA_DIR
node.bind-ip=$TRINO_HOST
node.internal-address=$TRINO_HOST
EOF

  cat >"$ETC_DIR/jvm.config" <<EOF
-server
-Xmx$TRINO_HEAP
-XX:G1HeapRegionSize=32M
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=256M
-XX:PerMethodRecompilationCutoff=10000
-XX:PerBytecodeRecompilationCutoff=10000
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-Dfile.encoding=UTF-8
-XX:+EnableDynamicAgentLoading
-XX:+UnlockDiagnosticVMOptions
-XX:G1NumCollectionsKeepPinned=10000000
--enable-native-access=ALL-UNNAMED
--sun-misc-unsafe-memory-access=allow
EOF
  if [[ "${AURUM_TRINO_FULL_JIT:-0}" != 1 ]]; then
    # C1 only: ~25-35% faster startup on small CI machines; test queries are tiny anyway.
    echo "-XX:TieredStopAtLevel=1" >>"$ETC_DIR/jvm.config"
  fi
  rm -f "$RUN_DIR/aot-training"
  if [[ "${AURUM_TRINO_AOT:-0}" == 1 ]]; then
    if [[ -s "$AOT_FILE" ]]; then
      echo "-XX:AOTCache=$AOT_FILE" >>"$ETC_DIR/jvm.config"
    else
      # Training run: the JVM writes the cache when it exits (see cmd_stop).
      echo "-XX:AOTCacheOutput=$AOT_FILE" >>"$ETC_DIR/jvm.config"
      touch "$RUN_DIR/aot-training"
    fi
  fi
  # Extra JVM flags, whitespace separated (e.g. AURUM_TRINO_JVM_OPTS="-XX:TieredStopAtLevel=1").
  local opt
  for opt in ${AURUM_TRINO_JVM_OPTS:-}; do
    printf '%s\n' "$opt" >>"$ETC_DIR/jvm.config"
  done

  cat >"$ETC_DIR/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
discovery.uri=http://$TRINO_HOST:$HTTP_PORT
http-server.http.port=$HTTP_PORT
http-server.https.enabled=true
http-server.https.port=$HTTPS_PORT
http-server.https.keystore.path=$TLS_DIR/server.pem
http-server.authentication.type=PASSWORD
http-server.authentication.allow-insecure-over-http=true
password-authenticator.config-files=$ETC_DIR/password-authenticator.properties
internal-communication.shared-secret=$secret
plugin.dir=$INSTALL_DIR/plugin
catalog.config-dir=$ETC_DIR/catalog
query.max-memory=1GB
query.max-memory-per-node=512MB
shutdown.grace-period=1s
EOF
  chmod 600 "$ETC_DIR/config.properties"

  cat >"$ETC_DIR/password-authenticator.properties" <<EOF
password-authenticator.name=file
file.password-file=$RUN_DIR/password.db
EOF

  cat >"$ETC_DIR/log.properties" <<'EOF'
io.trino=INFO
EOF

  cat >"$ETC_DIR/catalog/memory.properties" <<'EOF'
connector.name=memory
memory.max-data-per-node=256MB
EOF

  cat >"$ETC_DIR/catalog/tpch.properties" <<'EOF'
connector.name=tpch
EOF
}

# probe: exit 0 once /v1/info reports starting=false and SELECT 1 returns 1 over plain HTTP.
probe() {
  python3 - "$TRINO_HOST" "$HTTP_PORT" <<'EOF'
import json, sys, urllib.request
host, port = sys.argv[1], sys.argv[2]
base = f"http://{host}:{port}"
try:
    with urllib.request.urlopen(base + "/v1/info", timeout=5) as r:
        info = json.load(r)
    if info.get("starting", True):
        sys.exit(2)
    req = urllib.request.Request(base + "/v1/statement", data=b"SELECT 1", method="POST",
                                 headers={"X-Trino-User": "aurum-healthcheck"})
    rows = []
    while True:
        with urllib.request.urlopen(req, timeout=10) as r:
            res = json.load(r)
        if "error" in res:
            print(res["error"].get("message"), file=sys.stderr)
            sys.exit(3)
        rows += res.get("data") or []
        nxt = res.get("nextUri")
        if not nxt:
            break
        req = urllib.request.Request(nxt, headers={"X-Trino-User": "aurum-healthcheck"})
    sys.exit(0 if rows == [[1]] else 4)
except SystemExit:
    raise
except Exception:
    sys.exit(1)
EOF
}

log_tail() {
  local f
  for f in "$DATA_DIR/var/log/launcher.log" "$DATA_DIR/var/log/server.log"; do
    if [[ -f "$f" ]]; then
      printf '\n----- last 60 lines of %s -----\n' "$f" >&2
      tail -n 60 "$f" >&2
    fi
  done
}

cmd_start() {
  check_java
  cmd_fetch
  command -v python3 >/dev/null || die "python3 is required for the readiness probe"
  if server_pid >/dev/null; then
    if probe; then
      log "already running (pid $(server_pid)) on http://$TRINO_HOST:$HTTP_PORT"
      return 0
    fi
    die "a Trino process (pid $(server_pid)) exists but is not answering; run '$0 stop' first"
  fi
  local port
  for port in "$HTTP_PORT" "$HTTPS_PORT"; do
    port_in_use "$port" && die "port $port is already in use by another process"
  done

  write_config
  # Fresh logs per start so failures show only this attempt.
  rm -f "$DATA_DIR"/var/log/server.log* "$DATA_DIR/var/log/launcher.log"
  log "starting Trino $TRINO_VERSION (java: $TRINO_JAVA_HOME)"
  if ! launcher start >/dev/null; then
    log_tail
    die "bin/launcher start failed"
  fi

  local start=$SECONDS rc
  while true; do
    if ! server_pid >/dev/null; then
      log_tail
      die "Trino exited during startup (logs: $DATA_DIR/var/log/)"
    fi
    rc=0; probe 2>/dev/null || rc=$?
    [[ $rc -eq 0 ]] && break
    if (( SECONDS - start >= START_TIMEOUT )); then
      log_tail
      launcher kill >/dev/null 2>&1 || true
      die "Trino did not become ready within ${START_TIMEOUT}s (last probe status $rc)"
    fi
    sleep 1
  done
  log "ready in $((SECONDS - start))s: http://$TRINO_HOST:$HTTP_PORT (no auth), https://$TRINO_HOST:$HTTPS_PORT (user $TRINO_USER, password)"
}

cmd_stop() {
  local pid
  if ! pid="$(server_pid)"; then
    log "not running"
    return 0
  fi
  local timeout="$STOP_TIMEOUT"
  if [[ -f "$RUN_DIR/aot-training" ]]; then
    timeout=$((STOP_TIMEOUT + 180))
    log "stopping Trino (pid $pid); the JVM writes the AOT cache $AOT_FILE on exit, this takes a while"
  else
    log "stopping Trino (pid $pid)"
  fi
  launcher stop >/dev/null 2>&1 || true
  local start=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - start >= timeout )); then
      log "still running after ${timeout}s, killing"
      # A killed training run leaves a partial AOT cache behind.
      if [[ -f "$RUN_DIR/aot-training" ]]; then rm -f "$AOT_FILE"; fi
      launcher kill >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
  kill -0 "$pid" 2>/dev/null && die "could not stop pid $pid"
  rm -f "$RUN_DIR/aot-training"
  log "stopped"
}

cmd_status() {
  local pid
  if ! pid="$(server_pid)"; then
    echo "trino: not running"
    return 3
  fi
  if probe 2>/dev/null; then
    echo "trino $TRINO_VERSION: running, pid $pid, ready; http://$TRINO_HOST:$HTTP_PORT https://$TRINO_HOST:$HTTPS_PORT"
    return 0
  fi
  echo "trino $TRINO_VERSION: running, pid $pid, NOT ready"
  return 1
}

cmd_env() {
  local k v
  for k in HOST PORT HTTPS_PORT USER PASSWORD CA VERSION; do
    case "$k" in
      HOST) v="$TRINO_HOST" ;;
      PORT) v="$HTTP_PORT" ;;
      HTTPS_PORT) v="$HTTPS_PORT" ;;
      USER) v="$TRINO_USER" ;;
      PASSWORD) v="$TRINO_PASSWORD" ;;
      CA) v="$TLS_DIR/ca.pem" ;;
      VERSION) v="$TRINO_VERSION" ;;
    esac
    printf 'export AURUM_TEST_TRINO_%s=%q\n' "$k" "$v"
  done
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 {fetch|start|stop|status|env}" >&2
    exit 2
    ;;
esac
