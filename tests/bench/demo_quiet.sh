#!/usr/bin/env bash
# A healthy demo fires nothing: runs the `make demo` sandbox (packaging/demo/run.sh: the
# chat schema, a pgbench workload, the Node chat server with its traffic, Redis,
# Alertmanager and the shipped rule pack) for DEMO_QUIET_SECONDS (1800) and polls
# dbpulse's /admin/alerts and Alertmanager's /api/v2/alerts every 15 s. Exits 1 naming
# every alert that was pending or firing at some poll (or that Alertmanager received),
# 0 when there was none.
#
#   bash tests/bench/demo_quiet.sh [BUILD_DIR]          (make demo-quiet)
#
# The demo's fixed loopback ports must be free (see run.sh). The binary is copied first, so
# a rebuild during the run does not touch the running agent.
set -euo pipefail

readonly REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:-$REPO_ROOT/build}"
SECONDS_TO_RUN="${DEMO_QUIET_SECONDS:-1800}"
DBPULSE_PORT="${DEMO_DBPULSE_PORT:-9470}"
AM_PORT="${DEMO_ALERTMANAGER_PORT:-9473}"

work="$(mktemp -d)"
cp "$BUILD/dbpulse" "$work/dbpulse"
log="$work/demo.log"
seen="$work/seen"
: >"$seen"
# One line per alert that is pending or firing, from either JSON answer on stdin.
cat >"$work/alerts.py" <<'PY'
import json, sys
source, elapsed = sys.argv[1], sys.argv[2]
doc = json.load(sys.stdin)
alerts = doc.get("alerts", []) if source == "dbpulse" else doc
for a in alerts:
    state = a.get("state") if source == "dbpulse" else a.get("status", {}).get("state")
    if source == "dbpulse" and state not in ("pending", "firing"):
        continue
    labels = ",".join(f"{k}={v}" for k, v in sorted(a.get("labels", {}).items()))
    print(f"{elapsed} s: {source} {state}: {labels}")
PY

# The demo runs its own clock (DEMO_DURATION) a little past ours, and is stopped at the end.
DEMO_DURATION=$((SECONDS_TO_RUN + 120)) bash "$REPO_ROOT/packaging/demo/run.sh" \
  "$work/dbpulse" >"$log" 2>&1 &
demo=$!
cleanup() {
  kill -TERM "$demo" 2>/dev/null || true
  wait "$demo" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 240); do
  curl -fsS "http://127.0.0.1:$DBPULSE_PORT/health/ready" >/dev/null 2>&1 && break
  kill -0 "$demo" 2>/dev/null || { tail -40 "$log" >&2; echo "demo-quiet: the demo exited" >&2; exit 1; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$DBPULSE_PORT/health/ready" >/dev/null ||
  { tail -40 "$log" >&2; echo "demo-quiet: dbpulse not ready within 240 s" >&2; exit 1; }
echo "demo-quiet: demo ready; watching alerts for $SECONDS_TO_RUN s" >&2

start=$(date +%s)
polls=0
while (($(date +%s) - start < SECONDS_TO_RUN)); do
  kill -0 "$demo" 2>/dev/null || { tail -40 "$log" >&2; echo "demo-quiet: the demo exited" >&2; exit 1; }
  elapsed=$(($(date +%s) - start))
  curl -fsS "http://127.0.0.1:$DBPULSE_PORT/admin/alerts" 2>/dev/null |
    python3 "$work/alerts.py" dbpulse "$elapsed" >>"$seen" ||
    echo "$elapsed s: /admin/alerts did not answer" >>"$seen"
  curl -fsS "http://127.0.0.1:$AM_PORT/api/v2/alerts" 2>/dev/null |
    python3 "$work/alerts.py" alertmanager "$elapsed" >>"$seen" || true
  polls=$((polls + 1))
  sleep 15
done

if [[ -s "$seen" ]]; then
  echo "demo-quiet: FAILED: alerts during $SECONDS_TO_RUN s of a healthy demo ($polls polls):" >&2
  sort -t: -k2 -u "$seen" | head -50 >&2
  exit 1
fi
echo "demo-quiet: ok: no alert pending or firing in $polls polls over $SECONDS_TO_RUN s" >&2
