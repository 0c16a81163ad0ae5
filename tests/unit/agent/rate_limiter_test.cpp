#include "agent/rate_limiter.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "agent/admin_audit.h"
#include "tests/fakes/fake_clock.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;

using fakes::FakeClock;

int allowedOf(RateLimiter& limiter, const std::string& client, const RateLimit& limit, int calls) {
  int allowed = 0;
  for (int i = 0; i < calls; ++i) allowed += limiter.take(client, limit).allowed ? 1 : 0;
  return allowed;
}

TEST(RateLimiterTest, BurstThenRefusedWithRetryAfter) {
  FakeClock clock;
  RateLimiter limiter(clock);
  const RateLimit limit{10, 20};
  EXPECT_EQ(allowedOf(limiter, "10.0.0.1", limit, 20), 20);
  const RateLimiter::Decision d = limiter.take("10.0.0.1", limit);
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_seconds, 1);  // one token in 0.1 s: rounded up to whole seconds
}

TEST(RateLimiterTest, RefillsAtTheRate) {
  FakeClock clock;
  RateLimiter limiter(clock);
  const RateLimit limit{10, 20};
  ASSERT_EQ(allowedOf(limiter, "a", limit, 25), 20);
  clock.advance(100ms);
  EXPECT_EQ(allowedOf(limiter, "a", limit, 5), 1);
  clock.advance(1s);
  EXPECT_EQ(allowedOf(limiter, "a", limit, 50), 10);
  clock.advance(1h);  // never more than the burst
  EXPECT_EQ(allowedOf(limiter, "a", limit, 50), 20);
}

TEST(RateLimiterTest, ClientsHaveBucketsOfTheirOwn) {
  FakeClock clock;
  RateLimiter limiter(clock);
  const RateLimit limit{1, 3};
  EXPECT_EQ(allowedOf(limiter, "192.0.2.1", limit, 10), 3);
  EXPECT_EQ(allowedOf(limiter, "192.0.2.2", limit, 10), 3);
  EXPECT_FALSE(limiter.take("192.0.2.1", limit).allowed);
}

TEST(RateLimiterTest, RetryAfterCoversTheWaitForOneToken) {
  FakeClock clock;
  RateLimiter limiter(clock);
  const RateLimit slow{0.2, 1};  // one call every 5 s
  ASSERT_TRUE(limiter.take("c", slow).allowed);
  RateLimiter::Decision d = limiter.take("c", slow);
  ASSERT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_seconds, 5);
  clock.advance(std::chrono::seconds(d.retry_after_seconds));
  EXPECT_TRUE(limiter.take("c", slow).allowed);
}

TEST(RateLimiterTest, ZeroRateMeansUnlimited) {
  FakeClock clock;
  RateLimiter limiter(clock);
  EXPECT_EQ(allowedOf(limiter, "c", RateLimit{0, 1}, 1000), 1000);
  EXPECT_EQ(limiter.clients(), 0u);
}

TEST(RateLimiterTest, AClockSteppingBackDoesNotFreezeTheBucket) {
  FakeClock clock;
  RateLimiter limiter(clock);
  const RateLimit limit{1, 2};
  ASSERT_EQ(allowedOf(limiter, "c", limit, 5), 2);
  clock.stepBack(1h);
  EXPECT_FALSE(limiter.take("c", limit).allowed);
  clock.advance(1s);  // one second after the step, not an hour
  EXPECT_TRUE(limiter.take("c", limit).allowed);
}

TEST(RateLimiterTest, KeepsAtMostMaxClientsForgettingIdleOnesFirst) {
  FakeClock clock;
  RateLimiter limiter(clock, /*max_clients=*/3);
  const RateLimit limit{1, 2};
  ASSERT_EQ(allowedOf(limiter, "busy", limit, 5), 2);  // empty bucket: must be remembered
  EXPECT_TRUE(limiter.take("idle1", limit).allowed);
  EXPECT_TRUE(limiter.take("idle2", limit).allowed);
  clock.advance(1500ms);  // idle1/idle2 refilled to full; busy holds 1.5 of 2
  EXPECT_TRUE(limiter.take("new", limit).allowed);
  EXPECT_LE(limiter.clients(), 3u);
  EXPECT_TRUE(limiter.take("busy", limit).allowed);
  EXPECT_FALSE(limiter.take("busy", limit).allowed) << "busy's bucket was kept, not reset";
}

TEST(AdminAuditTest, LineNamesCallerAndResultButNoSecret) {
  AdminCall call{"203.0.113.9", AdminToken::kInvalid, "POST", "/admin/reload", 401, 12345us};
  EXPECT_EQ(auditLine(call),
            "admin call: client=203.0.113.9 token=invalid method=POST path=/admin/reload "
            "status=401 duration_ms=12.345");
  call.token = AdminToken::kValid;
  EXPECT_NE(auditLine(call).find("token=valid"), std::string::npos);
  call.token = AdminToken::kAbsent;
  EXPECT_NE(auditLine(call).find("token=absent"), std::string::npos);
  call.token = AdminToken::kUnchecked;
  EXPECT_NE(auditLine(call).find("token=unchecked"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse
