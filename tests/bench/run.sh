#!/usr/bin/env bash
# `make bench`: the figures in the README's performance section.
#   1. Google Benchmark: /metrics rendering of 1,000 and 5,000 series from memory, plain
#      and gzip-encoded; the status page (GET /) from 15 minutes of in-memory history.
#   2. The demo sandbox (packaging/demo/run.sh) with wrk against /metrics:
#      latency percentiles of real scrapes, and dbpulse's RSS while idle.
# Only loopback traffic; each wrk run is bounded (10 s), plain and with gzip.
set -euo pipefail
BUILD="${1:-build}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

echo "== Google Benchmark: exposition, alert outbox, rules, status page"
"$BUILD/tests/bench/dbpulse_bench" --benchmark_min_time=0.5

PORT="${DEMO_DBPULSE_PORT:-9470}"
echo "== demo + wrk against http://127.0.0.1:$PORT/metrics"
DEMO_DURATION=120 bash packaging/demo/run.sh "$BUILD/dbpulse" >/tmp/dbpulse-bench-demo.log 2>&1 &
demo=$!
trap 'kill -INT $demo 2>/dev/null || true; wait $demo 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1; then break; fi
  sleep 0.5
done
curl -fsS "http://127.0.0.1:$PORT/health/ready" >/dev/null || { echo "demo did not become ready"; tail -30 /tmp/dbpulse-bench-demo.log; exit 1; }
series=$(curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -vc '^#')
echo "series on /metrics: $series"
echo "bytes per scrape: plain $(curl -fsS -o /dev/null -w '%{size_download}' "http://127.0.0.1:$PORT/metrics")," \
  "gzip $(curl -fsS -o /dev/null -H 'Accept-Encoding: gzip' -w '%{size_download}' "http://127.0.0.1:$PORT/metrics")"
echo "-- plain text"
wrk -t2 -c10 -d10s --latency "http://127.0.0.1:$PORT/metrics"
echo "-- Accept-Encoding: gzip (as Prometheus scrapes)"
wrk -t2 -c10 -d10s --latency -H "Accept-Encoding: gzip" "http://127.0.0.1:$PORT/metrics"

pid=$(pgrep -f "dbpulse run --config $ROOT/.demo/dbpulse.toml" | head -1)
sleep 20  # let the agent go idle after wrk: this is the state being measured
echo "dbpulse idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status), peak (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
