#include "collectors/postgres/cache_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

const std::vector<std::string> kColumns = {"kind", "relid", "datname", "schemaname", "relname",
                                           "hit",  "read",  "idx_hit", "idx_read"};

std::string num(double v) { return std::to_string(v); }

Row dbRow(const std::string& datname, double hit, double read) {
  return Row{"db",     std::nullopt, datname,      std::nullopt, std::nullopt,
             num(hit), num(read),    std::nullopt, std::nullopt};
}

Row tableRow(const std::string& relid, const std::string& relname, double hit, double read,
             double idx_hit, double idx_read) {
  return Row{"table",  relid,     "chat",       "public",     relname,
             num(hit), num(read), num(idx_hit), num(idx_read)};
}

PgRows rowsOf(std::vector<Row> rows) {
  PgRows r;
  r.columns = kColumns;
  r.rows = std::move(rows);
  return r;
}

using batchtest::value;

using batchtest::countOf;

const Labels kChat{{"datname", "chat"}};

Labels table(const std::string& relname) {
  return Labels{{"datname", "chat"}, {"schemaname", "public"}, {"relname", relname}};
}

TEST(CacheTrackerTest, FirstRunUsesCountersSinceReset) {
  CacheTracker t(20);
  SampleBatch out;
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 900, 100), dbRow("postgres", 0, 0)}), out).ok());
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_cache_hit_ratio", kChat), 0.9);
  // No block accesses ever: no ratio to report.
  EXPECT_FALSE(value(out, "dbpulse_pg_cache_hit_ratio", {{"datname", "postgres"}}).has_value());
  // The raw counters are the stats collector's (one family, one collector).
  EXPECT_EQ(out.families().count("pg_stat_database_blks_hit"), 0u);
}

TEST(CacheTrackerTest, LaterRunsUseDeltasNotLifetimeTotals) {
  CacheTracker t(20);
  SampleBatch first, cold, warm;
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 1'000'000, 1000)}), first).ok());
  // A cold interval: 100 hits, 900 reads. Lifetime would still say 99.8 %.
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 1'000'100, 1900)}), cold).ok());
  EXPECT_DOUBLE_EQ(*value(cold, "dbpulse_pg_cache_hit_ratio", kChat), 0.1);
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 1'001'090, 1910)}), warm).ok());
  EXPECT_DOUBLE_EQ(*value(warm, "dbpulse_pg_cache_hit_ratio", kChat), 0.99);
}

TEST(CacheTrackerTest, IdleIntervalKeepsTheLastRatio) {
  CacheTracker t(20);
  SampleBatch first, second, idle;
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 100, 0)}), first).ok());
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 150, 50)}), second).ok());
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 150, 50)}), idle).ok());
  EXPECT_DOUBLE_EQ(*value(idle, "dbpulse_pg_cache_hit_ratio", kChat), 0.5);
}

TEST(CacheTrackerTest, CountersGoingBackwardsCountFromZero) {
  CacheTracker t(20);
  SampleBatch first, after_reset;
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 1000, 1000)}), first).ok());
  // pg_stat_reset(): 30 hits and 10 reads since.
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 30, 10)}), after_reset).ok());
  EXPECT_DOUBLE_EQ(*value(after_reset, "dbpulse_pg_cache_hit_ratio", kChat), 0.75);
}

TEST(CacheTrackerTest, PerTableRatiosForTheBusiestTablesOnly) {
  CacheTracker t(2);
  SampleBatch first, second;
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 10, 10), tableRow("1", "messages", 50, 50, 10, 0),
                               tableRow("2", "users", 1, 1, 0, 0),
                               tableRow("3", "conversations", 5, 5, 5, 5)}),
                       first)
                  .ok());
  EXPECT_EQ(countOf(first, "dbpulse_pg_table_heap_cache_hit_ratio"), 2u);
  EXPECT_DOUBLE_EQ(*value(first, "dbpulse_pg_table_heap_cache_hit_ratio", table("messages")), 0.5);
  EXPECT_DOUBLE_EQ(*value(first, "dbpulse_pg_table_index_cache_hit_ratio", table("messages")), 1);
  EXPECT_FALSE(value(first, "dbpulse_pg_table_heap_cache_hit_ratio", table("users")).has_value());

  // Only users was touched since: it is the busiest now, and only it is reported.
  ASSERT_TRUE(t.update(rowsOf({dbRow("chat", 10, 10), tableRow("1", "messages", 50, 50, 10, 0),
                               tableRow("2", "users", 5, 2, 0, 0),
                               tableRow("3", "conversations", 5, 5, 5, 5)}),
                       second)
                  .ok());
  EXPECT_EQ(countOf(second, "dbpulse_pg_table_heap_cache_hit_ratio"), 1u);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_table_heap_cache_hit_ratio", table("users")), 0.8);
  // No index accesses: no index ratio rather than a made-up one.
  EXPECT_FALSE(value(second, "dbpulse_pg_table_index_cache_hit_ratio", table("users")).has_value());
}

TEST(CacheTrackerTest, MalformedResultsAreErrors) {
  CacheTracker t(20);
  SampleBatch out;
  PgRows bad_kind = rowsOf({dbRow("chat", 1, 1)});
  bad_kind.rows[0][0] = "index";
  EXPECT_EQ(t.update(bad_kind, out).code(), StatusCode::kInternal);
  PgRows bad_number = rowsOf({dbRow("chat", 1, 1)});
  bad_number.rows[0][5] = std::nullopt;
  EXPECT_EQ(t.update(bad_number, out).code(), StatusCode::kInternal);
  PgRows no_column = rowsOf({});
  no_column.columns.pop_back();
  EXPECT_EQ(t.update(no_column, out).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace dbpulse::collectors
