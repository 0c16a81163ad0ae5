#!/usr/bin/env bash
# clang-tidy (.clang-tidy: bugprone-*, a few performance-* and modernize-*) over every
# library source (agent, collectors, exporters, rules; not tests), with run-clang-tidy-14
# and the compile commands of the clang tree TSA_BUILD (default build-tsa, configured here;
# nothing is built in it). Exit 1 on any finding.
# Time: 8-9.5 min of CPU; 278-338 s measured on 2 cores (1054 s with other builds sharing
# them). Part of .ci/run, after tests/lint/thread_safety.sh (which configures the same
# build-tsa tree).
#
#   JOBS=2   parallel clang-tidy processes
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${TSA_BUILD:-build-tsa}
jobs=${JOBS:-2}
start=$(date +%s)
mkdir -p "$build"
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DDBPULSE_BUILD_BENCH=OFF >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "clang_tidy: cmake failed" >&2
  exit 2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! run-clang-tidy-14 -p "$build" -j "$jobs" -quiet \
    "^$root/(agent|collectors|exporters|rules)/.*\.cpp\$" >"$log" 2>&1; then
  grep -E "(warning|error):" "$log" | sort -u
  echo "clang_tidy: FAILED ($(($(date +%s) - start)) s); full output above the summary:" >&2
  tail -n 5 "$log" >&2
  exit 1
fi
echo "clang_tidy: library sources clean ($(($(date +%s) - start)) s)"
