#include "integration/harness/poll.h"

#include <thread>

namespace dbpulse::testing {

bool pollUntil(const std::function<bool()>& cond, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (cond()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(interval, deadline - now));
    if (std::chrono::steady_clock::now() >= deadline) return cond();
  }
}

}  // namespace dbpulse::testing
