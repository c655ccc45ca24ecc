#!/usr/bin/env bash
# Installs what bench/src/bin/sentinel_bench.rs and soak.rs need beyond the test suite's
# redis-server and ZooKeeper:
#   * Redis Sentinel: the Debian package `redis-sentinel` when no `redis-sentinel` command is
#     found (the benches fall back to `redis-server --sentinel`, from the redis-server package,
#     when only that one is there);
#   * the DejaVu Sans font (Debian `fonts-dejavu-core`), which sentinel_bench loads at run time
#     to label docs/failover_timeline.png (the PNG is drawn by the pure-Rust `plotters` +
#     `ab_glyph`, so building needs no system library).
# Idempotent: installs nothing that is already there. Run as root, or with sudo available.
#
# Usage (from anywhere):  scripts/install-sentinel.sh
set -euo pipefail

FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf

say() { printf 'install-sentinel: %s\n' "$*" >&2; }

sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); fi

packages=()
if ! command -v redis-sentinel >/dev/null 2>&1; then
  packages+=(redis-sentinel)
fi
if ! command -v redis-server >/dev/null 2>&1; then
  packages+=(redis-server)
fi
if [ ! -f "$FONT" ]; then
  packages+=(fonts-dejavu-core)
fi

if [ "${#packages[@]}" -gt 0 ]; then
  say "installing ${packages[*]}"
  "${sudo_cmd[@]}" apt-get update
  # policy-rc.d (where present, as in containers) keeps the packaged sentinel service from
  # starting; the benches start sentinels of their own on free ports either way.
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
fi

if command -v redis-sentinel >/dev/null 2>&1; then
  say "sentinel: $(command -v redis-sentinel) ($(redis-sentinel --version | head -n1))"
elif command -v redis-server >/dev/null 2>&1; then
  say "sentinel: redis-server --sentinel ($(redis-server --version | head -n1))"
else
  say "ERROR: neither redis-sentinel nor redis-server is installed"
  exit 1
fi
if [ -f "$FONT" ]; then
  say "font: $FONT"
else
  say "ERROR: $FONT is still missing"
  exit 1
fi
