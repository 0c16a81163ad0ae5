#pragma once
// `connections`: how full is PostgreSQL's connection table, and who holds it?
// One query per run over pg_stat_activity and pg_database (cost linear in the
// number of backends and databases). Reports pg_up as well: 0 when the server
// cannot be reached, with the reason in the returned Status.

#include <memory>
#include <string>

#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

// The one statement the collector runs; exposed for tests and docs.
extern const char* const kConnectionsQuery;

// At most this many (datname, application_name) series; the rest are summed into
// application_name="other" so a client that sets unique names cannot explode cardinality.
inline constexpr size_t kMaxApplicationSeries = 20;

// Rows of kConnectionsQuery -> samples. Pure; errors on an unexpected row shape.
Status parseConnectionRows(const PgRows& rows, SampleBatch& out);

class ConnectionsCollector final : public Collector {
 public:
  explicit ConnectionsCollector(SqlSession& session) : session_(session.caller()) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  const std::string name_ = "connections";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
};

}  // namespace dbpulse::collectors
