#!/usr/bin/env bash
# Start or stop Prometheus, node_exporter and the pushgateway on loopback for development.
#
#   infra/local/prometheus-stack.sh start|stop|status
#
# Needs Debian's packages: apt-get install -y prometheus prometheus-node-exporter prometheus-pushgateway
# (their systemd units are not used: in containers without systemd the install still works, and
# this script runs the binaries directly). Data, logs and pid files live under
# ${FORESIGHT_HOME:-.foresight}/prometheus. A matching Foresight source:
#   {"name": "local-prometheus", "kind": "prometheus",
#    "options": {"url": "http://127.0.0.1:9090", "step": "15s",
#                "series": [{"name": "load1", "promql": "node_load1", "unit": "count"}]}}
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${FORESIGHT_HOME:-.foresight}/prometheus"
CONFIG="${PROMETHEUS_CONFIG:-$HERE/prometheus.yml}"

start_one() {  # name, then the command line
  local name="$1"; shift
  local pidfile="$STATE/$name.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$pidfile"))"; return
  fi
  command -v "$1" >/dev/null || { echo "missing $1: apt-get install -y prometheus prometheus-node-exporter prometheus-pushgateway" >&2; exit 1; }
  nohup "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$pidfile"
  echo "$name started (pid $!, log $STATE/$name.log)"
}

stop_one() {
  local pidfile="$STATE/$1.pid"
  if [[ -f "$pidfile" ]]; then
    kill "$(cat "$pidfile")" 2>/dev/null && echo "$1 stopped" || echo "$1 was not running"
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  start)
    mkdir -p "$STATE/tsdb"
    start_one node_exporter prometheus-node-exporter --web.listen-address=127.0.0.1:9100
    start_one pushgateway prometheus-pushgateway --web.listen-address=127.0.0.1:9091
    start_one prometheus prometheus --config.file="$CONFIG" --storage.tsdb.path="$STATE/tsdb" \
      --web.listen-address=127.0.0.1:9090 --storage.tsdb.retention.time=30d
    ;;
  stop)
    for name in prometheus pushgateway node_exporter; do stop_one "$name"; done
    ;;
  status)
    for name in prometheus pushgateway node_exporter; do
      pidfile="$STATE/$name.pid"
      if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then echo "$name: running (pid $(cat "$pidfile"))"
      else echo "$name: stopped"; fi
    done
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2; exit 2
    ;;
esac
