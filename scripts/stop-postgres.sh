#!/usr/bin/env bash
# Stops the test PostgreSQL cluster started by start-postgres.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$ROOT/.cache/postgres"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
[ -n "$PGBIN" ] && [ -f "$STATE/data/PG_VERSION" ] || exit 0
if [ "$(id -u)" = 0 ]; then
  su postgres -s /bin/sh -c "$PGBIN/pg_ctl -D $STATE/data -m fast -w stop" >/dev/null 2>&1 || true
else
  "$PGBIN/pg_ctl" -D "$STATE/data" -m fast -w stop >/dev/null 2>&1 || true
fi
rm -f "$ROOT/.cache/run/postgres.env"
