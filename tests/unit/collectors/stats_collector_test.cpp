#include "collectors/postgres/stats_collector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using batchtest::countOf;
using batchtest::value;
using Row = std::vector<std::optional<std::string>>;

PgRows rowsOf(std::vector<std::string> columns, std::vector<Row> rows) {
  PgRows r;
  r.columns = std::move(columns);
  r.rows = std::move(rows);
  return r;
}

struct SettingCase {
  const char* name;
  const char* setting;
  const char* unit;
  const char* vartype;
  const char* metric;
  double value;
};

// postgres_exporter's conversions, one row per unit PostgreSQL uses.
TEST(StatsSettingsTest, ConvertsToBaseUnitsUnderPostgresExporterNames) {
  const SettingCase cases[] = {
      {"shared_buffers", "16384", "8kB", "integer", "pg_settings_shared_buffers_bytes",
       16384.0 * 8192},
      {"work_mem", "4096", "kB", "integer", "pg_settings_work_mem_bytes", 4096.0 * 1024},
      {"max_wal_size", "1024", "MB", "integer", "pg_settings_max_wal_size_bytes",
       1024.0 * 1024 * 1024},
      {"wal_segment_size", "16777216", "B", "integer", "pg_settings_wal_segment_size_bytes",
       16777216},
      {"statement_timeout", "1500", "ms", "integer", "pg_settings_statement_timeout_seconds", 1.5},
      {"checkpoint_timeout", "300", "s", "integer", "pg_settings_checkpoint_timeout_seconds", 300},
      {"log_rotation_age", "1440", "min", "integer", "pg_settings_log_rotation_age_seconds", 86400},
      {"log_min_duration_statement", "-1", "ms", "integer",
       "pg_settings_log_min_duration_statement_seconds", -1},
      {"fsync", "on", "", "bool", "pg_settings_fsync", 1},
      {"jit", "off", "", "bool", "pg_settings_jit", 0},
      {"random_page_cost", "1.1", "", "real", "pg_settings_random_page_cost", 1.1},
      {"pg_stat_statements.max", "5000", "", "integer", "pg_settings_pg_stat_statements_max", 5000},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    SettingSample s;
    ASSERT_TRUE(settingSample(c.name, c.setting, c.unit, c.vartype, s));
    EXPECT_EQ(s.metric, c.metric);
    EXPECT_DOUBLE_EQ(s.value, c.value);
  }
  SettingSample s;
  EXPECT_FALSE(settingSample("odd", "1", "furlong", "integer", s));
  EXPECT_FALSE(settingSample("odd", "abc", "", "integer", s));
}

TEST(StatsSettingsTest, LeavesOutWhatAnotherCollectorExports) {
  SampleBatch out;
  const auto rows = rowsOf({"name", "setting", "unit", "vartype"},
                           {{"max_connections", "100", "", "integer"},
                            {"autovacuum_freeze_max_age", "200000000", "", "integer"},
                            {"work_mem", "4096", "kB", "integer"},
                            {"fsync", "on", std::nullopt, "bool"}});
  ASSERT_TRUE(parseStatsSettingsRows(rows, out).ok());
  EXPECT_EQ(value(out, "pg_settings_work_mem_bytes"), 4096.0 * 1024);
  EXPECT_EQ(value(out, "pg_settings_fsync"), 1);
  EXPECT_EQ(countOf(out, "pg_settings_max_connections"), 0u);
  EXPECT_EQ(countOf(out, "pg_settings_autovacuum_freeze_max_age"), 0u);
  EXPECT_EQ(out.families().at("pg_settings_work_mem_bytes").type, MetricType::kGauge);
}

TEST(StatsDatabaseTest, ExportsEveryColumnTheVersionHasWithDatidAndDatname) {
  // PostgreSQL 13: no session statistics columns.
  const std::vector<std::string> columns = {"datid",    "datname",   "numbackends", "xact_commit",
                                            "blks_hit", "deadlocks", "stats_reset", "confl_lock"};
  SampleBatch out;
  ASSERT_TRUE(
      parseStatsDatabaseRows(
          rowsOf(columns, {{"16384", "chat", "3", "120", "900", "2", std::nullopt, "0"}}), out)
          .ok());
  const Labels chat{{"datid", "16384"}, {"datname", "chat"}};
  EXPECT_EQ(value(out, "pg_stat_database_numbackends", chat), 3);
  EXPECT_EQ(value(out, "pg_stat_database_xact_commit", chat), 120);
  EXPECT_EQ(value(out, "pg_stat_database_blks_hit", chat), 900);
  EXPECT_EQ(value(out, "pg_stat_database_deadlocks", chat), 2);
  EXPECT_EQ(value(out, "pg_stat_database_conflicts_confl_lock", chat), 0);
  // Never reset: NaN, as postgres_exporter reports a NULL.
  ASSERT_TRUE(value(out, "pg_stat_database_stats_reset", chat).has_value());
  EXPECT_TRUE(std::isnan(*value(out, "pg_stat_database_stats_reset", chat)));
  EXPECT_EQ(out.families().count("pg_stat_database_sessions"), 0u);
  EXPECT_EQ(out.families().at("pg_stat_database_xact_commit").type, MetricType::kCounter);
  EXPECT_EQ(out.families().at("pg_stat_database_numbackends").type, MetricType::kGauge);
}

TEST(StatsDatabaseTest, RejectsAResultOfAnotherShape) {
  SampleBatch out;
  EXPECT_FALSE(parseStatsDatabaseRows(rowsOf({"datname"}, {{"chat"}}), out).ok());
  EXPECT_FALSE(
      parseStatsDatabaseRows(rowsOf({"datid", "datname", "xact_commit"}, {{"1", "chat"}}), out)
          .ok());
}

TEST(StatsServerTest, BgwriterArchiverPostmasterAndVersion) {
  // PostgreSQL 17: no buffers_backend columns.
  const std::vector<std::string> columns = {
      "checkpoints_timed", "checkpoints_req", "buffers_alloc", "archived_count",
      "last_archive_age",  "server_version",  "version",       "postmaster_start_time"};
  SampleBatch out;
  ASSERT_TRUE(parseStatsServerRows(
                  rowsOf(columns, {{"7", "2", "1000", "0", std::nullopt, "17.2 (Debian 17.2-1)",
                                    "PostgreSQL 17.2", "1700000000.5"}}),
                  out)
                  .ok());
  EXPECT_EQ(value(out, "pg_stat_bgwriter_checkpoints_timed_total"), 7);
  EXPECT_EQ(value(out, "pg_stat_bgwriter_checkpoints_req_total"), 2);
  EXPECT_EQ(value(out, "pg_stat_archiver_archived_count"), 0);
  EXPECT_TRUE(std::isnan(*value(out, "pg_stat_archiver_last_archive_age")));
  EXPECT_EQ(value(out, "pg_postmaster_start_time_seconds"), 1700000000.5);
  EXPECT_EQ(countOf(out, "pg_stat_bgwriter_buffers_backend_total"), 0u);
  EXPECT_EQ(value(out, "pg_static", {{"short_version", "17.2.0"}, {"version", "PostgreSQL 17.2"}}),
            1);
  EXPECT_EQ(out.families().at("pg_stat_bgwriter_buffers_alloc_total").type, MetricType::kCounter);

  SampleBatch none;
  EXPECT_FALSE(parseStatsServerRows(rowsOf(columns, {}), none).ok());
}

TEST(StatsServerTest, QueriesFollowTheCheckpointerSplitOfPostgres17) {
  EXPECT_NE(statsServerQuery(160004).find("b.checkpoints_timed"), std::string::npos);
  EXPECT_EQ(statsServerQuery(160004).find("pg_stat_checkpointer"), std::string::npos);
  EXPECT_NE(statsServerQuery(170000).find("pg_stat_checkpointer"), std::string::npos);
  EXPECT_EQ(statsServerQuery(170000).find("buffers_backend"), std::string::npos);
  EXPECT_EQ(statsDatabaseQuery(130000).find("session_time"), std::string::npos);
  EXPECT_NE(statsDatabaseQuery(140000).find("session_time"), std::string::npos);
}

TEST(StatsTablesTest, TopTablesByRowsReadAndWritten) {
  const std::vector<std::string> columns = {
      "datname",   "schemaname", "relname",   "seq_tup_read", "idx_tup_fetch",
      "n_tup_ins", "n_tup_upd",  "n_tup_del", "last_vacuum",  "heap_blks_hit"};
  const auto rows = rowsOf(
      columns,
      {
          {"chat", "public", "users", "10", "0", "5", "0", "0", std::nullopt, "7"},
          {"chat", "public", "messages", "100", "50", "500", "20", "3", "1700000000", "900"},
          {"chat", "public", "idle", "0", std::nullopt, "0", "0", "0", std::nullopt, std::nullopt},
      });
  SampleBatch out;
  ASSERT_TRUE(parseStatsTablesRows(rows, 2, out).ok());
  const Labels messages{{"datname", "chat"}, {"schemaname", "public"}, {"relname", "messages"}};
  const Labels users{{"datname", "chat"}, {"schemaname", "public"}, {"relname", "users"}};
  EXPECT_EQ(value(out, "pg_stat_user_tables_n_tup_ins", messages), 500);
  EXPECT_EQ(value(out, "pg_stat_user_tables_last_vacuum", messages), 1700000000);
  EXPECT_EQ(value(out, "pg_statio_user_tables_heap_blks_hit", messages), 900);
  EXPECT_EQ(value(out, "pg_stat_user_tables_last_vacuum", users), 0);  // never: 0
  EXPECT_EQ(countOf(out, "pg_stat_user_tables_n_tup_ins"), 2u);        // top 2 of 3
  EXPECT_EQ(out.families().at("pg_stat_user_tables_n_tup_upd").type, MetricType::kCounter);
  EXPECT_EQ(out.families().at("pg_stat_user_tables_last_vacuum").type, MetricType::kGauge);
  // The tables and indexes collectors' names are not exported twice.
  EXPECT_EQ(out.families().count("pg_stat_user_tables_seq_tup_read"), 0u);
}

}  // namespace
}  // namespace dbpulse::collectors
