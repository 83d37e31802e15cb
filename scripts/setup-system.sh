#!/usr/bin/env bash
# Installs the system tools the tests use (as root with apt); otherwise names the exact command to run.
set -euo pipefail
PKGS=(socat dbus-daemon dbus-bin qemu-user-static gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf binfmt-support mosquitto mosquitto-clients)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "missing system packages; install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq "${missing[@]}" >/dev/null
