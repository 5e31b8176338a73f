# shellcheck shell=bash
# Sourced by scripts/stop-*.sh. stop_recorded_server NAME PIDFILE: stops the process group recorded in PIDFILE
# (TERM, then KILL after 15 s) and removes the pid file; says so on stderr. Returns 1 when nothing was recorded.
stop_recorded_server() {
  local name="$1" pidfile="$2" pid
  if [ ! -f "$pidfile" ]; then
    echo "$name: no server recorded in $pidfile" >&2
    return 1
  fi
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 75); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
  echo "$name: stopped pid $pid" >&2
}
