#pragma once
// `pgbouncer`: is the pooler queueing clients? The chat server's connection pool as
// pgbouncer itself sees it, read from its admin console (the `pgbouncer` pseudo-database;
// the role must be in pgbouncer's stats_users or admin_users).
//
// Two statements per run, `SHOW POOLS` and `SHOW STATS` (the console runs one command per
// query); each is answered from pgbouncer's memory, linear in its pools and databases.
// Scheduled only when [pgbouncer] dsn is set.
//
// Series (pgbouncer_exporter's names, so its dashboards and alerts keep working):
//   pgbouncer_up                                                1 when both SHOWs answered
//   pgbouncer_pools_{client_active,client_waiting,server_active,server_idle,server_used,
//                    server_testing,server_login}_connections{database,user}
//   pgbouncer_pools_client_maxwait_seconds{database,user}       oldest waiting client's wait
//   pgbouncer_stats_{queries_pooled,sql_transactions_pooled}_total{database}
//   pgbouncer_stats_{queries_duration,server_in_transaction,client_wait}_seconds_total{database}
//   pgbouncer_stats_{received,sent}_bytes_total{database}
// Labels are bounded by pgbouncer's own configuration ([databases] x users).

#include <memory>
#include <string>

#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

inline constexpr const char* kPgbouncerPoolsQuery = "SHOW POOLS";
inline constexpr const char* kPgbouncerStatsQuery = "SHOW STATS";

// Rows of SHOW POOLS / SHOW STATS -> samples. Pure. Columns are found by name, so the
// additions of later pgbouncer versions are ignored; Internal when a needed one is missing
// or a value is not a number.
Status parsePgbouncerPools(const PgRows& rows, SampleBatch& out);
Status parsePgbouncerStats(const PgRows& rows, SampleBatch& out);

class PgbouncerCollector final : public Collector {
 public:
  // `session` must be an admin-console session (PgSessionOptions::admin_console).
  explicit PgbouncerCollector(SqlSession& session) : session_(session.caller()) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  const std::string name_ = "pgbouncer";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
};

}  // namespace dbpulse::collectors
