#!/usr/bin/env bash
# Headless Chromium for the browser tests (tests/integration/test_report_browser.py): Debian's
# `chromium` and `chromium-driver`, installed with apt when missing (CI runs as root on Debian).
#
#   bash scripts/browser.sh          install when missing, then print where they are
#   bash scripts/browser.sh env      print `export AURUM_CHROMIUM_BIN=... AURUM_CHROMEDRIVER_BIN=...`
#
# Without root or apt it says so and exits 0: the browser tests then skip, saying why.
set -euo pipefail

find_bins() {
    CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
    DRIVER=$(command -v chromedriver || { test -x /usr/bin/chromedriver && echo /usr/bin/chromedriver; } || true)
}

find_bins
if [ "${1:-}" = env ]; then
    [ -n "$CHROMIUM" ] && echo "export AURUM_CHROMIUM_BIN=$CHROMIUM"
    [ -n "$DRIVER" ] && echo "export AURUM_CHROMEDRIVER_BIN=$DRIVER"
    exit 0
fi
if [ -z "$CHROMIUM" ] || [ -z "$DRIVER" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "[browser] installing Debian's chromium and chromium-driver" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq chromium chromium-driver >&2
        find_bins
    else
        echo "[browser] chromium/chromium-driver missing and cannot be installed here (needs root" \
             "and apt-get: apt-get install -y chromium chromium-driver); the browser tests skip" >&2
        exit 0
    fi
fi
echo "[browser] chromium: ${CHROMIUM:-missing} ($("${CHROMIUM:-true}" --version 2>/dev/null || true))" >&2
echo "[browser] chromedriver: ${DRIVER:-missing}" >&2
