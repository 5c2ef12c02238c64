#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests and prints `DATABASE_URL=...` (last line).
# Installs postgresql-15 with apt when no PostgreSQL binaries are found. Re-running reuses a
# cluster that is still up. Stop it with: scripts/start-postgres.sh --stop
#   PG_DIR   cluster directory (default /tmp/friday-pg)      PG_PORT  port (default 55432)
#   PG_BIN   directory of initdb/pg_ctl (default: newest /usr/lib/postgresql/*/bin, then pg_config)
set -euo pipefail

PG_DIR=${PG_DIR:-/tmp/friday-pg}
PG_PORT=${PG_PORT:-55432}
URL="postgres://postgres@127.0.0.1:${PG_PORT}/postgres"

find_bin() {
  if [ -n "${PG_BIN:-}" ] && [ -x "$PG_BIN/initdb" ]; then echo "$PG_BIN"; return; fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then echo "$d"; return; fi
  done
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
}

# as root, PostgreSQL binaries run as the postgres user (initdb refuses root)
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

BIN=$(find_bin || true)

if [ "${1:-}" = "--stop" ]; then
  if [ -n "$BIN" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then as_pg "$BIN/pg_ctl" -D "$PG_DIR/data" -w -m fast stop; fi
  rm -rf "$PG_DIR"
  exit 0
fi

if [ -z "$BIN" ]; then
  echo "PostgreSQL not found: installing postgresql-15 with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql-15 >&2 || apt-get install -y -qq postgresql >&2
  BIN=$(find_bin)
fi

if [ -f "$PG_DIR/data/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
  echo "reusing the cluster in $PG_DIR" >&2
else
  rm -rf "$PG_DIR"
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$PG_DIR"; fi
  as_pg "$BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
  as_pg "$BIN/pg_ctl" -D "$PG_DIR/data" -w -l "$PG_DIR/server.log" start \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" >&2
fi

echo "DATABASE_URL=$URL"
