#pragma once
// The one test clock: wall and monotonic time that move only when the test says so.
// Both start at fixed values and advance() moves them together; setWall()/stepBack()
// move the wall clock alone (an NTP step), never the monotonic one. Thread-safe, so a
// scheduler's threads may read it while the test advances it.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "agent/core/clock.h"

namespace dbpulse::fakes {

inline constexpr int64_t kFakeWallStartMs = 1'700'000'000'000;  // 2023-11-14T22:13:20Z

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t wall_ms = kFakeWallStartMs) : wall_ms_(wall_ms) {}

  WallTime now() const override { return WallTime(std::chrono::milliseconds(wall_ms_.load())); }
  MonotonicTime monotonicNow() const override {
    return MonotonicTime(std::chrono::milliseconds(mono_ms_.load()));
  }

  // Moves both clocks forward by `d`.
  void advance(std::chrono::milliseconds d) {
    wall_ms_ += d.count();
    mono_ms_ += d.count();
  }
  // Steps the wall clock alone.
  void setWallMillis(int64_t t_ms) { wall_ms_ = t_ms; }
  void stepBack(std::chrono::milliseconds d) { wall_ms_ -= d.count(); }
  int64_t wallMillis() const { return wall_ms_.load(); }

 private:
  std::atomic<int64_t> wall_ms_;
  // Starts well away from the epoch so "now - interval" never underflows in a test.
  std::atomic<int64_t> mono_ms_{1'000'000'000};
};

}  // namespace dbpulse::fakes
