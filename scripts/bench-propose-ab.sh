#!/usr/bin/env bash
# A/B throughput of two runner binaries on this machine (docs/benchmarks/runner.md): alternates them on a fresh
# data dir, wrk -t1 -c64 per run, for /propose k=8 random, /bridge/record and /propose k=8 TPE over 100 trials.
# Usage: scripts/bench-propose-ab.sh OLD_BINARY NEW_BINARY [ROUNDS]   (BENCH_DURATION, default 6s)
set -euo pipefail
OLD="$1"; NEW="$2"; ROUNDS="${3:-3}"
DURATION="${BENCH_DURATION:-6s}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
WORK="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
PORT_NUM=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT_NUM"

cat > "$WORK/record.lua" <<'LUA'
counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"run_id":"bench-%d","trial_id":"w%d-%d","status":"succeeded","metrics":{"accuracy":0.5},"parameters":{"lr":0.01}}', counter % 16, math.random(1, 1e9), counter)
  return wrk.format("POST", "/bridge/record", {["Content-Type"]="application/json"}, body)
end
LUA
propose_lua() { # $1 = run, $2 = strategy
  cat <<LUA
wrk.method = "POST"
wrk.path = "/propose"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"run_id":"$1","k":8,"strategy":"$2","space":{"x":{"uniform":[-5,10]},"y":{"uniform":[0,15]},"lr":{"loguniform":[0.0001,0.1]},"n":{"int":[1,8]},"act":{"choice":["relu","tanh","gelu"]}}}'
LUA
}
propose_lua bench-random random > "$WORK/random.lua"
propose_lua bench-tpe tpe > "$WORK/tpe.lua"

start() { # $1 = binary
  if [ -n "${PID:-}" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$WORK/data"
  RUNNER_DATA_DIR="$WORK/data" PORT=$PORT_NUM RUNNER_BIND=127.0.0.1 LOG_LEVEL=warn "$1" 2>/dev/null &
  PID=$!
  until curl -sf "$URL/healthz" >/dev/null; do sleep 0.02; done
}
rps() { wrk -t1 -c64 -d"$DURATION" -s "$1" "$URL" | awk '/Requests\/sec/ {print $2}'; }
seed_history() {
  python3 - "$PORT_NUM" <<'PY'
import json, random, sys, urllib.request
random.seed(1)
for i in range(100):
    p = {"x": random.uniform(-5, 10), "y": random.uniform(0, 15), "lr": 10 ** random.uniform(-4, -1),
         "n": random.randint(1, 8), "act": random.choice(["relu", "tanh", "gelu"])}
    body = {"run_id": "bench-tpe", "trial_id": f"h{i}", "parameters": p,
            "metrics": {"accuracy": -(p["x"] - 2) ** 2 - (p["y"] - 5) ** 2}}
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/bridge/record", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
PY
}

echo "| round | binary | propose random k=8 | bridge/record | propose TPE k=8, 100 trials |"
echo "|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for name in old new; do
    if [ "$name" = old ]; then bin="$OLD"; else bin="$NEW"; fi
    start "$bin"; random=$(rps "$WORK/random.lua")
    start "$bin"; record=$(rps "$WORK/record.lua")
    start "$bin"; seed_history; tpe=$(rps "$WORK/tpe.lua")
    echo "| $round | $name | $random | $record | $tpe |"
  done
done
