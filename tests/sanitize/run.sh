#!/usr/bin/env bash
# Sanitizer runs, each in a build tree of its own beside build/ (CI, .ci/run, runs both):
#
#   build-tsan   -DDBPULSE_SANITIZE=thread             ThreadSanitizer
#   build-asan   -DDBPULSE_SANITIZE=address,undefined  AddressSanitizer + UBSan (+ LeakSanitizer)
#
# Each builds the agent and the two gtest binaries, then runs every unit test and the
# concurrency-heavy integration suites (the agent's threads, reload, stop, hung and
# cancelled servers, HTTP under load, leader election) against real servers; the agent
# binary those suites start is the sanitized one. A report fails the run (halt_on_error):
# in the test process directly, in a spawned agent through its exit status.
#
#   tests/sanitize/run.sh [tsan|asan]...     (default: both)
#
# SANITIZE_JOBS (default nproc) parallel compile jobs. GCC's TSan cannot instrument
# std::atomic_thread_fence (Boost.Asio uses one) and warns (-Wtsan); the warning is kept
# from failing the -Werror build, and tsan.supp holds what is suppressed, with why.
set -euo pipefail

readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly JOBS="${SANITIZE_JOBS:-$(nproc)}"
export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=1
LAUNCHER=()
if command -v ccache >/dev/null; then
  LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# The integration suites that exercise the agent's concurrency. The 20-sidecar election
# test is left out: 20 sanitized agents do not fit the machine's memory and time.
readonly INTEGRATION_FILTER="AgentE2ETest.*:HungPostgresTest.*:HardeningTest.*:HttpLivenessTest.*:\
PgSessionCancelTest.*:RedisCollectorInProcessTest.*:CompanionCollectorTest.*:AlertmanagerTest.*:\
AlertmanagerE2ETest.*:RulesE2ETest.*:LeaderElectionTest.*:-LeaderElectionTest.TwentySidecars*"

log() { printf 'sanitize: %s\n' "$*" >&2; }

run_tree() { # run_tree NAME SANITIZERS EXTRA_CXX_FLAGS
  local name="$1" sanitizers="$2" flags="$3" dir="$ROOT/build-$1" start=$SECONDS
  if [[ ! -f "$dir/build.ninja" ]]; then
    cmake -S "$ROOT" -B "$dir" -G Ninja "${LAUNCHER[@]}" -DDBPULSE_SANITIZE="$sanitizers" \
      -DCMAKE_CXX_FLAGS="$flags" >/dev/null
  fi
  log "$name: building ($sanitizers)"
  cmake --build "$dir" -j "$JOBS" --target dbpulse dbpulse_unit_tests dbpulse_integration_tests
  log "$name: built in $((SECONDS - start)) s; unit tests"
  "$dir/tests/dbpulse_unit_tests" --gtest_brief=1
  log "$name: integration suites: $INTEGRATION_FILTER"
  "$dir/tests/dbpulse_integration_tests" --gtest_brief=1 --gtest_filter="$INTEGRATION_FILTER"
  log "$name: passed in $((SECONDS - start)) s"
}

export CI="${CI:-true}"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/tests/sanitize/tsan.supp"
export ASAN_OPTIONS="abort_on_error=0 detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp"

runs=("$@")
[[ ${#runs[@]} -gt 0 ]] || runs=(tsan asan)
for r in "${runs[@]}"; do
  case "$r" in
    tsan) run_tree tsan thread "-Wno-tsan" ;;
    asan) run_tree asan address,undefined "" ;;
    *) log "unknown run '$r' (tsan or asan)"; exit 2 ;;
  esac
done
