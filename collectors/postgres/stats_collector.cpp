#include "collectors/postgres/stats_collector.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "collectors/clients/postgres/result_reader.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A column of a statistics view and the series it becomes.
struct ColumnMetric {
  const char* column;
  const char* metric;
  MetricType type;
  const char* help;
};

// postgres_exporter's names. Times (blk_*_time, session_time, ...) stay in milliseconds as
// the view has them and as postgres_exporter exports them, so its dashboards' arithmetic
// holds; the session counters it leaves untyped are counters here.
const ColumnMetric kDatabaseColumns[] = {
    {"numbackends", "pg_stat_database_numbackends", MetricType::kGauge,
     "Backends connected to this database."},
    {"xact_commit", "pg_stat_database_xact_commit", MetricType::kCounter,
     "Transactions committed in this database."},
    {"xact_rollback", "pg_stat_database_xact_rollback", MetricType::kCounter,
     "Transactions rolled back in this database."},
    {"blks_read", "pg_stat_database_blks_read", MetricType::kCounter,
     "Disk blocks read in this database (not found in shared buffers)."},
    {"blks_hit", "pg_stat_database_blks_hit", MetricType::kCounter,
     "Disk blocks found in shared buffers in this database."},
    {"tup_returned", "pg_stat_database_tup_returned", MetricType::kCounter,
     "Rows returned by queries in this database."},
    {"tup_fetched", "pg_stat_database_tup_fetched", MetricType::kCounter,
     "Rows fetched by queries in this database."},
    {"tup_inserted", "pg_stat_database_tup_inserted", MetricType::kCounter,
     "Rows inserted by queries in this database."},
    {"tup_updated", "pg_stat_database_tup_updated", MetricType::kCounter,
     "Rows updated by queries in this database."},
    {"tup_deleted", "pg_stat_database_tup_deleted", MetricType::kCounter,
     "Rows deleted by queries in this database."},
    {"conflicts", "pg_stat_database_conflicts", MetricType::kCounter,
     "Queries cancelled by recovery conflicts in this database (standbys)."},
    {"temp_files", "pg_stat_database_temp_files", MetricType::kCounter,
     "Temporary files created by queries in this database."},
    {"temp_bytes", "pg_stat_database_temp_bytes", MetricType::kCounter,
     "Bytes written to temporary files by queries in this database."},
    {"deadlocks", "pg_stat_database_deadlocks", MetricType::kCounter,
     "Deadlocks detected in this database."},
    {"checksum_failures", "pg_stat_database_checksum_failures", MetricType::kCounter,
     "Data page checksum failures in this database (NaN when checksums are off)."},
    {"checksum_last_failure", "pg_stat_database_checksum_last_failure", MetricType::kGauge,
     "Unix time of the last checksum failure in this database (NaN: none)."},
    {"blk_read_time", "pg_stat_database_blk_read_time", MetricType::kCounter,
     "Milliseconds spent reading data file blocks (track_io_timing)."},
    {"blk_write_time", "pg_stat_database_blk_write_time", MetricType::kCounter,
     "Milliseconds spent writing data file blocks (track_io_timing)."},
    {"session_time", "pg_stat_database_session_time", MetricType::kCounter,
     "Milliseconds spent by sessions in this database (PostgreSQL 14+)."},
    {"active_time", "pg_stat_database_active_time", MetricType::kCounter,
     "Milliseconds spent executing statements in this database (PostgreSQL 14+)."},
    {"idle_in_transaction_time", "pg_stat_database_idle_in_transaction_time", MetricType::kCounter,
     "Milliseconds spent idle in a transaction in this database (PostgreSQL 14+)."},
    {"sessions", "pg_stat_database_sessions", MetricType::kCounter,
     "Sessions established to this database (PostgreSQL 14+)."},
    {"sessions_abandoned", "pg_stat_database_sessions_abandoned", MetricType::kCounter,
     "Sessions to this database ended by a lost client connection (PostgreSQL 14+)."},
    {"sessions_fatal", "pg_stat_database_sessions_fatal", MetricType::kCounter,
     "Sessions to this database ended by fatal errors (PostgreSQL 14+)."},
    {"sessions_killed", "pg_stat_database_sessions_killed", MetricType::kCounter,
     "Sessions to this database ended by operator intervention (PostgreSQL 14+)."},
    {"stats_reset", "pg_stat_database_stats_reset", MetricType::kCounter,
     "Unix time of the last statistics reset of this database (NaN: never)."},
    {"confl_tablespace", "pg_stat_database_conflicts_confl_tablespace", MetricType::kCounter,
     "Queries cancelled by dropped tablespaces (standbys)."},
    {"confl_lock", "pg_stat_database_conflicts_confl_lock", MetricType::kCounter,
     "Queries cancelled by lock timeouts (standbys)."},
    {"confl_snapshot", "pg_stat_database_conflicts_confl_snapshot", MetricType::kCounter,
     "Queries cancelled by old snapshots (standbys)."},
    {"confl_bufferpin", "pg_stat_database_conflicts_confl_bufferpin", MetricType::kCounter,
     "Queries cancelled by pinned buffers (standbys)."},
    {"confl_deadlock", "pg_stat_database_conflicts_confl_deadlock", MetricType::kCounter,
     "Queries cancelled by deadlocks (standbys)."},
};

const ColumnMetric kServerColumns[] = {
    {"checkpoints_timed", "pg_stat_bgwriter_checkpoints_timed_total", MetricType::kCounter,
     "Scheduled checkpoints (pg_stat_checkpointer.num_timed from PostgreSQL 17)."},
    {"checkpoints_req", "pg_stat_bgwriter_checkpoints_req_total", MetricType::kCounter,
     "Requested checkpoints (pg_stat_checkpointer.num_requested from PostgreSQL 17)."},
    {"checkpoint_write_time", "pg_stat_bgwriter_checkpoint_write_time_total", MetricType::kCounter,
     "Milliseconds spent writing checkpoint files to disk."},
    {"checkpoint_sync_time", "pg_stat_bgwriter_checkpoint_sync_time_total", MetricType::kCounter,
     "Milliseconds spent synchronizing checkpoint files to disk."},
    {"buffers_checkpoint", "pg_stat_bgwriter_buffers_checkpoint_total", MetricType::kCounter,
     "Buffers written during checkpoints (pg_stat_checkpointer.buffers_written from 17)."},
    {"buffers_clean", "pg_stat_bgwriter_buffers_clean_total", MetricType::kCounter,
     "Buffers written by the background writer."},
    {"maxwritten_clean", "pg_stat_bgwriter_maxwritten_clean_total", MetricType::kCounter,
     "Times the background writer stopped a cleaning scan for writing too many buffers."},
    {"buffers_backend", "pg_stat_bgwriter_buffers_backend_total", MetricType::kCounter,
     "Buffers written directly by backends (up to PostgreSQL 16)."},
    {"buffers_backend_fsync", "pg_stat_bgwriter_buffers_backend_fsync_total", MetricType::kCounter,
     "Times a backend had to fsync itself (up to PostgreSQL 16)."},
    {"buffers_alloc", "pg_stat_bgwriter_buffers_alloc_total", MetricType::kCounter,
     "Buffers allocated."},
    {"bgwriter_stats_reset", "pg_stat_bgwriter_stats_reset_total", MetricType::kCounter,
     "Unix time of the last reset of the background writer's statistics."},
    {"archived_count", "pg_stat_archiver_archived_count", MetricType::kCounter,
     "WAL files archived successfully."},
    {"failed_count", "pg_stat_archiver_failed_count", MetricType::kCounter,
     "Failed attempts to archive a WAL file."},
    {"last_archive_age", "pg_stat_archiver_last_archive_age", MetricType::kGauge,
     "Seconds since the last WAL file was archived (NaN: never)."},
    {"postmaster_start_time", "pg_postmaster_start_time_seconds", MetricType::kGauge,
     "Unix time the postmaster started."},
};

// The table statistics the tables and indexes collectors do not export already (they
// export n_live_tup, n_dead_tup, n_mod_since_analyze, seq_scan, seq_tup_read, idx_scan).
// last_* are Unix times, 0 for never, as postgres_exporter reports them.
const ColumnMetric kTableColumns[] = {
    {"idx_tup_fetch", "pg_stat_user_tables_idx_tup_fetch", MetricType::kCounter,
     "Live rows fetched by index scans."},
    {"n_tup_ins", "pg_stat_user_tables_n_tup_ins", MetricType::kCounter, "Rows inserted."},
    {"n_tup_upd", "pg_stat_user_tables_n_tup_upd", MetricType::kCounter,
     "Rows updated (HOT updates included)."},
    {"n_tup_del", "pg_stat_user_tables_n_tup_del", MetricType::kCounter, "Rows deleted."},
    {"n_tup_hot_upd", "pg_stat_user_tables_n_tup_hot_upd", MetricType::kCounter,
     "Rows HOT updated (no index update needed)."},
    {"vacuum_count", "pg_stat_user_tables_vacuum_count", MetricType::kCounter,
     "Manual vacuums of the table."},
    {"autovacuum_count", "pg_stat_user_tables_autovacuum_count", MetricType::kCounter,
     "Vacuums of the table by autovacuum."},
    {"analyze_count", "pg_stat_user_tables_analyze_count", MetricType::kCounter,
     "Manual analyzes of the table."},
    {"autoanalyze_count", "pg_stat_user_tables_autoanalyze_count", MetricType::kCounter,
     "Analyzes of the table by autovacuum."},
    {"last_vacuum", "pg_stat_user_tables_last_vacuum", MetricType::kGauge,
     "Unix time of the last manual vacuum (0: never)."},
    {"last_autovacuum", "pg_stat_user_tables_last_autovacuum", MetricType::kGauge,
     "Unix time of the last vacuum by autovacuum (0: never)."},
    {"last_analyze", "pg_stat_user_tables_last_analyze", MetricType::kGauge,
     "Unix time of the last manual analyze (0: never)."},
    {"last_autoanalyze", "pg_stat_user_tables_last_autoanalyze", MetricType::kGauge,
     "Unix time of the last analyze by autovacuum (0: never)."},
    {"heap_blks_read", "pg_statio_user_tables_heap_blks_read", MetricType::kCounter,
     "Heap blocks read from outside shared buffers."},
    {"heap_blks_hit", "pg_statio_user_tables_heap_blks_hit", MetricType::kCounter,
     "Heap blocks found in shared buffers."},
    {"idx_blks_read", "pg_statio_user_tables_idx_blks_read", MetricType::kCounter,
     "Index blocks (all indexes of the table) read from outside shared buffers."},
    {"idx_blks_hit", "pg_statio_user_tables_idx_blks_hit", MetricType::kCounter,
     "Index blocks (all indexes of the table) found in shared buffers."},
    {"toast_blks_read", "pg_statio_user_tables_toast_blks_read", MetricType::kCounter,
     "TOAST blocks read from outside shared buffers."},
    {"toast_blks_hit", "pg_statio_user_tables_toast_blks_hit", MetricType::kCounter,
     "TOAST blocks found in shared buffers."},
    {"tidx_blks_read", "pg_statio_user_tables_tidx_blks_read", MetricType::kCounter,
     "TOAST index blocks read from outside shared buffers."},
    {"tidx_blks_hit", "pg_statio_user_tables_tidx_blks_hit", MetricType::kCounter,
     "TOAST index blocks found in shared buffers."},
};

void describeAll(const ColumnMetric* begin, const ColumnMetric* end, const PgRows& rows,
                 SampleBatch& out) {
  for (const ColumnMetric* c = begin; c != end; ++c) {
    if (rows.column(c->column) >= 0) out.describe(c->metric, c->type, c->help);
  }
}

// Every column of `metrics` the result has (a version without it has no such column),
// NULL as `null_value`.
void addColumns(const ColumnMetric* begin, const ColumnMetric* end, const PgRows& rows, size_t row,
                const Labels& labels, double null_value, SampleBatch& out) {
  for (const ColumnMetric* c = begin; c != end; ++c) {
    const int col = rows.column(c->column);
    if (col < 0) continue;
    const auto v = parseNumber(rows.rows[row][static_cast<size_t>(col)]);
    out.add(c->metric, labels, v.value_or(null_value));
  }
}

Status checkShape(std::string_view part, const PgRows& rows,
                  std::initializer_list<std::string_view> required) {
  if (Status s = pgutil::requireColumns("stats", rows, required); !s.ok()) return s;
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError("stats: " + std::string(part) + ": short row in the result");
    }
  }
  return okStatus();
}

// "15.4 (Debian 15.4-1.pgdg120+1)" -> "15.4.0": postgres_exporter's short_version is a
// three-part version.
std::string shortVersion(std::string_view server_version) {
  const size_t space = server_version.find(' ');
  std::string v(server_version.substr(0, space));
  if (std::count(v.begin(), v.end(), '.') == 1) v += ".0";
  return v;
}

}  // namespace

// The shared-catalogue row of pg_stat_database (datname NULL, PostgreSQL 12+) is left out,
// as the cache collector always did. Session statistics exist from PostgreSQL 14.
std::string statsDatabaseQuery(int server_version_num) {
  std::string sql =
      "SELECT d.datid::text AS datid, d.datname::text AS datname,\n"
      "       d.numbackends::float8 AS numbackends, d.xact_commit::float8 AS xact_commit,\n"
      "       d.xact_rollback::float8 AS xact_rollback, d.blks_read::float8 AS blks_read,\n"
      "       d.blks_hit::float8 AS blks_hit, d.tup_returned::float8 AS tup_returned,\n"
      "       d.tup_fetched::float8 AS tup_fetched, d.tup_inserted::float8 AS tup_inserted,\n"
      "       d.tup_updated::float8 AS tup_updated, d.tup_deleted::float8 AS tup_deleted,\n"
      "       d.conflicts::float8 AS conflicts, d.temp_files::float8 AS temp_files,\n"
      "       d.temp_bytes::float8 AS temp_bytes, d.deadlocks::float8 AS deadlocks,\n"
      "       d.checksum_failures::float8 AS checksum_failures,\n"
      "       extract(epoch FROM d.checksum_last_failure)::float8 AS checksum_last_failure,\n"
      "       d.blk_read_time::float8 AS blk_read_time,\n"
      "       d.blk_write_time::float8 AS blk_write_time,\n";
  if (server_version_num >= 140000) {
    sql +=
        "       d.session_time::float8 AS session_time, d.active_time::float8 AS active_time,\n"
        "       d.idle_in_transaction_time::float8 AS idle_in_transaction_time,\n"
        "       d.sessions::float8 AS sessions,\n"
        "       d.sessions_abandoned::float8 AS sessions_abandoned,\n"
        "       d.sessions_fatal::float8 AS sessions_fatal,\n"
        "       d.sessions_killed::float8 AS sessions_killed,\n";
  }
  sql +=
      "       extract(epoch FROM d.stats_reset)::float8 AS stats_reset,\n"
      "       c.confl_tablespace::float8 AS confl_tablespace, c.confl_lock::float8 AS confl_lock,\n"
      "       c.confl_snapshot::float8 AS confl_snapshot,\n"
      "       c.confl_bufferpin::float8 AS confl_bufferpin,\n"
      "       c.confl_deadlock::float8 AS confl_deadlock\n"
      "  FROM pg_stat_database d\n"
      "  LEFT JOIN pg_stat_database_conflicts c ON c.datid = d.datid\n"
      " WHERE d.datname IS NOT NULL";
  return sql;
}

// PostgreSQL 17 moved the checkpoint counters from pg_stat_bgwriter to pg_stat_checkpointer
// (renamed) and dropped buffers_backend / buffers_backend_fsync (now in pg_stat_io).
std::string statsServerQuery(int server_version_num) {
  std::string sql = "SELECT ";
  if (server_version_num >= 170000) {
    sql +=
        "c.num_timed::float8 AS checkpoints_timed, c.num_requested::float8 AS checkpoints_req,\n"
        "       c.write_time::float8 AS checkpoint_write_time,\n"
        "       c.sync_time::float8 AS checkpoint_sync_time,\n"
        "       c.buffers_written::float8 AS buffers_checkpoint,\n";
  } else {
    sql +=
        "b.checkpoints_timed::float8 AS checkpoints_timed,\n"
        "       b.checkpoints_req::float8 AS checkpoints_req,\n"
        "       b.checkpoint_write_time::float8 AS checkpoint_write_time,\n"
        "       b.checkpoint_sync_time::float8 AS checkpoint_sync_time,\n"
        "       b.buffers_checkpoint::float8 AS buffers_checkpoint,\n"
        "       b.buffers_backend::float8 AS buffers_backend,\n"
        "       b.buffers_backend_fsync::float8 AS buffers_backend_fsync,\n";
  }
  sql +=
      "       b.buffers_clean::float8 AS buffers_clean,\n"
      "       b.maxwritten_clean::float8 AS maxwritten_clean,\n"
      "       b.buffers_alloc::float8 AS buffers_alloc,\n"
      "       extract(epoch FROM b.stats_reset)::float8 AS bgwriter_stats_reset,\n"
      "       a.archived_count::float8 AS archived_count, a.failed_count::float8 AS failed_count,\n"
      "       extract(epoch FROM now() - a.last_archived_time)::float8 AS last_archive_age,\n"
      "       extract(epoch FROM pg_postmaster_start_time())::float8 AS postmaster_start_time,\n"
      "       current_setting('server_version') AS server_version, version() AS version\n"
      "  FROM pg_stat_bgwriter b CROSS JOIN pg_stat_archiver a";
  if (server_version_num >= 170000) sql += " CROSS JOIN pg_stat_checkpointer c";
  return sql;
}

// postgres_exporter's selection: booleans and numbers (enums and strings have no value).
const char* const kStatsSettingsQuery = R"SQL(
SELECT name, setting, COALESCE(unit, '') AS unit, vartype
  FROM pg_settings
 WHERE vartype IN ('bool', 'integer', 'real')
)SQL";

// The top N user tables by rows read and written (ranked on the server, so 10,000 tables
// cost the agent N rows, not 10,000).
std::string statsTablesQuery() {
  return R"SQL(
SELECT current_database()::text AS datname, s.schemaname::text AS schemaname,
       s.relname::text AS relname,
       s.idx_tup_fetch::float8 AS idx_tup_fetch, s.seq_tup_read::float8 AS seq_tup_read,
       s.n_tup_ins::float8 AS n_tup_ins, s.n_tup_upd::float8 AS n_tup_upd,
       s.n_tup_del::float8 AS n_tup_del, s.n_tup_hot_upd::float8 AS n_tup_hot_upd,
       s.vacuum_count::float8 AS vacuum_count, s.autovacuum_count::float8 AS autovacuum_count,
       s.analyze_count::float8 AS analyze_count,
       s.autoanalyze_count::float8 AS autoanalyze_count,
       extract(epoch FROM s.last_vacuum)::float8 AS last_vacuum,
       extract(epoch FROM s.last_autovacuum)::float8 AS last_autovacuum,
       extract(epoch FROM s.last_analyze)::float8 AS last_analyze,
       extract(epoch FROM s.last_autoanalyze)::float8 AS last_autoanalyze,
       io.heap_blks_read::float8 AS heap_blks_read, io.heap_blks_hit::float8 AS heap_blks_hit,
       io.idx_blks_read::float8 AS idx_blks_read, io.idx_blks_hit::float8 AS idx_blks_hit,
       io.toast_blks_read::float8 AS toast_blks_read,
       io.toast_blks_hit::float8 AS toast_blks_hit,
       io.tidx_blks_read::float8 AS tidx_blks_read, io.tidx_blks_hit::float8 AS tidx_blks_hit
  FROM pg_stat_user_tables s
  LEFT JOIN pg_statio_user_tables io ON io.relid = s.relid
 ORDER BY COALESCE(s.seq_tup_read, 0) + COALESCE(s.idx_tup_fetch, 0) + s.n_tup_ins +
          s.n_tup_upd + s.n_tup_del DESC, s.schemaname, s.relname
 LIMIT $1::int
)SQL";
}

bool settingExportedElsewhere(std::string_view setting_name) {
  return setting_name == "max_connections" || setting_name == "superuser_reserved_connections" ||
         setting_name == "autovacuum_freeze_max_age";
}

bool settingSample(std::string_view name, std::string_view setting, std::string_view unit,
                   std::string_view vartype, SettingSample& out) {
  std::string metric = "pg_settings_";
  for (char c : name) metric += (c == '.' || c == '-') ? '_' : c;
  if (vartype == "bool") {
    out.metric = std::move(metric);
    out.value = setting == "on" ? 1 : 0;
    return true;
  }
  const auto value = parseNumber(std::optional<std::string>(std::string(setting)));
  if (!value) return false;
  double v = *value;
  if (unit.empty()) {
    out.metric = std::move(metric);
    out.value = v;
    return true;
  }
  // Time units to seconds, memory units ("kB", "8kB", "16MB", ...) to bytes.
  static const std::pair<std::string_view, double> kTime[] = {
      {"ms", 1e-3}, {"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}};
  for (const auto& [u, factor] : kTime) {
    if (unit == u) {
      out.metric = metric + "_seconds";
      out.value = v == -1 ? v : v * factor;  // -1 means "off" and is kept as is
      return true;
    }
  }
  size_t digits = 0;
  while (digits < unit.size() && unit[digits] >= '0' && unit[digits] <= '9') ++digits;
  double multiple = 1;
  if (digits > 0) {
    const auto m = parseNumber(std::optional<std::string>(std::string(unit.substr(0, digits))));
    if (!m) return false;
    multiple = *m;
  }
  static const std::pair<std::string_view, double> kMemory[] = {
      {"B", 1},
      {"kB", 1024},
      {"MB", 1024.0 * 1024},
      {"GB", 1024.0 * 1024 * 1024},
      {"TB", 1024.0 * 1024 * 1024 * 1024}};
  for (const auto& [u, factor] : kMemory) {
    if (unit.substr(digits) == u) {
      out.metric = metric + "_bytes";
      out.value = v == -1 ? v : v * multiple * factor;
      return true;
    }
  }
  return false;
}

Status parseStatsDatabaseRows(const PgRows& rows, SampleBatch& out) {
  if (Status s = checkShape("pg_stat_database", rows, {"datid", "datname", "xact_commit"});
      !s.ok()) {
    return s;
  }
  const int c_id = rows.column("datid"), c_name = rows.column("datname");
  describeAll(std::begin(kDatabaseColumns), std::end(kDatabaseColumns), rows, out);
  for (size_t i = 0; i < rows.rows.size(); ++i) {
    const Labels labels{{"datid", rows.rows[i][static_cast<size_t>(c_id)].value_or("")},
                        {"datname", rows.rows[i][static_cast<size_t>(c_name)].value_or("")}};
    addColumns(std::begin(kDatabaseColumns), std::end(kDatabaseColumns), rows, i, labels, kNaN,
               out);
  }
  return okStatus();
}

Status parseStatsServerRows(const PgRows& rows, SampleBatch& out) {
  if (Status s =
          checkShape("pg_stat_bgwriter", rows, {"checkpoints_timed", "server_version", "version"});
      !s.ok()) {
    return s;
  }
  if (rows.rows.size() != 1) {
    return internalError("stats: pg_stat_bgwriter: expected one row, got " +
                         std::to_string(rows.rows.size()));
  }
  describeAll(std::begin(kServerColumns), std::end(kServerColumns), rows, out);
  addColumns(std::begin(kServerColumns), std::end(kServerColumns), rows, 0, {}, kNaN, out);
  const auto& row = rows.rows[0];
  out.gauge(
      "pg_static", "The server's version, as labels; always 1.",
      Labels{{"short_version",
              shortVersion(row[static_cast<size_t>(rows.column("server_version"))].value_or(""))},
             {"version", row[static_cast<size_t>(rows.column("version"))].value_or("")}},
      1);
  return okStatus();
}

Status parseStatsSettingsRows(const PgRows& rows, SampleBatch& out) {
  if (Status s = checkShape("pg_settings", rows, {"name", "setting", "unit", "vartype"}); !s.ok()) {
    return s;
  }
  const auto c_name = static_cast<size_t>(rows.column("name")),
             c_setting = static_cast<size_t>(rows.column("setting")),
             c_unit = static_cast<size_t>(rows.column("unit")),
             c_type = static_cast<size_t>(rows.column("vartype"));
  for (const auto& row : rows.rows) {
    const std::string name = row[c_name].value_or("");
    if (name.empty() || settingExportedElsewhere(name) || !row[c_setting]) continue;
    SettingSample s;
    if (!settingSample(name, *row[c_setting], row[c_unit].value_or(""), row[c_type].value_or(""),
                       s)) {
      continue;  // a unit postgres_exporter does not know either: left out
    }
    out.gauge(s.metric, "Server setting " + name + " (pg_settings, in base units).", {}, s.value);
  }
  return okStatus();
}

Status parseStatsTablesRows(const PgRows& rows, int top_n, SampleBatch& out) {
  if (Status s = checkShape("pg_stat_user_tables", rows,
                            {"datname", "schemaname", "relname", "seq_tup_read", "idx_tup_fetch",
                             "n_tup_ins", "n_tup_upd", "n_tup_del"});
      !s.ok()) {
    return s;
  }
  const auto col = [&](const char* name) { return static_cast<size_t>(rows.column(name)); };
  const size_t c_db = col("datname"), c_schema = col("schemaname"), c_rel = col("relname");
  // Rank by rows written and read since the statistics reset (the query does too): busy
  // tables stay in the top N from run to run, so their counters do not appear and vanish.
  struct Ranked {
    double activity;
    size_t row;
  };
  std::vector<Ranked> ranked;
  ranked.reserve(rows.rows.size());
  for (size_t i = 0; i < rows.rows.size(); ++i) {
    double activity = 0;
    for (const char* c : {"seq_tup_read", "idx_tup_fetch", "n_tup_ins", "n_tup_upd", "n_tup_del"}) {
      activity += parseNumber(rows.rows[i][col(c)]).value_or(0);
    }
    ranked.push_back({activity, i});
  }
  const size_t keep = std::min(ranked.size(), static_cast<size_t>(std::max(1, top_n)));
  const auto name = [&](size_t row, size_t c) -> const std::string& {
    static const std::string kEmpty;
    const auto& f = rows.rows[row][c];
    return f ? *f : kEmpty;
  };
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(keep),
                    ranked.end(), [&](const Ranked& a, const Ranked& b) {
                      if (a.activity != b.activity) return a.activity > b.activity;
                      return std::tie(name(a.row, c_schema), name(a.row, c_rel)) <
                             std::tie(name(b.row, c_schema), name(b.row, c_rel));
                    });
  describeAll(std::begin(kTableColumns), std::end(kTableColumns), rows, out);
  for (size_t k = 0; k < keep; ++k) {
    const size_t i = ranked[k].row;
    const Labels labels{
        {"datname", name(i, c_db)}, {"schemaname", name(i, c_schema)}, {"relname", name(i, c_rel)}};
    addColumns(std::begin(kTableColumns), std::end(kTableColumns), rows, i, labels, 0, out);
  }
  return okStatus();
}

Status StatsCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  auto version = serverVersionNum(*session_);
  if (!version.ok()) return collectorQueryError(name_, version.status());
  {
    auto rows = session_->query(statsDatabaseQuery(*version));
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    if (Status s = parseStatsDatabaseRows(*rows, out); !s.ok()) return s;
  }
  {
    auto rows = session_->query(statsServerQuery(*version));
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    if (Status s = parseStatsServerRows(*rows, out); !s.ok()) return s;
  }
  {
    auto rows = session_->query(kStatsSettingsQuery);
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    if (Status s = parseStatsSettingsRows(*rows, out); !s.ok()) return s;
  }
  {
    auto rows = session_->queryParams(statsTablesQuery(), {std::to_string(std::max(1, top_n_))});
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    if (Status s = parseStatsTablesRows(*rows, top_n_, out); !s.ok()) return s;
  }
  pgutil::releaseFreedMemory();  // a row per user table
  return okStatus();
}

void StatsCollector::cancel() { session_->cancel(); }

}  // namespace dbpulse::collectors
