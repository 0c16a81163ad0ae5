#!/usr/bin/env bash
# PostgreSQL collectors at scale: how long does a full run of every PostgreSQL collector
# take on a database with 2,000 tables x 2 indexes and 5,000 distinct statements?
#
#   bash tests/bench/pg_collectors_bench.sh [PATH_TO_DBPULSE]     (default: build/dbpulse)
#
# Starts a throwaway PostgreSQL 15 on loopback (initdb into a temp dir; pg_stat_statements
# preloaded with pg_stat_statements.max = 10000 so that the 5,000 statements all fit),
# creates the schema and runs the workload, then runs `dbpulse once` RUNS times with every
# PostgreSQL collector that this build has enabled (the local ones off) and prints, per
# collector, the median of dbpulse_collector_duration_seconds, plus the median sum and the
# median wall time of the whole `dbpulse once`. Each `once` is a new connection, so these
# are cold figures (PostgreSQL's relation and catalog caches of the session are empty).
# Then it runs the daemon (`dbpulse run`, every collector every 2 s, one worker thread)
# until each collector has run RUNS times and prints the last run's durations: the steady
# state of long-lived sessions. Everything it started is stopped on exit.
#
# Environment: BENCH_PG_PORT (55499), BENCH_DBPULSE_PORT (55498), TABLES (2000),
# STATEMENTS (5000), RUNS (5), KEEP=1 keeps the temp dir (printed) for a look afterwards.
# The machine is shared: compare figures of one run, and note the load average (printed).
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly PG_BIN=/usr/lib/postgresql/15/bin
DBPULSE="${1:-$ROOT/build/dbpulse}"
PORT="${BENCH_PG_PORT:-55499}"
TABLES="${TABLES:-2000}"
STATEMENTS="${STATEMENTS:-5000}"
RUNS="${RUNS:-5}"
DBPULSE_PORT="${BENCH_DBPULSE_PORT:-55498}"

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

[[ -x "$DBPULSE" ]] || die "dbpulse binary not found at $DBPULSE (build it first)"
for tool in initdb pg_ctl psql; do
  [[ -x "$PG_BIN/$tool" ]] || die "$PG_BIN/$tool missing (install postgresql-15: bash packaging/deps.sh)"
done
for n in "$PORT" "$DBPULSE_PORT" "$TABLES" "$STATEMENTS" "$RUNS"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] ||
    die "BENCH_PG_PORT, BENCH_DBPULSE_PORT, TABLES, STATEMENTS and RUNS must be positive numbers"
done
for p in "$PORT" "$DBPULSE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "port $p is in use; pick others with BENCH_PG_PORT / BENCH_DBPULSE_PORT"
  fi
done
command -v curl >/dev/null || die "curl missing"

WORK="$(mktemp -d /tmp/dbpulse-pgbench-XXXXXX)"
chmod 755 "$WORK"
if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' OS user"
  as_pg() { runuser -u postgres -- "$@"; }
  mkdir "$WORK/pg" && chown postgres: "$WORK/pg"
else
  as_pg() { "$@"; }
  mkdir "$WORK/pg"
fi
PG_DATA="$WORK/pg/data"
STARTED_PG=""
DAEMON_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$DAEMON_PID" ]]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  if [[ -n "$STARTED_PG" ]]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w -t 30 >/dev/null 2>&1 ||
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m immediate -w >/dev/null 2>&1 || true
  fi
  if [[ "${KEEP:-}" == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "initdb $PG_DATA"
as_pg "$PG_BIN/initdb" -D "$PG_DATA" --auth=trust --username=postgres >"$WORK/initdb.log" 2>&1 ||
  die "initdb failed; see $WORK/initdb.log"
as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$WORK/pg'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.max = 10000
fsync = off
synchronous_commit = off
full_page_writes = off
# The schema is created in one transaction: ~10,000 new relations, each locked until commit.
max_locks_per_transaction = 256
EOF
STARTED_PG=1
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/server.log" -w -t 60 start >/dev/null ||
  die "PostgreSQL did not start; see $WORK/pg/server.log"

psql_db() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d "$1"; }

log "schema: $TABLES tables x 2 indexes (primary key + one secondary), 20 rows each"
t0=$(date +%s.%N)
psql_db postgres <<<"CREATE DATABASE bench;"
psql_db bench >/dev/null <<SQL
CREATE EXTENSION pg_stat_statements;
DO \$\$
BEGIN
  FOR i IN 1..$TABLES LOOP
    EXECUTE format('CREATE TABLE bench_t%s (id bigint PRIMARY KEY, a int NOT NULL, b text, c timestamptz)', i);
    EXECUTE format('CREATE INDEX bench_t%s_a_idx ON bench_t%s (a)', i, i);
    EXECUTE format('INSERT INTO bench_t%s SELECT g, g %% 7, md5(g::text), now() FROM generate_series(1, 20) g', i);
  END LOOP;
END
\$\$;
ANALYZE;
SELECT pg_stat_statements_reset();
SQL


log "workload: $STATEMENTS distinct statements"
{
  n=0
  for kind in 1 2 3; do
    for ((i = 1; i <= TABLES && n < STATEMENTS; i++, n++)); do
      case $kind in
        1) echo "SELECT a FROM bench_t$i WHERE id = 1;" ;;
        2) echo "SELECT b FROM bench_t$i WHERE a = 2;" ;;
        3) echo "SELECT count(*) FROM bench_t$i;" ;;
      esac
    done
  done
} | psql_db bench >/dev/null
t1=$(date +%s.%N)
tracked=$(psql_db bench <<<"\\pset tuples_only on
SELECT count(*) FROM pg_stat_statements;" | tr -d ' \n')
log "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "set up in %.1f s", b - a }'); pg_stat_statements entries: $tracked"

# Every collector of the catalogue that uses PostgreSQL; a name this build does not have
# yet ("not built") is accepted by the config and simply not scheduled.
cat >"$WORK/dbpulse.toml" <<EOF
[agent]
listen = "127.0.0.1:$DBPULSE_PORT"
state_dir = "$WORK/state"
log_format = "text"

[postgres]
dsn = "host=127.0.0.1 port=$PORT dbname=bench user=postgres"
statement_timeout = "10s"

[collectors.connections]
enabled = true
[collectors.statements]
enabled = true
[collectors.indexes]
enabled = true
[collectors.cache]
enabled = true
[collectors.tables]
enabled = true
[collectors.size]
enabled = true
[collectors.locks]
enabled = true
[collectors.replication]
enabled = true
[collectors.pgbouncer]
enabled = false
[collectors.redis]
enabled = false
[collectors.process]
enabled = false
[collectors.companion]
enabled = false
EOF
mkdir -p "$WORK/state"

log "dbpulse once x $RUNS"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
: >"$WORK/durations.tsv"
for ((run = 1; run <= RUNS; run++)); do
  s=$(date +%s.%N)
  rc=0
  "$DBPULSE" once --config "$WORK/dbpulse.toml" >"$WORK/once-$run.prom" 2>"$WORK/once-$run.err" || rc=$?
  e=$(date +%s.%N)
  [[ $rc -eq 0 ]] || { cat "$WORK/once-$run.err" >&2; die "dbpulse once exited with $rc (run $run)"; }
  awk -v run="$run" -v wall="$(awk -v a="$s" -v b="$e" 'BEGIN { print b - a }')" '
    /^dbpulse_collector_duration_seconds\{/ {
      match($0, /collector="[^"]*"/); c = substr($0, RSTART + 11, RLENGTH - 12)
      print run "\t" c "\t" $NF; sum += $NF
    }
    END { print run "\t(sum)\t" sum; print run "\t(wall of dbpulse once)\t" wall }' \
    "$WORK/once-$run.prom" >>"$WORK/durations.tsv"
done

series=$(grep -vc '^#' "$WORK/once-1.prom" || true)
printf '\n%s tables x 2 indexes, %s pg_stat_statements entries, %s runs, %s series per run\n' \
  "$TABLES" "$tracked" "$RUNS" "$series"
printf 'load average (1, 5, 15 min) before the runs: %s\n' "$load_before"
printf '%-26s %10s %10s %10s\n' collector "median ms" "min ms" "max ms"
# Rows sorted by collector, then duration: median, min and max per group (POSIX awk).
sort -t"$(printf '\t')" -k2,2 -k3,3g "$WORK/durations.tsv" | awk -F'\t' '
  function flush() {
    if (m == 0) return
    med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
    printf "%-26s %10.1f %10.1f %10.1f\n", c, med, v[1], v[m]
  }
  $2 != c { flush(); c = $2; m = 0 }
  { v[++m] = $3 * 1000 }
  END { flush() }'
printf '\nper-collector figures: dbpulse_collector_duration_seconds of each `dbpulse once` run\n'
printf '(collectors run one after another in `once`, so (sum) is the full run).\n'

log "steady state: dbpulse run, every collector every 2 s, until each has run $RUNS times"
# One worker thread: the collectors run one after another, as in `once`, so a duration
# is the collector's own and not time spent waiting for a session or a core.
sed -e 's/^enabled = true$/enabled = true\ninterval = "2s"\ntimeout = "1900ms"/' \
  -e 's/^\[agent\]$/[agent]\nworker_threads = 1/' \
  "$WORK/dbpulse.toml" >"$WORK/dbpulse-run.toml"
"$DBPULSE" run --config "$WORK/dbpulse-run.toml" >"$WORK/run.log" 2>&1 &
DAEMON_PID=$!
scrape=""
for ((i = 0; i < 120; i++)); do
  sleep 0.5
  kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$WORK/run.log" >&2; die "dbpulse run exited"; }
  scrape="$(curl -fsS "http://127.0.0.1:$DBPULSE_PORT/metrics" 2>/dev/null || true)"
  fewest=$(printf '%s\n' "$scrape" | awk '/^dbpulse_collector_runs_total\{/ { n++; if (min == "" || $NF < min) min = $NF }
                                        END { print (n ? min : 0) }')
  [[ "$fewest" -ge "$RUNS" ]] && break
done
[[ "$fewest" -ge "$RUNS" ]] || die "collectors did not reach $RUNS runs within a minute"
printf '\nsteady state (last run of a long-lived session, after %s runs each)\n' "$RUNS"
printf '%s\n' "$scrape" | awk '
  /^dbpulse_collector_duration_seconds\{/ {
    match($0, /collector="[^"]*"/); c = substr($0, RSTART + 11, RLENGTH - 12)
    printf "%-26s %10.1f ms\n", c, $NF * 1000; sum += $NF
  }
  END { printf "%-26s %10.1f ms\n", "(sum)", sum * 1000 }'
