#include "collectors/postgres/pgbouncer_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

// SHOW POOLS as pgbouncer 1.18 prints it.
PgRows pools118() {
  PgRows r;
  r.columns = {"database",
               "user",
               "cl_active",
               "cl_waiting",
               "cl_active_cancel_req",
               "cl_waiting_cancel_req",
               "sv_active",
               "sv_active_cancel",
               "sv_being_canceled",
               "sv_idle",
               "sv_used",
               "sv_tested",
               "sv_login",
               "maxwait",
               "maxwait_us",
               "pool_mode"};
  r.rows = {
      Row{"chat", "chat_app", "1", "3", "0", "0", "1", "0", "0", "0", "0", "0", "0", "2", "250000",
          "session"},
      Row{"pgbouncer", "pgbouncer", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0",
          "statement"},
  };
  return r;
}

// SHOW STATS as pgbouncer 1.18 prints it (times in microseconds).
PgRows stats118() {
  PgRows r;
  r.columns = {"database",       "total_xact_count", "total_query_count", "total_received",
               "total_sent",     "total_xact_time",  "total_query_time",  "total_wait_time",
               "avg_xact_count", "avg_query_count",  "avg_recv",          "avg_sent",
               "avg_xact_time",  "avg_query_time",   "avg_wait_time"};
  r.rows = {Row{"chat", "40", "120", "9000", "64000", "3000000", "1500000", "750000", "1", "2", "3",
                "4", "5", "6", "7"}};
  return r;
}

std::optional<double> value(const SampleBatch& b, const std::string& name, const Labels& labels) {
  std::optional<double> found;
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) {
      EXPECT_FALSE(found.has_value()) << "duplicate series " << name;
      found = s.value;
    }
  }
  return found;
}

TEST(PgbouncerCollectorTest, ParsesPools) {
  SampleBatch out;
  const Status s = parsePgbouncerPools(pools118(), out);
  ASSERT_TRUE(s.ok()) << s.toString();
  const Labels chat{{"database", "chat"}, {"user", "chat_app"}};
  EXPECT_EQ(value(out, "pgbouncer_pools_client_active_connections", chat), 1);
  EXPECT_EQ(value(out, "pgbouncer_pools_client_waiting_connections", chat), 3);
  EXPECT_EQ(value(out, "pgbouncer_pools_server_active_connections", chat), 1);
  EXPECT_EQ(value(out, "pgbouncer_pools_server_idle_connections", chat), 0);
  EXPECT_EQ(value(out, "pgbouncer_pools_server_login_connections", chat), 0);
  EXPECT_DOUBLE_EQ(value(out, "pgbouncer_pools_client_maxwait_seconds", chat).value_or(-1), 2.25);
  EXPECT_EQ(value(out, "pgbouncer_pools_client_active_connections",
                  {{"database", "pgbouncer"}, {"user", "pgbouncer"}}),
            1);
  for (const auto& smp : out.samples()) {
    EXPECT_EQ(out.families().at(smp.name).type, MetricType::kGauge) << smp.name;
  }
}

TEST(PgbouncerCollectorTest, ParsesStatsInBaseUnits) {
  SampleBatch out;
  const Status s = parsePgbouncerStats(stats118(), out);
  ASSERT_TRUE(s.ok()) << s.toString();
  const Labels chat{{"database", "chat"}};
  EXPECT_EQ(value(out, "pgbouncer_stats_queries_pooled_total", chat), 120);
  EXPECT_EQ(value(out, "pgbouncer_stats_sql_transactions_pooled_total", chat), 40);
  EXPECT_DOUBLE_EQ(value(out, "pgbouncer_stats_queries_duration_seconds_total", chat).value_or(-1),
                   1.5);
  EXPECT_DOUBLE_EQ(
      value(out, "pgbouncer_stats_server_in_transaction_seconds_total", chat).value_or(-1), 3.0);
  EXPECT_DOUBLE_EQ(value(out, "pgbouncer_stats_client_wait_seconds_total", chat).value_or(-1),
                   0.75);
  EXPECT_EQ(value(out, "pgbouncer_stats_received_bytes_total", chat), 9000);
  EXPECT_EQ(value(out, "pgbouncer_stats_sent_bytes_total", chat), 64000);
  for (const auto& smp : out.samples()) {
    EXPECT_EQ(out.families().at(smp.name).type, MetricType::kCounter) << smp.name;
    EXPECT_TRUE(smp.name.size() > 6 && smp.name.substr(smp.name.size() - 6) == "_total")
        << smp.name << ": counters must end in _total";
  }
}

TEST(PgbouncerCollectorTest, OlderAndNewerColumnSetsParse) {
  // An older pgbouncer: no maxwait_us, no sv_used; a newer one adds columns we ignore.
  PgRows old_pools;
  old_pools.columns = {"database",  "user",    "cl_active", "cl_waiting",
                       "sv_active", "sv_idle", "maxwait"};
  old_pools.rows = {Row{"chat", "app", "2", "0", "2", "1", "4"}};
  SampleBatch out;
  ASSERT_TRUE(parsePgbouncerPools(old_pools, out).ok());
  const Labels chat{{"database", "chat"}, {"user", "app"}};
  EXPECT_EQ(value(out, "pgbouncer_pools_client_maxwait_seconds", chat), 4);
  EXPECT_FALSE(value(out, "pgbouncer_pools_server_used_connections", chat));

  PgRows new_stats = stats118();
  new_stats.columns.push_back("total_server_assignment_count");
  new_stats.rows[0].push_back("12");
  SampleBatch out2;
  EXPECT_TRUE(parsePgbouncerStats(new_stats, out2).ok());
}

TEST(PgbouncerCollectorTest, RejectsMalformedResults) {
  PgRows no_waiting = pools118();
  no_waiting.columns[3] = "cl_whatever";
  PgRows bad_number = pools118();
  bad_number.rows[0][2] = "lots";
  PgRows short_row = pools118();
  short_row.rows[0].pop_back();
  PgRows old_stats = stats118();
  old_stats.columns[2] = "total_requests";  // pgbouncer < 1.8
  for (const auto& [what, status] : std::vector<std::pair<const char*, Status>>{
           {"missing cl_waiting",
            [&] {
              SampleBatch o;
              return parsePgbouncerPools(no_waiting, o);
            }()},
           {"non-numeric",
            [&] {
              SampleBatch o;
              return parsePgbouncerPools(bad_number, o);
            }()},
           {"short row",
            [&] {
              SampleBatch o;
              return parsePgbouncerPools(short_row, o);
            }()},
           {"old stats",
            [&] {
              SampleBatch o;
              return parsePgbouncerStats(old_stats, o);
            }()},
       }) {
    EXPECT_EQ(status.code(), StatusCode::kInternal) << what << ": " << status.toString();
  }
}

}  // namespace
}  // namespace dbpulse::collectors
