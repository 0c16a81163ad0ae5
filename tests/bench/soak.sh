#!/usr/bin/env bash
# make soak: dbpulse under the demo's workload for SOAK_SECONDS (1800) with every collector
# and the rules at a 1 s interval, while PostgreSQL and Redis are restarted every
# SOAK_RESTART_EVERY (300) seconds and the chat server stand-in flips between healthy and
# failing (companion churn: new status codes, error series come and go). It prints RSS, open
# file descriptors and dbpulse's PostgreSQL sessions after the warm-up (SOAK_WARMUP, 360 s:
# the store's history, 5m here, is full by then) and at the end, and fails when RSS grew by
# SOAK_MAX_GROWTH_PERCENT (5) or more, or descriptors or sessions grew at all.
#
#   bash tests/bench/soak.sh [BUILD_DIR]
#
# Ports (loopback): SOAK_PORT_BASE (57400) + 0..4 for PostgreSQL, Redis, dbpulse, the chat
# stand-in and Alertmanager. Everything runs in the demo sandbox (.demo/, wiped first).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-build}"
[[ "$BUILD" == /* ]] || BUILD="$REPO_ROOT/$BUILD"
DBPULSE="$BUILD/dbpulse"
SECONDS_TOTAL="${SOAK_SECONDS:-1800}"
WARMUP="${SOAK_WARMUP:-360}"
RESTART_EVERY="${SOAK_RESTART_EVERY:-300}"
MAX_GROWTH="${SOAK_MAX_GROWTH_PERCENT:-5}"
BASE="${SOAK_PORT_BASE:-57400}"
PG_PORT=$((BASE)) REDIS_PORT=$((BASE + 1)) DBPULSE_PORT=$((BASE + 2))
CHAT_PORT=$((BASE + 3)) AM_PORT=$((BASE + 4))
PG_BIN=/usr/lib/postgresql/15/bin
DEMO_DIR="$REPO_ROOT/.demo"
LOG="$BUILD/soak-demo.log"

log() { printf 'soak: %s\n' "$*" >&2; }
die() { printf 'soak: error: %s\n' "$*" >&2; exit 1; }
[[ -x "$DBPULSE" ]] || die "no $DBPULSE (make build)"
(( WARMUP < SECONDS_TOTAL )) || die "SOAK_WARMUP must be shorter than SOAK_SECONDS"
if [[ "$(id -u)" -eq 0 ]]; then as_pg() { runuser -u postgres -- "$@"; }; else as_pg() { "$@"; }; fi

# Every collector and the rules at 1 s; the history short enough to fill during the warm-up.
for c in connections statements indexes cache tables size locks replication redis process \
         companion; do
  export "DBPULSE_COLLECTORS_${c^^}_INTERVAL=1s" "DBPULSE_COLLECTORS_${c^^}_TIMEOUT=900ms"
done
export DBPULSE_RULES_EVALUATION_INTERVAL=1s DBPULSE_AGENT_HISTORY=5m
export DEMO_PG_PORT=$PG_PORT DEMO_REDIS_PORT=$REDIS_PORT DEMO_DBPULSE_PORT=$DBPULSE_PORT
export DEMO_CHAT_PORT=$CHAT_PORT DEMO_ALERTMANAGER_PORT=$AM_PORT
export DEMO_DURATION=$((SECONDS_TOTAL + 120)) DEMO_PGBENCH_SECONDS=$((SECONDS_TOTAL + 120))

log "starting the demo sandbox (log: $LOG)"
bash "$REPO_ROOT/packaging/demo/run.sh" "$DBPULSE" >"$LOG" 2>&1 &
DEMO_PID=$!
cleanup() { kill -TERM "$DEMO_PID" 2>/dev/null || true; wait "$DEMO_PID" 2>/dev/null || true; }
trap cleanup EXIT

deadline=$((SECONDS + 300))
until curl -fsS -o /dev/null "http://127.0.0.1:$DBPULSE_PORT/health/ready" 2>/dev/null; do
  (( SECONDS < deadline )) || die "dbpulse not ready after 300 s; see $LOG"
  kill -0 "$DEMO_PID" 2>/dev/null || die "the demo exited; see $LOG"
  sleep 1
done
AGENT_PID="$(cat "$DEMO_DIR/dbpulse.pid")"
log "dbpulse (pid $AGENT_PID) ready; warm-up ${WARMUP}s, total ${SECONDS_TOTAL}s"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status"; }
fds() { ls "/proc/$AGENT_PID/fd" | wc -l; }
sessions() {
  "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc \
    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'dbpulse%'" 2>/dev/null ||
    echo "?"
}
restart_servers() {
  log "restarting PostgreSQL and Redis"
  as_pg "$PG_BIN/pg_ctl" -D "$DEMO_DIR/pg/data" restart -m fast -w -t 60 >/dev/null
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$DEMO_DIR/redis" --daemonize yes --pidfile "$DEMO_DIR/redis/redis.pid" \
    --logfile "$DEMO_DIR/redis/redis.log" --maxmemory 64mb --maxmemory-policy allkeys-lru
}
churn() {  # the chat stand-in fails for 20 s: 5xx series appear, health turns 503
  curl -fsS -o /dev/null "http://127.0.0.1:$CHAT_PORT/_demo/fault?mode=errors&seconds=20" || true
}

start=$SECONDS
next_restart=$((start + RESTART_EVERY))
next_churn=$((start + 60))
measured=0
peak=0
while (( SECONDS - start < SECONDS_TOTAL )); do
  kill -0 "$AGENT_PID" 2>/dev/null || die "dbpulse exited during the soak; see $LOG"
  if (( !measured && SECONDS - start >= WARMUP )); then
    read -r rss0 fds0 ses0 <<<"$(rss_kib) $(fds) $(sessions)"
    measured=1
    log "after warm-up: RSS ${rss0} KiB, ${fds0} fds, ${ses0} sessions"
  fi
  rss=$(rss_kib)
  (( rss > peak )) && peak=$rss
  if (( SECONDS >= next_restart )); then restart_servers; next_restart=$((SECONDS + RESTART_EVERY)); fi
  if (( SECONDS >= next_churn )); then churn; next_churn=$((SECONDS + 60)); fi
  sleep 5
done
# The last restart may be seconds old: let every collector reconnect before the end sample.
deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "http://127.0.0.1:$DBPULSE_PORT/health/ready" 2>/dev/null; do
  (( SECONDS < deadline )) || break
  sleep 1
done
read -r rss1 fds1 ses1 <<<"$(rss_kib) $(fds) $(sessions)"
growth=$(awk -v a="$rss0" -v b="$rss1" 'BEGIN {printf "%.1f", (b - a) * 100 / a}')
printf '\n| soak (%d s, 1 s intervals, restarts every %d s) | after warm-up | end | growth |\n' \
  "$SECONDS_TOTAL" "$RESTART_EVERY"
printf '|---|---|---|---|\n'
printf '| RSS (KiB; peak %s) | %s | %s | %s %% |\n' "$peak" "$rss0" "$rss1" "$growth"
printf '| open fds | %s | %s | %s |\n' "$fds0" "$fds1" "$((fds1 - fds0))"
printf '| PostgreSQL sessions | %s | %s | |\n' "$ses0" "$ses1"
fail=0
awk -v g="$growth" -v m="$MAX_GROWTH" 'BEGIN {exit !(g >= m)}' && { log "RSS grew ${growth} % (limit ${MAX_GROWTH} %)"; fail=1; }
(( fds1 > fds0 )) && { log "file descriptors grew from $fds0 to $fds1"; fail=1; }
[[ "$ses0" != "?" && "$ses1" != "?" ]] && (( ses1 > ses0 )) && { log "sessions grew from $ses0 to $ses1"; fail=1; }
exit "$fail"
