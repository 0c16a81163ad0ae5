#include "collectors/postgres/pgbouncer_collector.h"

#include <initializer_list>
#include <optional>

#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

namespace {

struct Column {
  const char* column;  // pgbouncer's column
  const char* metric;
  const char* help;
  double scale;  // to base units (pgbouncer reports times in microseconds)
  bool counter;
};

// SHOW POOLS: current figures per (database, user) pool. sv_used/sv_tested/sv_login are
// optional (renamed or absent in some versions); the others are required.
constexpr Column kPoolColumns[] = {
    {"cl_active", "pgbouncer_pools_client_active_connections",
     "Client connections linked to a server connection and able to process queries.", 1, false},
    {"cl_waiting", "pgbouncer_pools_client_waiting_connections",
     "Client connections that sent queries but have no server connection yet.", 1, false},
    {"sv_active", "pgbouncer_pools_server_active_connections",
     "Server connections linked to a client connection.", 1, false},
    {"sv_idle", "pgbouncer_pools_server_idle_connections",
     "Server connections idle and ready for a client query.", 1, false},
    {"sv_used", "pgbouncer_pools_server_used_connections",
     "Server connections idle longer than server_check_delay, needing server_check_query.", 1,
     false},
    {"sv_tested", "pgbouncer_pools_server_testing_connections",
     "Server connections running server_reset_query or server_check_query.", 1, false},
    {"sv_login", "pgbouncer_pools_server_login_connections",
     "Server connections in the process of logging in.", 1, false},
};
constexpr const char* kRequiredPoolColumns[] = {"cl_active", "cl_waiting", "sv_active", "sv_idle",
                                                "maxwait"};

// SHOW STATS: totals per database since pgbouncer started.
constexpr Column kStatsColumns[] = {
    {"total_query_count", "pgbouncer_stats_queries_pooled_total", "SQL queries pooled.", 1, true},
    {"total_xact_count", "pgbouncer_stats_sql_transactions_pooled_total",
     "SQL transactions pooled.", 1, true},
    {"total_query_time", "pgbouncer_stats_queries_duration_seconds_total",
     "Seconds pgbouncer spent connected to PostgreSQL executing queries.", 1e-6, true},
    {"total_xact_time", "pgbouncer_stats_server_in_transaction_seconds_total",
     "Seconds pgbouncer spent connected to PostgreSQL in a transaction.", 1e-6, true},
    {"total_wait_time", "pgbouncer_stats_client_wait_seconds_total",
     "Seconds clients spent waiting for a server connection.", 1e-6, true},
    {"total_received", "pgbouncer_stats_received_bytes_total",
     "Bytes of network traffic received from clients.", 1, true},
    {"total_sent", "pgbouncer_stats_sent_bytes_total", "Bytes of network traffic sent to clients.",
     1, true},
};

Status checkRowWidths(const char* what, const PgRows& rows) {
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError(std::string("pgbouncer: ") + what + " row with " +
                           std::to_string(row.size()) + " fields, expected " +
                           std::to_string(rows.columns.size()));
    }
  }
  return okStatus();
}

// The value of column `c` (-1: absent) as a number; NULL counts as 0 (pgbouncer prints
// every figure, so NULL only appears for columns it does not fill).
bool numberAt(const std::vector<std::optional<std::string>>& row, int c, double& out) {
  out = 0;
  if (c < 0 || !row[static_cast<size_t>(c)]) return true;
  return pgutil::toDouble(row[static_cast<size_t>(c)], out);
}

}  // namespace

Status parsePgbouncerPools(const PgRows& rows, SampleBatch& out) {
  if (Status s = pgutil::requireColumns("pgbouncer: SHOW POOLS", rows, {"database", "user"});
      !s.ok()) {
    return s;
  }
  for (const char* name : kRequiredPoolColumns) {
    if (rows.column(name) < 0) {
      return internalError(std::string("pgbouncer: SHOW POOLS: result has no column '") + name +
                           "'");
    }
  }
  if (Status s = checkRowWidths("SHOW POOLS", rows); !s.ok()) return s;
  const int c_db = rows.column("database"), c_user = rows.column("user");
  const int c_maxwait = rows.column("maxwait"), c_maxwait_us = rows.column("maxwait_us");

  for (const Column& col : kPoolColumns) {
    if (rows.column(col.column) >= 0) out.describe(col.metric, MetricType::kGauge, col.help);
  }
  out.describe("pgbouncer_pools_client_maxwait_seconds", MetricType::kGauge,
               "Seconds the oldest waiting client of the pool has waited (0: nobody waits).");
  for (const auto& row : rows.rows) {
    const Labels labels{{"database", row[static_cast<size_t>(c_db)].value_or("")},
                        {"user", row[static_cast<size_t>(c_user)].value_or("")}};
    for (const Column& col : kPoolColumns) {
      const int c = rows.column(col.column);
      if (c < 0) continue;
      double v = 0;
      if (!numberAt(row, c, v)) {
        return internalError(std::string("pgbouncer: SHOW POOLS: non-numeric ") + col.column);
      }
      out.add(col.metric, labels, v * col.scale);
    }
    double wait_s = 0, wait_us = 0;
    if (!numberAt(row, c_maxwait, wait_s) || !numberAt(row, c_maxwait_us, wait_us)) {
      return internalError("pgbouncer: SHOW POOLS: non-numeric maxwait");
    }
    // maxwait is whole seconds; maxwait_us (1.8+) the microseconds on top.
    out.add("pgbouncer_pools_client_maxwait_seconds", labels, wait_s + wait_us * 1e-6);
  }
  return okStatus();
}

Status parsePgbouncerStats(const PgRows& rows, SampleBatch& out) {
  if (Status s = pgutil::requireColumns("pgbouncer: SHOW STATS", rows, {"database"}); !s.ok()) {
    return s;
  }
  for (const Column& col : kStatsColumns) {
    if (rows.column(col.column) < 0) {
      return internalError(std::string("pgbouncer: SHOW STATS: result has no column '") +
                           col.column + "' (pgbouncer older than 1.8?)");
    }
  }
  if (Status s = checkRowWidths("SHOW STATS", rows); !s.ok()) return s;
  const int c_db = rows.column("database");
  for (const Column& col : kStatsColumns) out.describe(col.metric, MetricType::kCounter, col.help);
  for (const auto& row : rows.rows) {
    const Labels labels{{"database", row[static_cast<size_t>(c_db)].value_or("")}};
    for (const Column& col : kStatsColumns) {
      double v = 0;
      if (!numberAt(row, rows.column(col.column), v)) {
        return internalError(std::string("pgbouncer: SHOW STATS: non-numeric ") + col.column);
      }
      out.add(col.metric, labels, v * col.scale);
    }
  }
  return okStatus();
}

Status PgbouncerCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  auto report = [&](const Status& status) {
    out.gauge("pgbouncer_up",
              "1 when pgbouncer's admin console answered SHOW POOLS and SHOW STATS.", {},
              status.ok() ? 1 : 0);
    return status;
  };
  auto failed = [&](const Status& status) {
    // pgbouncer refuses the login to its console ("not allowed") for roles in neither
    // stats_users nor admin_users: a setup problem, not an outage.
    if (status.message().find("not allowed") != std::string::npos) {
      return report(failedPrecondition(
          "privilege_missing",
          "pgbouncer: " + session_->redactedDsn() +
              ": the admin console refused the login; add the role to pgbouncer's stats_users "
              "(or admin_users) and reload pgbouncer"));
    }
    return report(status);
  };
  auto pools = session_->query(kPgbouncerPoolsQuery);
  if (!pools.ok()) return failed(pools.status());
  auto stats = session_->query(kPgbouncerStatsQuery);
  if (!stats.ok()) return failed(stats.status());
  SampleBatch parsed;
  Status s = parsePgbouncerPools(*pools, parsed);
  if (s.ok()) s = parsePgbouncerStats(*stats, parsed);
  if (!s.ok()) return report(s);
  for (const auto& [name, info] : parsed.families()) out.describe(name, info.type, info.help);
  for (const Sample& sample : parsed.samples()) out.add(sample.name, sample.labels, sample.value);
  return report(okStatus());
}

void PgbouncerCollector::cancel() { session_->cancel(); }

}  // namespace dbpulse::collectors
