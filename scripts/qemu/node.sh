#!/usr/bin/env bash
# Owns: running Debian's cached ARM Node 18 under user-mode QEMU: scripts/qemu/node.sh <arm64|armhf> [node args...]
#
# The runtime comes from scripts/qemu/prepare.sh (.cache/qemu/<arch>/). QEMU_LD_PREFIX and
# QEMU_SET_ENV are used instead of -L/-E so that, when binfmt_misc is enabled, ARM children the
# emulated Node spawns find the same root. Set QEMU_CPU to pick a CPU model (e.g. arm1176 to
# check ARMv6 code; Debian's armhf Node itself needs ARMv7, so only for non-Node binaries).
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/../.." && pwd)"
A="${1:-}"; shift || true
case "$A" in
  arm64|aarch64) A=arm64; QEMU=qemu-aarch64-static; LIBDIR=aarch64-linux-gnu ;;
  armhf|arm)     A=armhf; QEMU=qemu-arm-static;     LIBDIR=arm-linux-gnueabihf ;;
  *) echo "usage: scripts/qemu/node.sh <arm64|armhf> [node args...]" >&2; exit 2 ;;
esac
R="$ROOT_DIR/.cache/qemu/$A"
if [ ! -x "$R/usr/bin/node" ]; then
  echo "ENOENT: no $A Node runtime in $R: run scripts/qemu/prepare.sh $A" >&2; exit 1
fi
command -v "$QEMU" >/dev/null || { echo "ENOENT: $QEMU not found: run scripts/qemu/prepare.sh" >&2; exit 1; }
unset NODE_EXTRA_CA_CERTS
export QEMU_LD_PREFIX="$R"
if [ "$A" = armhf ]; then
  export QEMU_SET_ENV="LD_LIBRARY_PATH=$R/lib/$LIBDIR:$R/usr/lib/$LIBDIR"
fi
exec "$QEMU" "$R/usr/bin/node" "$@"
