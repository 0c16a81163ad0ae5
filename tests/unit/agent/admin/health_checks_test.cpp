// The status page's health checks: thresholds, number formats, and the checks' PromQL over a
// real SampleStore driven by a fake clock (no agent, no database).
#include "agent/admin/health_checks.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <string>

#include "agent/core/sample_store.h"
#include "fakes/fake_clock.h"

namespace dbpulse::admin {
namespace {

using namespace std::chrono_literals;

TEST(HealthChecksTest, ClassifyHigherAndLowerIsWorse) {
  struct Case {
    double value;
    Thresholds t;
    HealthLevel want;
  };
  const Thresholds high{0.75, 0.9, false}, low{0.95, 0.8, true};
  const Case cases[] = {
      {0.5, high, HealthLevel::kOk},
      {0.75, high, HealthLevel::kWarn},
      {0.89, high, HealthLevel::kWarn},
      {0.9, high, HealthLevel::kCrit},
      {0.99, low, HealthLevel::kOk},
      {0.95, low, HealthLevel::kWarn},
      {0.81, low, HealthLevel::kWarn},
      {0.8, low, HealthLevel::kCrit},
      {std::nan(""), high, HealthLevel::kNoData},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(classify(c.value, c.t), c.want)
        << c.value << " lower_is_worse=" << c.t.lower_is_worse;
  }
}

TEST(HealthChecksTest, FormatsEachUnit) {
  struct Case {
    double value;
    Unit unit;
    const char* want;
  };
  const Case cases[] = {
      {0.953, Unit::kRatio, "95.3 %"},
      {1, Unit::kRatio, "100 %"},
      {0.5, Unit::kRatio, "50 %"},
      {0.9996, Unit::kRatio, "100 %"},
      {0, Unit::kRatio, "0 %"},
      {0.34, Unit::kSeconds, "340 ms"},
      {2.5, Unit::kSeconds, "2.50 s"},
      {600, Unit::kSeconds, "10 min"},
      {0.00002, Unit::kSeconds, "20 µs"},
      {1536, Unit::kBytes, "1.50 KiB"},
      {3.0 * 1024 * 1024 * 1024, Unit::kBytes, "3 GiB"},
      {12, Unit::kCount, "12"},
      {1.2e8, Unit::kCount, "120M"},
      {0.25, Unit::kPerSecond, "0.25/s"},
      {1, Unit::kUpDown, "up"},
      {0, Unit::kUpDown, "down"},
      {std::numeric_limits<double>::infinity(), Unit::kCount, "n/a"},
  };
  for (const Case& c : cases) EXPECT_EQ(formatValue(c.value, c.unit), c.want) << c.value;
}

TEST(HealthChecksTest, JudgeUsesTheFallbackWithoutAVerdictAndSaysWhy) {
  CheckSpec spec{"cache_hit", "Cache hit", "x", {0.95, 0.8, true}, Unit::kRatio};
  spec.fallback_note = "too little traffic";
  spec.missing_note = "not watched";
  spec.context_prefix = " of ";

  HealthCheck judged = judge(spec, 0.5, std::nullopt, 200.0);
  EXPECT_EQ(judged.level, HealthLevel::kCrit);
  EXPECT_EQ(judged.shown, "50 % of 200");

  HealthCheck fallback = judge(spec, std::nullopt, 0.5, std::nullopt);
  EXPECT_EQ(fallback.level, HealthLevel::kNoData) << "no verdict over negligible traffic";
  EXPECT_EQ(fallback.shown, "50 %");
  EXPECT_EQ(fallback.note, "too little traffic");

  HealthCheck missing = judge(spec, std::nullopt, std::nullopt, std::nullopt);
  EXPECT_EQ(missing.level, HealthLevel::kNoData);
  EXPECT_EQ(missing.note, "not watched");
}

TEST(HealthChecksTest, FiringAlertsAreRedWhenCriticalAmberOtherwise) {
  EXPECT_EQ(alertsCheck(0, 0, 2).level, HealthLevel::kOk);
  EXPECT_EQ(alertsCheck(0, 0, 2).note, "2 pending");
  EXPECT_EQ(alertsCheck(1, 0, 0).level, HealthLevel::kWarn);
  EXPECT_EQ(alertsCheck(3, 1, 0).level, HealthLevel::kCrit);
  EXPECT_EQ(alertsCheck(3, 1, 0).shown, "3");
}

class HealthCheckerTest : public ::testing::Test {
 protected:
  HealthCheckerTest() : store_(clock_, SampleStoreOptions{200, 20 * 60'000}) {}

  void write(const std::string& name, Labels labels, double value) {
    SampleBatch b;
    b.add(name, std::move(labels), value);
    store_.write("test:" + name, b, 10min);
  }
  const HealthCheck& find(const std::vector<HealthCheck>& checks, const std::string& id) {
    for (const auto& c : checks) {
      if (c.id == id) return c;
    }
    static const HealthCheck none{};
    ADD_FAILURE() << "no check " << id;
    return none;
  }
  int64_t now() const { return clock_.wallMillis(); }

  fakes::FakeClock clock_;
  SampleStore store_;
  HealthChecker checker_;
};

TEST_F(HealthCheckerTest, LatestGaugesGiveVerdictsInTriageOrder) {
  write("pg_up", {}, 1);
  write("dbpulse_pg_connections_utilization_ratio", {}, 0.95);
  write("dbpulse_pg_client_connections", {}, 95);
  write("dbpulse_pg_blocked_sessions", {}, 0);
  write("dbpulse_pg_longest_transaction_seconds", {}, 120);
  write("dbpulse_pg_database_xid_age", {{"datname", "chat"}}, 2e8);
  write("dbpulse_pg_database_xid_age", {{"datname", "old"}}, 6e8);
  const auto checks = checker_.evaluate(store_, now(), 5 * 60'000);
  ASSERT_GE(checks.size(), 4u);
  EXPECT_EQ(checks[0].id, "pg_up");
  EXPECT_EQ(checks[1].id, "connections");
  EXPECT_EQ(find(checks, "pg_up").level, HealthLevel::kOk);
  EXPECT_EQ(find(checks, "pg_up").shown, "up");
  EXPECT_EQ(find(checks, "connections").level, HealthLevel::kCrit);
  EXPECT_EQ(find(checks, "connections").shown, "95 % · clients 95");
  EXPECT_EQ(find(checks, "blocked").level, HealthLevel::kOk);
  EXPECT_EQ(find(checks, "long_transactions").level, HealthLevel::kWarn);
  EXPECT_EQ(find(checks, "wraparound").level, HealthLevel::kWarn) << "the worst database counts";
  EXPECT_EQ(find(checks, "replication_lag").note, "no replicas");
  EXPECT_EQ(find(checks, "chat_p95").level, HealthLevel::kNoData);
}

TEST_F(HealthCheckerTest, IdleInTransactionIsJudgedByTheOldestSessionsAge) {
  write("dbpulse_pg_idle_in_transaction_sessions", {}, 0);
  EXPECT_EQ(find(checker_.evaluate(store_, now(), 60'000), "idle_in_transaction").level,
            HealthLevel::kOk)
      << "no such session: green, from the count alone";
  write("dbpulse_pg_idle_in_transaction_sessions", {}, 3);
  write("pg_stat_activity_max_tx_duration", {{"datname", "chat"}, {"state", "idle in transaction"}},
        0.2);
  write("pg_stat_activity_max_tx_duration", {{"datname", "chat"}, {"state", "active"}}, 500);
  auto brief = find(checker_.evaluate(store_, now(), 60'000), "idle_in_transaction");
  EXPECT_EQ(brief.level, HealthLevel::kOk) << "a busy workload passes through the state";
  EXPECT_EQ(brief.shown, "200 ms · sessions 3");
  write("pg_stat_activity_max_tx_duration",
        {{"datname", "chat"}, {"state", "idle in transaction (aborted)"}}, 90);
  EXPECT_EQ(find(checker_.evaluate(store_, now(), 60'000), "idle_in_transaction").level,
            HealthLevel::kCrit);
}

TEST_F(HealthCheckerTest, CacheRatioNeedsTrafficBeforeAVerdict) {
  // A nearly idle database at 50 %: shown, not judged (the false positive of issue #12).
  for (int i = 0; i <= 20; ++i) {
    write("dbpulse_pg_cache_hit_ratio", {{"datname", "postgres"}}, 0.5);
    write("pg_stat_database_blks_hit", {{"datname", "postgres"}}, 10 + i);
    write("pg_stat_database_blks_read", {{"datname", "postgres"}}, 10 + i);
    clock_.advance(15s);
  }
  auto idle = find(checker_.evaluate(store_, now(), 5 * 60'000), "cache_hit");
  EXPECT_EQ(idle.level, HealthLevel::kNoData);
  EXPECT_EQ(idle.shown, "50 %");
  EXPECT_NE(idle.note.find("too little traffic"), std::string::npos);

  // 10,000 blocks/s at 70 %: red.
  for (int i = 0; i <= 20; ++i) {
    write("dbpulse_pg_cache_hit_ratio", {{"datname", "postgres"}}, 0.7);
    write("pg_stat_database_blks_hit", {{"datname", "postgres"}}, 1e6 + i * 105'000.0);
    write("pg_stat_database_blks_read", {{"datname", "postgres"}}, 1e6 + i * 45'000.0);
    clock_.advance(15s);
  }
  auto busy = find(checker_.evaluate(store_, now(), 5 * 60'000), "cache_hit");
  EXPECT_EQ(busy.level, HealthLevel::kCrit);
  EXPECT_EQ(busy.shown, "70 %");
}

TEST_F(HealthCheckerTest, ChatErrorRatioAndP95FromCountersAndBuckets) {
  // 10 req/s, 1 of them 5xx; latencies: 80 % under 0.1 s, all under 0.5 s.
  for (int i = 0; i <= 30; ++i) {
    const double n = i * 15.0;
    write("http_requests_total", {{"route", "/a"}, {"status_code", "200"}}, 9 * n);
    write("http_requests_total", {{"route", "/a"}, {"status_code", "500"}}, 1 * n);
    write("http_request_duration_seconds_bucket", {{"route", "/a"}, {"le", "0.1"}}, 8 * n);
    write("http_request_duration_seconds_bucket", {{"route", "/a"}, {"le", "0.5"}}, 10 * n);
    write("http_request_duration_seconds_bucket", {{"route", "/a"}, {"le", "+Inf"}}, 10 * n);
    clock_.advance(15s);
  }
  const auto checks = checker_.evaluate(store_, now(), 5 * 60'000);
  const auto& err = find(checks, "chat_errors");
  ASSERT_TRUE(err.value.has_value());
  EXPECT_NEAR(*err.value, 0.1, 1e-6);
  EXPECT_EQ(err.level, HealthLevel::kCrit);
  const auto& p95 = find(checks, "chat_p95");
  ASSERT_TRUE(p95.value.has_value());
  // Linear inside the 0.1..0.5 bucket: 95 % lies 3/4 of the way from 80 % to 100 %.
  EXPECT_NEAR(*p95.value, 0.4, 1e-6);
  EXPECT_EQ(p95.level, HealthLevel::kOk) << "amber from 0.5 s";

  const auto sparks = checker_.sparklines(store_, now(), 5 * 60'000, 11, 5 * 60'000);
  bool found = false;
  for (const auto& s : sparks) {
    if (s.id != "spark_chat_rps") continue;
    found = true;
    ASSERT_EQ(s.points.size(), 11u);
    EXPECT_NEAR(s.points.back().value, 10, 1e-6);
    EXPECT_EQ(s.points.back().t_ms, now());
    EXPECT_EQ(s.points.front().t_ms, now() - 5 * 60'000);
  }
  EXPECT_TRUE(found);

  // The chat server idle for 5 minutes: both are shown as traffic, without a verdict.
  for (int i = 0; i <= 21; ++i) {
    write("http_requests_total", {{"route", "/a"}, {"status_code", "200"}}, 9 * 450.0);
    write("http_requests_total", {{"route", "/a"}, {"status_code", "500"}}, 450.0);
    write("http_request_duration_seconds_bucket", {{"route", "/a"}, {"le", "0.1"}}, 8 * 450.0);
    write("http_request_duration_seconds_bucket", {{"route", "/a"}, {"le", "0.5"}}, 10 * 450.0);
    write("http_request_duration_seconds_bucket", {{"route", "/a"}, {"le", "+Inf"}}, 10 * 450.0);
    clock_.advance(15s);
  }
  const auto idle = checker_.evaluate(store_, now(), 5 * 60'000);
  EXPECT_EQ(find(idle, "chat_errors").level, HealthLevel::kNoData);
  EXPECT_EQ(find(idle, "chat_errors").shown, "0/s");
  EXPECT_EQ(find(idle, "chat_p95").level, HealthLevel::kNoData);
  EXPECT_EQ(find(idle, "chat_p95").shown, "0/s");
  EXPECT_NE(find(idle, "chat_p95").note.find("too little traffic"), std::string::npos);
}

TEST_F(HealthCheckerTest, ABrokenExpressionIsANoteNotACrash) {
  HealthChecker broken({{"bad", "Bad", "sum(", {1, 2, false}, Unit::kCount}}, {});
  const auto checks = broken.evaluate(store_, now(), 60'000);
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0].level, HealthLevel::kNoData);
  EXPECT_NE(checks[0].note.find("not evaluated"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse::admin
