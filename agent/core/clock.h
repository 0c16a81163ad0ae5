#pragma once
// The time source behind sample timestamps, staleness and scheduling, injected so tests
// control time (Envoy's TimeSource shape):
// - wallNow(): calendar time, for timestamps; may jump (NTP, an operator).
// - monotonicNow(): never goes back, for intervals, due times and deadlines; the same
//   clock as std::chrono::steady_clock in production, so deadlines handed to clients
//   (CollectContext::deadline) compare with theirs.
// now() is wallNow() under its older name. Thread-safe: implementations may be called from
// any thread.

#include <chrono>
#include <cstdint>

namespace dbpulse {

using WallTime = std::chrono::system_clock::time_point;
using MonotonicTime = std::chrono::steady_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual WallTime now() const = 0;
  // Defaults to the real steady clock so existing wall-only clocks keep compiling; a test
  // clock that drives scheduling overrides it (tests/fakes/fake_clock.h).
  virtual MonotonicTime monotonicNow() const { return std::chrono::steady_clock::now(); }
  WallTime wallNow() const { return now(); }
};

class SystemClock final : public Clock {
 public:
  WallTime now() const override { return std::chrono::system_clock::now(); }
  MonotonicTime monotonicNow() const override { return std::chrono::steady_clock::now(); }
};

inline int64_t toMillis(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace dbpulse
