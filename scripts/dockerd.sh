#!/usr/bin/env bash
# Start, stop or query a Docker engine for agentd's sandbox (CI and bare machines without systemd).
#
#   scripts/dockerd.sh start    start dockerd unless an engine already answers; wait until `docker info` works
#   scripts/dockerd.sh stop     stop the dockerd that `start` started for the same caller (the same
#                               parent process, e.g. one CI script), never an engine someone else runs;
#                               `stop --force` stops a dockerd this script started from any caller
#   scripts/dockerd.sh status   exit 0 when an engine answers, 1 otherwise
#
# Env: DOCKERD_WAIT_S (default 60) bounds the wait; AGENTD_DOCKERD_PIDFILE / AGENTD_DOCKERD_LOG relocate files.
set -euo pipefail

PIDFILE="${AGENTD_DOCKERD_PIDFILE:-/run/agentd-dockerd.pid}"
LOG="${AGENTD_DOCKERD_LOG:-/tmp/agentd-dockerd.log}"
WAIT_S="${DOCKERD_WAIT_S:-60}"

engine_up() { timeout 5 docker info >/dev/null 2>&1; }

# The pid file holds "<dockerd pid> <caller pid>": who started it and for whom.
our_pid() {
  # The pid file is ours only if the process it names is still a dockerd (pids get reused).
  [[ -f "$PIDFILE" ]] || return 1
  local pid; pid="$(awk '{print $1}' "$PIDFILE")"
  [[ -n "$pid" && -r "/proc/$pid/comm" && "$(cat "/proc/$pid/comm")" == dockerd ]] || return 1
  echo "$pid"
}

starter() { awk '{print $2}' "$PIDFILE" 2>/dev/null; }

start() {
  if engine_up; then echo "dockerd: engine already running"; return 0; fi
  if [[ "$(id -u)" != 0 ]]; then echo "dockerd: not running and starting it needs root" >&2; return 1; fi
  command -v dockerd >/dev/null || { echo "dockerd: not installed (apt-get install docker.io)" >&2; return 1; }
  local child=""
  if ! child="$(our_pid)"; then
    echo "dockerd: starting (log: $LOG)"
    # setsid: the engine must outlive the shell (and the CI step) that started it.
    setsid dockerd >"$LOG" 2>&1 </dev/null &
    child=$!
    echo "$child $PPID" >"$PIDFILE"
  fi
  local waited=0
  until engine_up; do
    # Liveness by pid, not by name: right after the fork the child is still `setsid` (or bash) until
    # it execs dockerd, and a name check there reads a healthy start as an exit.
    if [[ ! -d "/proc/$child" ]] || grep -q '^State:.*Z' "/proc/$child/status" 2>/dev/null; then
      echo "dockerd: exited during start; last log lines:" >&2; tail -n 20 "$LOG" >&2; return 1
    fi
    if (( waited >= WAIT_S )); then echo "dockerd: not answering after ${WAIT_S}s" >&2; tail -n 20 "$LOG" >&2; return 1; fi
    sleep 1; waited=$((waited + 1))
  done
  echo "dockerd: ready after ${waited}s ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
}

stop() {
  local pid force="${1:-}"
  if ! pid="$(our_pid)"; then echo "dockerd: none started by this script"; rm -f "$PIDFILE"; return 0; fi
  # Several jobs share one engine on a dev machine: only the caller that started it stops it.
  local who; who="$(starter)"
  if [[ "$force" != --force && "$who" != "$PPID" ]]; then
    echo "dockerd: started for another caller (${who:-unknown}); leaving it running (stop --force to stop it)"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 30); do
    [[ -d "/proc/$pid" ]] || { rm -f "$PIDFILE"; echo "dockerd: stopped"; return 0; }
    sleep 1
  done
  echo "dockerd: did not stop in 30s, killing" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

status() {
  if engine_up; then echo "dockerd: running ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"; return 0; fi
  echo "dockerd: not reachable"; return 1
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
