#!/usr/bin/env bash
# Runner service benchmarks (docs/benchmarks.md): start-to-first-/healthz, idle RSS, and wrk throughput of
# /bridge/record (SQLite and PostgreSQL) and /propose (random, and TPE over a 100-trial history).
# Usage: scripts/bench-runner.sh   (needs a release build; installs wrk from Debian if missing)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="${CARGO_TARGET_DIR:-target}/release/cerebros-runner"
[ -x "$BIN" ] || cargo build --release --locked -p runner --bin cerebros-runner
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
DURATION="${BENCH_DURATION:-10s}"
WORK="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_runner() { # $1 = database url (empty for the embedded default)
  PORT_NUM=$(port)
  DATA="$WORK/data-$PORT_NUM"
  local t0; t0=$(date +%s%N)
  if [ -n "$1" ]; then
    RUNNER_DATA_DIR="$DATA" PORT=$PORT_NUM RUNNER_BIND=127.0.0.1 RUNNER_DATABASE_URL="$1" LOG_LEVEL=warn "$BIN" 2>/dev/null &
  else
    RUNNER_DATA_DIR="$DATA" PORT=$PORT_NUM RUNNER_BIND=127.0.0.1 LOG_LEVEL=warn "$BIN" 2>/dev/null &
  fi
  PID=$!
  until curl -sf "http://127.0.0.1:$PORT_NUM/healthz" >/dev/null; do sleep 0.002; done
  STARTUP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}

rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

cat > "$WORK/record.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"run_id":"bench-%d","trial_id":"w%d-%d","status":"succeeded","metrics":{"accuracy":0.5},"parameters":{"lr":0.01}}', counter % 16, math.random(1, 1e9), counter)
  return wrk.format("POST", "/bridge/record", {["Content-Type"]="application/json"}, body)
end
LUA
cat > "$WORK/propose.lua" <<LUA
wrk.method = "POST"
wrk.path = "/propose"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"run_id":"RUN","k":8,"strategy":"STRATEGY","space":{"x":{"uniform":[-5,10]},"y":{"uniform":[0,15]},"lr":{"loguniform":[0.0001,0.1]},"n":{"int":[1,8]},"act":{"choice":["relu","tanh","gelu"]}}}'
LUA

# One wrk thread, as the anchor was measured (shared/bench: wrk -t1); WRK_THREADS changes it.
# Prints "<req/s> req/s, <µs> µs of runner CPU per request": the CPU figure (user + system time of the runner process,
# from /proc, over the requests wrk completed) depends far less on what else the machine runs than req/s does.
wrk_rps() {
  local ticks0 ticks1 out
  ticks0=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  out=$(wrk -t"${WRK_THREADS:-1}" -c"$1" -d"$DURATION" ${2:+-s "$2"} "$3")
  ticks1=$(awk '{print $14 + $15}' "/proc/$PID/stat")
  awk -v t0="$ticks0" -v t1="$ticks1" -v hz="$(getconf CLK_TCK)" '
    /requests in/ {n = $1} /Requests\/sec/ {rps = $2}
    END {printf "%s req/s, %.1f us of runner CPU per request\n", rps, (t1 - t0) / hz * 1e6 / n}' <<<"$out"
}

echo "## runner service benchmark ($(date -u +%F), $(nproc) cores, wrk $DURATION)"
start_runner ""
sleep 1
echo "startup_to_healthz_ms(sqlite, fresh data dir): $STARTUP_MS"
echo "idle_rss_mib: $(rss_mib $PID)"
echo "healthz_rps_c64 (the HTTP ceiling on this machine): $(wrk_rps 64 "" "http://127.0.0.1:$PORT_NUM/healthz")"
echo "record_rps_sqlite_c64: $(wrk_rps 64 "$WORK/record.lua" "http://127.0.0.1:$PORT_NUM")"
sed -e 's/RUN/bench-random/' -e 's/STRATEGY/random/' "$WORK/propose.lua" > "$WORK/p-random.lua"
echo "propose_random_k8_rps_c64: $(wrk_rps 64 "$WORK/p-random.lua" "http://127.0.0.1:$PORT_NUM")"
# TPE over a 100-trial history: seed the run with 100 recorded trials first.
python3 - "$PORT_NUM" <<'PY'
import json, random, sys, urllib.request
port = sys.argv[1]
random.seed(1)
for i in range(100):
    p = {"x": random.uniform(-5, 10), "y": random.uniform(0, 15), "lr": 10 ** random.uniform(-4, -1),
         "n": random.randint(1, 8), "act": random.choice(["relu", "tanh", "gelu"])}
    body = {"run_id": "bench-tpe", "trial_id": f"h{i}", "parameters": p, "metrics": {"accuracy": -(p["x"] - 2) ** 2 - (p["y"] - 5) ** 2}}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/bridge/record", json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY
sed -e 's/RUN/bench-tpe/' -e 's/STRATEGY/tpe/' "$WORK/propose.lua" > "$WORK/p-tpe.lua"
echo "propose_tpe_k8_hist100_rps_c64: $(wrk_rps 64 "$WORK/p-tpe.lua" "http://127.0.0.1:$PORT_NUM")"
echo "rss_after_load_mib: $(rss_mib $PID)"
kill -TERM $PID; wait $PID || true

if [ -f .cache/run/postgres.env ] || scripts/start-postgres.sh >/dev/null 2>&1; then
  # shellcheck disable=SC1091
  source .cache/run/postgres.env
  DB="bench_$(date +%s)"
  PGPASSWORD=thunderhelm psql "${THUNDERHELM_PG_URL}" -qc "CREATE DATABASE $DB" >/dev/null
  start_runner "${THUNDERHELM_PG_URL%/*}/$DB"
  echo "startup_to_healthz_ms(postgres, fresh database): $STARTUP_MS"
  echo "record_rps_postgres_c64: $(wrk_rps 64 "$WORK/record.lua" "http://127.0.0.1:$PORT_NUM")"
  echo "propose_random_k8_rps_c64(postgres): $(wrk_rps 64 "$WORK/p-random.lua" "http://127.0.0.1:$PORT_NUM")"
  kill -TERM $PID; wait $PID || true
fi
