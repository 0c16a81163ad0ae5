#pragma once
// Waiting for a condition with a deadline: the integration tests' replacement for sleep.

#include <chrono>
#include <functional>

namespace dbpulse::testing {

// Evaluates `cond` until it returns true (-> true) or `timeout` has passed (-> false).
// `cond` runs at least once, and once more at the deadline, so a condition that becomes
// true just before the deadline is not missed. Exceptions from `cond` propagate.
bool pollUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = std::chrono::milliseconds(50));

// The wall clock as Unix seconds (what Prometheus and dbpulse's timestamps count in).
inline double nowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace dbpulse::testing
