#!/usr/bin/env bash
# Runs promtool (Debian package `prometheus`) for the rule-pack tests registered in
# tests/rules/CMakeLists.txt: run_promtool.sh check rules FILE... | test rules FILE...
# promtool is taken from $PROMTOOL, else from PATH. When it is missing the test is skipped
# (exit 77, which CTest reports as skipped) — except under CI=true, where a missing tool is
# a failure, never a silent skip.
set -euo pipefail

promtool="${PROMTOOL:-$(command -v promtool || true)}"
if [ -z "$promtool" ] || [ ! -x "$promtool" ]; then
  echo "run_promtool.sh: promtool not found (install Debian's 'prometheus' package:" \
       "packaging/deps.sh, or set PROMTOOL=/path/to/promtool)" >&2
  if [ "${CI:-}" = "true" ]; then
    echo "run_promtool.sh: CI=true, so this is a failure, not a skip" >&2
    exit 1
  fi
  exit 77
fi

if [ $# -lt 3 ]; then
  echo "usage: run_promtool.sh check rules FILE... | test rules FILE..." >&2
  exit 2
fi

exec "$promtool" "$@"
