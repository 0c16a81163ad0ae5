#pragma once
// Per-client token buckets (the admin API's rate limit). Each key (a client address) holds
// up to `burst` tokens and gains `per_second` tokens a second; a call takes one token or is
// refused with the whole seconds until the next token. The limits are passed on each call,
// so a reload changes them at once. Time comes from the injected Clock (a clock that steps
// back is treated as no time passing). At most `max_clients` buckets are kept: past that,
// full buckets (clients idle long enough to have refilled) are forgotten first, then the
// least recently used. Thread-safe.

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

#include "agent/core/clock.h"
#include "agent/core/mutex.h"

namespace dbpulse {

struct RateLimit {
  double per_second = 10;  // <= 0: unlimited
  double burst = 20;       // bucket size, at least 1 token
};

class RateLimiter {
 public:
  struct Decision {
    bool allowed = true;
    int retry_after_seconds = 0;  // when refused: >= 1
  };

  explicit RateLimiter(const Clock& clock, std::size_t max_clients = 10'000);

  Decision take(const std::string& client, const RateLimit& limit);

  std::size_t clients() const;  // buckets held, for tests

 private:
  struct Bucket {
    double tokens = 0;
    WallTime updated;
  };
  void makeRoom(WallTime now, const RateLimit& limit) REQUIRES(mu_);

  const Clock& clock_;
  const std::size_t max_clients_;
  mutable Mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_ GUARDED_BY(mu_);
};

}  // namespace dbpulse
