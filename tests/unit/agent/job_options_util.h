#pragma once
// JobOptions for scheduler tests: a fixed interval and timeout, no splay.

#include <chrono>

#include "agent/schedule_plan.h"

namespace dbpulse {

inline JobOptions every(std::chrono::milliseconds interval, std::chrono::milliseconds timeout) {
  JobOptions o;
  o.interval = interval;
  o.timeout = timeout;
  o.jitter = 0;
  return o;
}

}  // namespace dbpulse
