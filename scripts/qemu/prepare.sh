#!/usr/bin/env bash
# Owns: preparing and caching Debian's arm64/armhf Node 18 runtimes for user-mode QEMU (docs/PLATFORM-NOTES.md §5).
#
# Usage: scripts/qemu/prepare.sh [arm64] [armhf]    (default: both)
# Result: .cache/qemu/<arch>/ holds an unpacked Debian root with usr/bin/node; a marker file
# .cache/qemu/<arch>/.ready makes a second run return at once. Prints one JSON line per arch and
# one line about binfmt_misc. Exit 1 if a runtime could not be prepared.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="$ROOT_DIR/.cache/qemu"
ARCHES=("$@")
[ ${#ARCHES[@]} -eq 0 ] && ARCHES=(arm64 armhf)
PKGS="nodejs libnode108 libbrotli1 libc-ares2 libc6 libicu72 libnghttp2-14 libssl3 libstdc++6 libuv1 zlib1g libgcc-s1 gcc-12-base libatomic1"
NOARCH_PKGS="node-acorn node-cjs-module-lexer node-undici node-busboy node-xtend"

log() { echo "qemu-prepare: $*" >&2; }
is_root() { [ "$(id -u)" = 0 ]; }
qemu_bin() { case "$1" in arm64) echo qemu-aarch64-static ;; armhf) echo qemu-arm-static ;; *) return 1 ;; esac; }

apt_updated=0
apt_update() {
  # The armhf security index sometimes fails; main still works (docs/PLATFORM-NOTES.md §5).
  if [ $apt_updated = 0 ]; then apt-get update -qq >/dev/null 2>&1 || true; apt_updated=1; fi
}

ensure_qemu() {
  if command -v qemu-aarch64-static >/dev/null && command -v qemu-arm-static >/dev/null; then return 0; fi
  if ! is_root; then log "qemu-user-static missing and not root: install it (apt-get install qemu-user-static)"; return 1; fi
  log "installing qemu-user-static"
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null 2>&1 || {
    apt_updated=0; apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
  }
}

prepare_arch() {
  local A="$1" dest="$CACHE/$1"
  if [ -f "$dest/.ready" ] && [ -x "$dest/usr/bin/node" ]; then
    echo "{\"arch\":\"$A\",\"root\":\"$dest\",\"cached\":true}"
    return 0
  fi
  is_root || { log "runtime for $A not cached and not root: cannot apt-get download"; return 1; }
  local t0=$SECONDS
  if ! dpkg --print-foreign-architectures | grep -qx "$A"; then
    dpkg --add-architecture "$A"; apt_updated=0
  fi
  apt_update
  local tmp; tmp="$(mktemp -d)"
  local list=(); for p in $PKGS; do list+=("$p:$A"); done
  if ! (cd "$tmp" && apt-get download -qq "${list[@]}" $NOARCH_PKGS >/dev/null 2>&1); then
    # A stale index names versions the archive no longer has: refresh once and retry.
    apt_updated=0; apt_update
    (cd "$tmp" && apt-get download -qq "${list[@]}" $NOARCH_PKGS >/dev/null) || { rm -rf "$tmp"; return 1; }
  fi
  rm -rf "$dest"; mkdir -p "$dest"
  for d in "$tmp"/*.deb; do dpkg -x "$d" "$dest"; done
  rm -rf "$tmp"
  [ -x "$dest/usr/bin/node" ] || { log "no usr/bin/node after unpacking $A"; return 1; }
  date -u +%FT%TZ > "$dest/.ready"
  echo "{\"arch\":\"$A\",\"root\":\"$dest\",\"cached\":false,\"seconds\":$((SECONDS - t0))}"
}

# binfmt_misc lets an emulated process spawn ARM children directly. Optional: the tests launch
# every process from the host through scripts/qemu/node.sh, so they pass without it.
try_binfmt() {
  local state="unavailable"
  if is_root; then
    [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    if ! command -v update-binfmts >/dev/null; then
      apt_update; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binfmt-support >/dev/null 2>&1 || true
    fi
    if command -v update-binfmts >/dev/null; then
      update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
      update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
    fi
  fi
  if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null \
     && [ -e /proc/sys/fs/binfmt_misc/qemu-arm ] && grep -q enabled /proc/sys/fs/binfmt_misc/qemu-arm 2>/dev/null; then
    state="enabled"
  fi
  echo "{\"binfmt\":\"$state\"}"
}

ensure_qemu
mkdir -p "$CACHE"
rc=0
for A in "${ARCHES[@]}"; do
  qemu_bin "$A" >/dev/null || { log "unknown arch '$A' (known: arm64 armhf)"; exit 2; }
  prepare_arch "$A" || { log "failed to prepare $A"; rc=1; }
done
try_binfmt
exit $rc
