#include "agent/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace dbpulse {
namespace {

double secondsBetween(WallTime from, WallTime to) {
  // A clock stepped back (NTP) must not freeze the refill for as long as it stepped.
  if (to <= from) return 0;
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

RateLimiter::RateLimiter(const Clock& clock, std::size_t max_clients)
    : clock_(clock), max_clients_(std::max<std::size_t>(1, max_clients)) {}

RateLimiter::Decision RateLimiter::take(const std::string& client, const RateLimit& limit) {
  if (limit.per_second <= 0) return {};
  const double burst = std::max(1.0, limit.burst);
  const WallTime now = clock_.now();
  MutexLock lock(mu_);
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() >= max_clients_) makeRoom(now, limit);
    it = buckets_.emplace(client, Bucket{burst, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = std::min(burst, b.tokens + secondsBetween(b.updated, now) * limit.per_second);
  b.updated = now;
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return {};
  }
  const double wait = (1 - b.tokens) / limit.per_second;
  return {false, std::max(1, static_cast<int>(std::ceil(wait)))};
}

void RateLimiter::makeRoom(WallTime now, const RateLimit& limit) {
  const double burst = std::max(1.0, limit.burst);
  std::erase_if(buckets_, [&](const auto& entry) {
    const Bucket& b = entry.second;
    return b.tokens + secondsBetween(b.updated, now) * limit.per_second >= burst;
  });
  if (buckets_.size() < max_clients_) return;
  auto oldest = std::min_element(
      buckets_.begin(), buckets_.end(),
      [](const auto& a, const auto& b) { return a.second.updated < b.second.updated; });
  buckets_.erase(oldest);
}

std::size_t RateLimiter::clients() const {
  MutexLock lock(mu_);
  return buckets_.size();
}

}  // namespace dbpulse
