#!/usr/bin/env bash
# Builds the libFuzzer targets (clang-14, ASan + UBSan; tests/fuzz/CMakeLists.txt) in their
# own tree and runs each for a bounded time from a copy of its seed corpus
# (tests/fuzz/corpus/NAME; the copy may grow, the checked-in seeds do not change).
# Exit 0 when no fuzzer found anything; 1 when one crashed, leaked, timed out or ran out of
# memory (its input is printed, with the command that replays it); 2 on a build failure.
#
#   FUZZ_SECONDS=60        time per fuzzer
#   FUZZ_BUILD=build-fuzz  the clang build tree (configured here when it does not exist)
#   FUZZ_TARGETS="config redis"  run only these (names without _fuzzer); default: all
#   FUZZ_TIMEOUT=10        seconds one input may take before it counts as a hang
#   FUZZ_RSS_MB=2048       memory limit of a fuzzer process
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD:-build-fuzz}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
corpus_dir=$root/tests/fuzz/corpus

targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
  targets=$(ls "$corpus_dir")
fi

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
  mkdir -p "$build"
  cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DDBPULSE_BUILD_BENCH=OFF "${launcher[@]}" >"$build/configure.log" 2>&1 || {
    cat "$build/configure.log"
    echo "run_fuzzers: cmake failed" >&2
    exit 2
  }
fi
names=()
for t in $targets; do names+=("${t}_fuzzer"); done
if ! ninja -C "$build" -j "$(nproc)" "${names[@]}"; then
  echo "run_fuzzers: build failed" >&2
  exit 2
fi
echo "run_fuzzers: build took $(($(date +%s) - start)) s"

failed=()
for t in $targets; do
  bin=$root/$build/tests/fuzz/${t}_fuzzer
  work=$root/$build/fuzz-run/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp "$corpus_dir/$t"/* "$work/corpus/"
  echo "run_fuzzers: $t for ${seconds} s"
  t0=$(date +%s)
  # detect_leaks is on by default under ASan; say so, as a leak must fail the run.
  (cd "$work" && ASAN_OPTIONS=detect_leaks=1:${ASAN_OPTIONS:-} \
    "$bin" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 corpus >"$work/log" 2>&1)
  rc=$?
  stats=$(grep -E '^stat::number_of_executed_units' "$work/log" | awk '{print $2}')
  echo "run_fuzzers: $t: exit $rc, ${stats:-?} runs in $(($(date +%s) - t0)) s, corpus $(ls "$work/corpus" | wc -l) files"
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    tail -n 60 "$work/log"
    for a in "$work"/artifacts/*; do
      [ -e "$a" ] || continue
      echo "run_fuzzers: $t: input that failed: $a"
      echo "  replay: $bin $a   (or $build/tests/fuzz/${t}_fuzz_replay $a with any compiler)"
      echo "  keep it: cp $a tests/fuzz/corpus/$t/ once fixed"
    done
  fi
done

echo "run_fuzzers: all done in $(($(date +%s) - start)) s"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_fuzzers: FAILED: ${failed[*]} (logs in $build/fuzz-run/NAME/log)" >&2
  exit 1
fi
echo "run_fuzzers: no crash, leak or timeout"
