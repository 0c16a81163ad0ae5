#!/usr/bin/env bash
# Clang's thread-safety analysis over every library source (agent, collectors, exporters,
# rules; not tests): clang++-14 -fsyntax-only -Wthread-safety -Werror on each translation
# unit of compile_commands.json from a clang build tree (TSA_BUILD, default build-tsa,
# configured here, so new sources are seen; nothing is built in it). Members named GUARDED_BY(mu) are
# touched only with mu held, REQUIRES functions only called with it (agent/core/mutex.h).
# Time: 165 s of CPU, so about 85 s on 2 idle cores (312 s measured with three builds sharing
# them). Building the library targets in a ccache'd clang tree instead costs about 3.7 times
# the CPU when cold (8.0 s against 2.2 s for agent/agent.cpp at -O2 -g), and a header change
# makes most of it cold again; nothing the analysis checks needs code generation.
#
#   tests/lint/thread_safety.sh              check the tree; exit 1 on any warning
#   tests/lint/thread_safety.sh --self-test  check that a violation is caught
#   JOBS=2                                   parallel compilers
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
build=${TSA_BUILD:-build-tsa}
jobs=${JOBS:-2}
cxx=${TSA_CXX:-clang++-14}
flags=(-fsyntax-only -Wthread-safety -Werror)

if [ "${1:-}" = "--self-test" ]; then
  # A function that writes a GUARDED_BY member without its mutex, and one that calls a
  # REQUIRES helper without it: both must be rejected, with the analysis' messages.
  out=$("$cxx" -std=c++20 -I"$root" "${flags[@]}" -x c++ - 2>&1 <<'SRC'
#include "agent/core/mutex.h"
class Counter {
 public:
  void good() { dbpulse::MutexLock lock(mu_); ++n_; bumpLocked(); }
  void unguardedWrite() { ++n_; }
  void helperWithoutLock() { bumpLocked(); }
 private:
  void bumpLocked() REQUIRES(mu_) { ++n_; }
  dbpulse::Mutex mu_;
  int n_ GUARDED_BY(mu_) = 0;
};
SRC
  )
  status=$?
  if [ $status -eq 0 ]; then
    echo "thread_safety self-test: a violation compiled cleanly" >&2
    exit 1
  fi
  for want in "writing variable 'n_' requires holding mutex 'mu_'" \
              "calling function 'bumpLocked' requires holding mutex 'mu_'"; do
    if ! grep -qF "$want" <<<"$out"; then
      echo "thread_safety self-test: missing \"$want\" in:" >&2
      echo "$out" >&2
      exit 1
    fi
  done
  # The correct use alone compiles.
  if ! "$cxx" -std=c++20 -I"$root" "${flags[@]}" -x c++ - -o /dev/null <<'SRC'
#include <condition_variable>
#include "agent/core/mutex.h"
class Queue {
 public:
  void put() { { dbpulse::MutexLock lock(mu_); ++n_; } cv_.notify_one(); }
  void take() {
    dbpulse::MutexLock lock(mu_);
    cv_.wait(lock, [this]() REQUIRES(mu_) { return n_ > 0; });
    --n_;
    lock.unlock();
    lock.lock();
    ++n_;
  }
 private:
  dbpulse::Mutex mu_;
  std::condition_variable_any cv_;
  int n_ GUARDED_BY(mu_) = 0;
};
SRC
  then
    echo "thread_safety self-test: correct locking was rejected" >&2
    exit 1
  fi
  echo "thread_safety self-test: ok"
  exit 0
fi

start=$(date +%s)
mkdir -p "$build"
if ! cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER="$cxx" \
    -DDBPULSE_BUILD_BENCH=OFF >"$build/configure.log" 2>&1; then
  cat "$build/configure.log" >&2
  echo "thread_safety: cmake failed" >&2
  exit 2
fi
# One line per library translation unit: its compile command, minus output and
# optimisation, plus the analysis flags.
list=$("${DBPULSE_PYTHON3:-python3}" - "$build/compile_commands.json" "$root" "$cxx" "${flags[@]}" <<'PY'
import json, shlex, sys
root = sys.argv[2].rstrip("/") + "/"
cxx, flags = sys.argv[3], sys.argv[4:]
for entry in json.load(open(sys.argv[1])):
    path = entry["file"]
    if not path.startswith(root) or path[len(root):].split("/")[0] not in (
            "agent", "collectors", "exporters", "rules"):
        continue
    args = shlex.split(entry["command"])[1:]
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-c"):
            skip = True
            continue
        if a.startswith("-O") or a == "-g":
            continue
        keep.append(a)
    print(shlex.join([cxx] + keep + flags + [path]))
PY
)
count=$(wc -l <<<"$list")
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! xargs -d '\n' -n 1 -P "$jobs" sh -c <<<"$list" >"$log" 2>&1; then
  cat "$log"
  echo "thread_safety: FAILED ($count sources, $(($(date +%s) - start)) s)" >&2
  exit 1
fi
echo "thread_safety: $count library sources clean ($(($(date +%s) - start)) s)"
