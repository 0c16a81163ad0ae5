#!/usr/bin/env bash
# The `make demo` sandbox: a throwaway chat backend on loopback, with dbpulse watching it.
#
#   bash packaging/demo/run.sh [PATH_TO_DBPULSE]        (make demo passes build/dbpulse)
#
# Starts, all under the repo's ignored .demo/ (wiped and recreated on every run):
#   - PostgreSQL 15 (initdb into .demo/pg/data; pg_stat_statements preloaded, hypopg),
#     a `chat` database with users, conversations, participants and messages
#     (schema.sql, seed.sql), a `dbpulse` role (pg_monitor + SELECT on the chat tables);
#   - Redis with a few seeded keys and some hits and misses;
#   - a bounded, rate-limited pgbench chat workload in the background (workload/*.sql);
#   - the chat server (chat-server/server.js: Node, prom-client; its npm packages installed
#     by chat-server/install.sh) with built-in chat traffic and Redis session reads;
#   - Alertmanager (Debian's prometheus-alertmanager), which dbpulse sends its alerts to;
#   - dbpulse with .demo/dbpulse.toml (made from dbpulse.toml), in the foreground.
# Ctrl-C (or SIGTERM to this script) stops everything it started; so does dbpulse exiting.
#
# Environment:
#   DEMO_PG_PORT (55432), DEMO_REDIS_PORT (56379), DEMO_DBPULSE_PORT (9470),
#   DEMO_CHAT_PORT (9471), DEMO_ALERTMANAGER_PORT (9473)
#                               loopback ports; the script stops if one is taken.
#   DEMO_PGBENCH_RATE (50)      workload transactions per second (pgbench -R).
#   DEMO_PGBENCH_SECONDS (1800) workload duration (pgbench -T); dbpulse keeps running after.
#   DEMO_DURATION=N             for automated checks: run dbpulse for N seconds, then stop
#                               everything and exit 0 (non-zero if dbpulse exited early).
#                               Unset: run until Ctrl-C.
#   DBPULSE                     the binary, when no argument is given (default build/dbpulse).
#   DEMO_DIR                    the sandbox directory (default .demo/ in the checkout); it is
#                               wiped at the start, so give it a directory of its own.
#   DEMO_AGENT=0                start everything but dbpulse (writes DEMO_DIR/dbpulse.toml and
#                               waits): for tests that run and restart dbpulse themselves.
#
# As root (sessions, CI), initdb and the postgres server run as the `postgres` OS user
# (PostgreSQL refuses root); .demo/pg is owned by it. The clients (psql, pgbench) connect
# over TCP with trust auth and run as the caller.
set -euo pipefail

readonly REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly DEMO_SRC="$REPO_ROOT/packaging/demo"
DEMO_DIR="${DEMO_DIR:-$REPO_ROOT/.demo}"
[[ "$DEMO_DIR" == /* ]] || DEMO_DIR="$PWD/$DEMO_DIR"
readonly DEMO_DIR
case "$DEMO_DIR" in
  / | "$REPO_ROOT" | "$REPO_ROOT/" | "$HOME" | "$HOME/")
    printf 'demo: error: DEMO_DIR=%s would be wiped; give the sandbox a directory of its own\n' "$DEMO_DIR" >&2
    exit 1 ;;
esac
readonly PG_BIN=/usr/lib/postgresql/15/bin

PG_PORT="${DEMO_PG_PORT:-55432}"
REDIS_PORT="${DEMO_REDIS_PORT:-56379}"
DBPULSE_PORT="${DEMO_DBPULSE_PORT:-9470}"
CHAT_PORT="${DEMO_CHAT_PORT:-9471}"
AM_PORT="${DEMO_ALERTMANAGER_PORT:-9473}"
PGBENCH_RATE="${DEMO_PGBENCH_RATE:-50}"
PGBENCH_SECONDS="${DEMO_PGBENCH_SECONDS:-1800}"
DURATION="${DEMO_DURATION:-}"
DBPULSE="${1:-${DBPULSE:-$REPO_ROOT/build/dbpulse}}"
AGENT="${DEMO_AGENT:-1}"

PG_DATA="$DEMO_DIR/pg/data"
PG_LOG="$DEMO_DIR/pg/server.log"
REDIS_DIR="$DEMO_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
CHAT_PIDFILE="$DEMO_DIR/chat.pid"
AM_DIR="$DEMO_DIR/alertmanager"
AM_BIN=/usr/bin/prometheus-alertmanager

log() { printf 'demo: %s\n' "$*" >&2; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- checks

check_number() { # check_number ENV_NAME VALUE
  [[ "$2" =~ ^[0-9]+$ && "$2" -gt 0 ]] || die "$1 must be a positive whole number, got '$2'"
}
check_number DEMO_PG_PORT "$PG_PORT"
check_number DEMO_REDIS_PORT "$REDIS_PORT"
check_number DEMO_DBPULSE_PORT "$DBPULSE_PORT"
check_number DEMO_CHAT_PORT "$CHAT_PORT"
check_number DEMO_ALERTMANAGER_PORT "$AM_PORT"
check_number DEMO_PGBENCH_RATE "$PGBENCH_RATE"
check_number DEMO_PGBENCH_SECONDS "$PGBENCH_SECONDS"
[[ -z "$DURATION" ]] || check_number DEMO_DURATION "$DURATION"
if [[ "$(printf '%s\n' "$PG_PORT" "$REDIS_PORT" "$DBPULSE_PORT" "$CHAT_PORT" "$AM_PORT" | sort -u | wc -l)" -ne 5 ]]; then
  die "the five ports must differ (pg $PG_PORT, redis $REDIS_PORT, dbpulse $DBPULSE_PORT, chat $CHAT_PORT, alertmanager $AM_PORT)"
fi

[[ "$DBPULSE" == */* ]] || DBPULSE="$(command -v "$DBPULSE" || echo "$DBPULSE")"
[[ "$DBPULSE" == /* ]] || DBPULSE="$PWD/$DBPULSE"
[[ -x "$DBPULSE" && ! -d "$DBPULSE" ]] || die "dbpulse binary not found at $DBPULSE (build it: make build)"

for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/pgbench" "$PG_BIN/psql"; do
  [[ -x "$tool" ]] || die "$tool missing (install postgresql-15: bash packaging/deps.sh)"
done
for tool in redis-server redis-cli curl ps "$AM_BIN"; do
  command -v "$tool" >/dev/null || die "$tool missing (bash packaging/deps.sh)"
done
command -v node >/dev/null || die "node missing (bash packaging/deps.sh)"
bash "$DEMO_SRC/chat-server/install.sh" || die "the chat server's npm packages could not be installed"

# Run a command as the OS user that owns the PostgreSQL data directory.
if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user to run PostgreSQL as"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

port_taken() {
  if command -v ss >/dev/null; then
    [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# True while $1 is a live process (a zombie child awaiting `wait` counts as gone).
alive() {
  local stat
  stat="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
  [[ "$stat" != Z* ]]
}

# stop_pid PID NAME GRACE_SECONDS: SIGTERM, then SIGKILL after the grace period.
stop_pid() {
  local pid="$1" name="$2" grace="$3" i
  [[ -n "$pid" ]] || return 0
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name (pid $pid) did not stop within ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
}

stop_redis() {
  local pid=""
  [[ -f "$REDIS_PIDFILE" ]] && pid="$(cat "$REDIS_PIDFILE" 2>/dev/null || true)"
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  if [[ -n "$pid" ]]; then
    local i
    for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
}

stop_postgres() {
  if [[ -f "$PG_DATA/postmaster.pid" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w -t 30 >/dev/null 2>&1 ||
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m immediate -w -t 10 >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- cleanup

DBPULSE_PID=""
PGBENCH_PID=""
CHAT_PID=""
AM_PID=""
STARTED_REDIS=""
STARTED_PG=""

cleanup() {
  local rc=$?
  trap '' INT TERM # let cleanup finish even on a second Ctrl-C
  trap - EXIT
  if [[ -z "$STARTED_PG$STARTED_REDIS$CHAT_PID$AM_PID$PGBENCH_PID$DBPULSE_PID" ]]; then
    exit "$rc"
  fi
  log "stopping the sandbox"
  stop_pid "$DBPULSE_PID" dbpulse 12 # dbpulse promises a clean exit within 10 s
  stop_pid "$PGBENCH_PID" pgbench 5
  stop_pid "$CHAT_PID" "chat server" 5
  stop_pid "$AM_PID" alertmanager 5
  [[ -z "$STARTED_REDIS" ]] || stop_redis
  [[ -z "$STARTED_PG" ]] || stop_postgres
  log "stopped (logs kept in $DEMO_DIR until the next run)"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo >&2; exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- fresh .demo/

# A previous run killed with SIGKILL may have left processes behind on this .demo/.
# kill_leftover PIDFILE PATTERN: SIGTERM the pid in PIDFILE if its command line still
# matches PATTERN (the pid may have been reused since).
kill_leftover() {
  local old
  old="$(cat "$1" 2>/dev/null || true)"
  [[ "$old" =~ ^[0-9]+$ ]] || return 0
  if ps -o args= -p "$old" 2>/dev/null | grep -qF -- "$2"; then
    log "stopping leftover $(basename "$1" .pid) (pid $old) of a previous run"
    kill -TERM "$old" 2>/dev/null || true
    local i
    for ((i = 0; i < 100; i++)); do alive "$old" || return 0; sleep 0.1; done
    kill -KILL "$old" 2>/dev/null || true
  fi
}
if [[ -d "$DEMO_DIR" ]]; then
  kill_leftover "$DEMO_DIR/dbpulse.pid" "$DEMO_DIR/dbpulse.toml"
  kill_leftover "$DEMO_DIR/pgbench.pid" pgbench
  kill_leftover "$CHAT_PIDFILE" chat-server/server.js
  kill_leftover "$AM_DIR/alertmanager.pid" "$AM_DIR/alertmanager.yml"
  kill_leftover "$REDIS_PIDFILE" redis-server
  if [[ -f "$PG_DATA/postmaster.pid" ]]; then
    log "stopping a leftover PostgreSQL of a previous run"
    stop_postgres
  fi
fi

for spec in "PostgreSQL:$PG_PORT:DEMO_PG_PORT" "Redis:$REDIS_PORT:DEMO_REDIS_PORT" \
            "dbpulse:$DBPULSE_PORT:DEMO_DBPULSE_PORT" "chat server:$CHAT_PORT:DEMO_CHAT_PORT" \
            "Alertmanager:$AM_PORT:DEMO_ALERTMANAGER_PORT"; do
  IFS=: read -r what port var <<<"$spec"
  if port_taken "$port"; then
    die "port $port (for $what) is already in use on this machine; pick another with $var=PORT"
  fi
done

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/pg" "$REDIS_DIR" "$DEMO_DIR/state"
if [[ "$(id -u)" -eq 0 ]]; then
  chown postgres: "$DEMO_DIR/pg"
  as_pg test -w "$DEMO_DIR/pg" ||
    die "the postgres OS user cannot write $DEMO_DIR/pg (is a parent directory of the repo not world-traversable?)"
fi
chmod 700 "$DEMO_DIR/pg"

# ---------------------------------------------------------------- PostgreSQL

log "initdb $PG_DATA"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust --username=postgres --encoding=UTF8 \
  --locale=C.UTF-8 >"$DEMO_DIR/pg/initdb.log" 2>&1 ||
  die "initdb failed; see $DEMO_DIR/pg/initdb.log"

# Unix sockets have a ~107-byte path limit; with a deep checkout, do without one.
socket_dir="$DEMO_DIR/pg"
if (( ${#socket_dir} + 20 > 107 )); then socket_dir=""; fi
as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF

# --- dbpulse demo sandbox (packaging/demo/run.sh) ---
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$socket_dir'
shared_buffers = 64MB
max_connections = 50
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_io_timing = on
track_functions = all
log_min_duration_statement = 1s
log_autovacuum_min_duration = 0
EOF

log "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT"
STARTED_PG=1
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null ||
  die "PostgreSQL did not start; see $PG_LOG"

psql_as() { # psql_as ROLE DB [psql args...]
  local role="$1" db="$2"
  shift 2
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$role" -d "$db" "$@"
}

psql_as postgres postgres <<'EOF'
CREATE ROLE chat_app LOGIN;
CREATE ROLE dbpulse LOGIN;
GRANT pg_monitor TO dbpulse;
CREATE DATABASE chat OWNER chat_app;
\connect chat
-- Both need a superuser, hence here and not in schema.sql.
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION hypopg;
EOF

log "loading the chat schema and seed data (20k users, 5k conversations, 300k messages)"
seed_start=$(date +%s.%N)
psql_as chat_app chat -f "$DEMO_SRC/schema.sql"
psql_as chat_app chat -f "$DEMO_SRC/seed.sql" >/dev/null
seed_end=$(date +%s.%N)
log "$(awk -v a="$seed_start" -v b="$seed_end" 'BEGIN { printf "schema + seed loaded in %.1f s", b - a }')"

psql_as postgres chat >/dev/null <<'EOF'
GRANT CONNECT ON DATABASE chat TO dbpulse;
GRANT USAGE ON SCHEMA public TO dbpulse;
-- The index advisor EXPLAINs workload queries: pg_monitor alone cannot.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO dbpulse;
ALTER DEFAULT PRIVILEGES FOR ROLE chat_app IN SCHEMA public GRANT SELECT ON TABLES TO dbpulse;
-- Start statement statistics with the workload, not with the seeding.
SELECT pg_stat_statements_reset();
EOF

# ---------------------------------------------------------------- Redis

log "starting Redis on 127.0.0.1:$REDIS_PORT"
STARTED_REDIS=1
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
  --dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_PIDFILE" \
  --logfile "$REDIS_DIR/redis.log" --maxmemory 64mb --maxmemory-policy allkeys-lru
for ((i = 0; i < 50; i++)); do
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done
redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG ||
  die "Redis did not answer PING; see $REDIS_DIR/redis.log"

# What a chat server keeps there: sessions, cached profiles, presence, unread counters,
# rate limits. Then some cache-aside reads: ~80 % hits, the rest misses.
{
  for i in $(seq 1 500); do
    echo "SET session:$i user=$((i * 37 % 20000 + 1)) EX 3600"
  done
  for i in $(seq 1 200); do
    echo "HSET user:$i:profile name user$i status online"
    echo "SADD presence:online $i"
    echo "INCRBY unread:$i:$((i % 50 + 1)) $((i % 7))"
  done
  for i in $(seq 1 100); do echo "SET ratelimit:login:$i 1 EX 60"; done
  for i in $(seq 1 800); do echo "GET session:$((RANDOM % 500 + 1))"; done
  for i in $(seq 1 200); do echo "GET session:$((RANDOM % 500 + 1000))"; done
} | redis-cli -h 127.0.0.1 -p "$REDIS_PORT" >/dev/null

# ---------------------------------------------------------------- chat server

log "starting the chat server (Node, prom-client) on 127.0.0.1:$CHAT_PORT"
node "$DEMO_SRC/chat-server/server.js" --port "$CHAT_PORT" --pid-file "$CHAT_PIDFILE" \
  --redis-port "$REDIS_PORT" --traffic 30 --simulated-latency >"$DEMO_DIR/chat.log" 2>&1 &
CHAT_PID=$!
for ((i = 0; i < 100; i++)); do
  curl -fsS -o /dev/null "http://127.0.0.1:$CHAT_PORT/health" 2>/dev/null && break
  alive "$CHAT_PID" || die "the chat server exited; see $DEMO_DIR/chat.log"
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$CHAT_PORT/health" ||
  die "the chat server does not answer; see $DEMO_DIR/chat.log"

# ---------------------------------------------------------------- Alertmanager

log "starting Alertmanager on 127.0.0.1:$AM_PORT"
mkdir -p "$AM_DIR"
# One receiver that goes nowhere: the demo shows what arrives (UI and API), it pages nobody.
cat >"$AM_DIR/alertmanager.yml" <<EOF
route:
  receiver: demo
  group_by: [alertname]
  group_wait: 5s
receivers:
  - name: demo
EOF
"$AM_BIN" --config.file="$AM_DIR/alertmanager.yml" --storage.path="$AM_DIR/data" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
  >"$AM_DIR/alertmanager.log" 2>&1 &
AM_PID=$!
echo "$AM_PID" >"$AM_DIR/alertmanager.pid"
for ((i = 0; i < 100; i++)); do
  curl -fsS -o /dev/null "http://127.0.0.1:$AM_PORT/-/ready" 2>/dev/null && break
  alive "$AM_PID" || die "Alertmanager exited; see $AM_DIR/alertmanager.log"
  sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$AM_PORT/-/ready" ||
  die "Alertmanager does not answer; see $AM_DIR/alertmanager.log"

# ---------------------------------------------------------------- workload

log "starting the pgbench chat workload (${PGBENCH_RATE} tx/s for ${PGBENCH_SECONDS}s, log: $DEMO_DIR/pgbench.log)"
W="$DEMO_SRC/workload"
"$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$PG_PORT" -U chat_app \
  -c 4 -j 2 -R "$PGBENCH_RATE" -T "$PGBENCH_SECONDS" -P 30 \
  -f "$W/send_message.sql@5" -f "$W/read_latest.sql@3" \
  -f "$W/list_conversations.sql@10" -f "$W/mark_read.sql@3" \
  chat >"$DEMO_DIR/pgbench.log" 2>&1 &
PGBENCH_PID=$!
echo "$PGBENCH_PID" >"$DEMO_DIR/pgbench.pid"

# ---------------------------------------------------------------- dbpulse

esc() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
sed -e "s|@PG_PORT@|$PG_PORT|g" -e "s|@REDIS_PORT@|$REDIS_PORT|g" \
    -e "s|@DBPULSE_PORT@|$DBPULSE_PORT|g" -e "s|@CHAT_PORT@|$CHAT_PORT|g" \
    -e "s|@AM_PORT@|$AM_PORT|g" \
    -e "s|@DEMO_DIR@|$(esc "$DEMO_DIR")|g" -e "s|@RULES_DIR@|$(esc "$REPO_ROOT/rules/default")|g" \
    "$DEMO_SRC/dbpulse.toml" >"$DEMO_DIR/dbpulse.toml"

base="http://127.0.0.1:$DBPULSE_PORT"
cat >&2 <<EOF

  dbpulse demo sandbox is up:
    status page      $base/
    metrics          $base/metrics
    readiness        $base/health/ready
    chat server      http://127.0.0.1:$CHAT_PORT/metrics   (fault knob: /_demo/fault?mode=errors)
    Alertmanager     http://127.0.0.1:$AM_PORT/   (alerts from dbpulse's rule pack arrive here)
    PostgreSQL       psql -h 127.0.0.1 -p $PG_PORT -U chat_app chat
    Redis            redis-cli -p $REDIS_PORT
    logs             $DEMO_DIR/
  Press Ctrl-C to stop everything.

EOF

if [[ "$AGENT" == 0 ]]; then
  # DEMO_AGENT=0: the caller runs dbpulse with $DEMO_DIR/dbpulse.toml. Keep the sandbox up
  # for DEMO_DURATION seconds, or until stopped (the EXIT trap stops what was started).
  log "DEMO_AGENT=0: not starting dbpulse; the sandbox stays up"
  for ((i = 0; ${DURATION:-0} == 0 || i < DURATION; i++)); do
    sleep 1
  done
  exit 0
fi

log "starting $DBPULSE run --config $DEMO_DIR/dbpulse.toml"
# In the background plus `wait`, so that a SIGTERM to this script is handled at once
# (bash defers traps while a foreground child runs); the trap forwards the stop.
"$DBPULSE" run --config "$DEMO_DIR/dbpulse.toml" </dev/null &
DBPULSE_PID=$!
echo "$DBPULSE_PID" >"$DEMO_DIR/dbpulse.pid"

if [[ -n "$DURATION" ]]; then
  for ((i = 0; i < DURATION; i++)); do
    alive "$DBPULSE_PID" || break
    sleep 1
  done
  if ! alive "$DBPULSE_PID"; then
    rc=0
    wait "$DBPULSE_PID" || rc=$?
    DBPULSE_PID=""
    log "dbpulse exited after less than ${DURATION}s (status $rc)"
    exit $((rc == 0 ? 1 : rc))
  fi
  log "DEMO_DURATION=${DURATION}s elapsed"
  exit 0
fi

rc=0
wait "$DBPULSE_PID" || rc=$?
DBPULSE_PID=""
log "dbpulse exited with status $rc"
exit "$rc"
