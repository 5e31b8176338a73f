#!/usr/bin/env bash
# Installs (Debian) and starts a throwaway PostgreSQL cluster on loopback for the tests.
# Writes `export THUNDERHELM_PG_URL=…` (a role allowed to create databases) to .cache/run/postgres.env.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT="${PG_PORT:-55432}"
STATE="$ROOT/.cache/postgres"
RUN="$ROOT/.cache/run"
mkdir -p "$RUN"

pgbin() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  [ -n "$bin" ] && [ -x "$bin/initdb" ] && echo "$bin"
}

if ! PGBIN="$(pgbin)"; then
  echo "installing postgresql from Debian" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  PGBIN="$(pgbin)"
fi

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

if [ ! -f "$STATE/data/PG_VERSION" ]; then
  rm -rf "$STATE"
  mkdir -p "$STATE/data" "$STATE/sock"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$STATE"
  chmod 700 "$STATE/data"
  as_postgres "$PGBIN/initdb -D $STATE/data --auth-local=trust --auth-host=scram-sha-256 -U postgres -E UTF8 --locale=C.UTF-8" >/dev/null
fi

if ! as_postgres "$PGBIN/pg_ctl -D $STATE/data status" >/dev/null 2>&1; then
  as_postgres "$PGBIN/pg_ctl -D $STATE/data -l $STATE/sock/pg.log -w -o \"-c listen_addresses=127.0.0.1 -p $PORT -k $STATE/sock -c max_connections=300 -c fsync=on\" start" >/dev/null
fi

as_postgres "psql -h $STATE/sock -p $PORT -U postgres -d postgres -v ON_ERROR_STOP=1 -q" <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'thunderhelm') THEN
    CREATE ROLE thunderhelm LOGIN CREATEDB PASSWORD 'thunderhelm';
  END IF;
END $$;
SQL
as_postgres "psql -h $STATE/sock -p $PORT -U postgres -d postgres -tAc \"SELECT 1 FROM pg_database WHERE datname = 'thunderhelm'\"" | grep -q 1 \
  || as_postgres "psql -h $STATE/sock -p $PORT -U postgres -d postgres -qc 'CREATE DATABASE thunderhelm OWNER thunderhelm'"

echo "export THUNDERHELM_PG_URL=postgres://thunderhelm:thunderhelm@127.0.0.1:$PORT/thunderhelm" > "$RUN/postgres.env"
echo "postgres ready on 127.0.0.1:$PORT" >&2
