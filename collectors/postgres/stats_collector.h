#pragma once
// `stats`: the server's own activity counters under postgres_exporter's names, types and
// label names, so its dashboards and alert rules work unchanged on dbpulse.
//
// Four queries per run, each cheap (no table or catalogue scan beyond the statistics views;
// the tables query is linear in the number of user tables):
// - pg_stat_database joined with pg_stat_database_conflicts, one row per database:
//   pg_stat_database_*{datid,datname} (xact_commit, blks_hit, tup_*, temp_*, deadlocks,
//   session statistics from PostgreSQL 14, ...) and pg_stat_database_conflicts_confl_*.
//   A NULL (stats never reset, checksums off) is NaN, as postgres_exporter exports it.
// - pg_stat_bgwriter (+ pg_stat_checkpointer from PostgreSQL 17, which moved the checkpoint
//   counters there and dropped buffers_backend*), pg_stat_archiver, the postmaster's start
//   time and version: pg_stat_bgwriter_*_total, pg_stat_archiver_*,
//   pg_postmaster_start_time_seconds, pg_static{short_version,version}.
// - pg_settings: every boolean and numeric setting as pg_settings_<name> in base units
//   (_seconds, _bytes; -1 kept as is), except the few another collector exports
//   (kSettingsExportedElsewhere).
// - pg_stat_user_tables + pg_statio_user_tables of the connected database, for the top N
//   tables by rows written and read since the statistics reset (a stable choice, so a
//   counter series does not come and go): the pg_stat_user_tables_* and
//   pg_statio_user_tables_* counters that the tables and indexes collectors do not export.
//
// Needs pg_monitor (or pg_read_all_stats + pg_read_all_settings) for the whole picture.

#include <memory>
#include <string>
#include <string_view>

#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

inline constexpr int kDefaultStatsTopTables = 20;

// The queries for a server version (server_version_num).
std::string statsDatabaseQuery(int server_version_num);
std::string statsServerQuery(int server_version_num);
extern const char* const kStatsSettingsQuery;
// $1: how many tables (at least 1).
std::string statsTablesQuery();

// pg_settings names whose series another collector already exports (connections: the
// connection limits it computes utilization from; tables: the wraparound threshold).
bool settingExportedElsewhere(std::string_view setting_name);

// One pg_settings row as postgres_exporter exports it: "pg_settings_" + name (dots become
// underscores) + "_seconds"/"_bytes" for time and memory units, the value in that base
// unit; booleans 1/0. False when the row is not exportable (unknown unit, not a number).
struct SettingSample {
  std::string metric;
  double value = 0;
};
bool settingSample(std::string_view name, std::string_view setting, std::string_view unit,
                   std::string_view vartype, SettingSample& out);

// Rows of the queries above -> samples. Pure. Internal on an unexpected result shape.
Status parseStatsDatabaseRows(const PgRows& rows, SampleBatch& out);
Status parseStatsServerRows(const PgRows& rows, SampleBatch& out);
Status parseStatsSettingsRows(const PgRows& rows, SampleBatch& out);
Status parseStatsTablesRows(const PgRows& rows, int top_n, SampleBatch& out);

class StatsCollector final : public Collector {
 public:
  StatsCollector(SqlSession& session, int top_n)
      : session_(session.caller()), top_n_(top_n > 0 ? top_n : kDefaultStatsTopTables) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  const std::string name_ = "stats";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  const int top_n_;
};

}  // namespace dbpulse::collectors
