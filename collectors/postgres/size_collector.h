#pragma once
// `size`: how big are the databases, tables, indexes and TOAST tables?
//
// One query per run:
// - pg_database_size() of every database the role may measure (it walks the database's
//   directory: the expensive part, hence a default interval of minutes);
// - the user tables of the connected database, ranked by the size their catalog entries
//   record (relpages of the heap, TOAST table and indexes, as of the last VACUUM, ANALYZE
//   or CREATE INDEX); the first 2 x top_n of them, and any never vacuumed or analyzed
//   (reltuples < 0, PG14+), are measured exactly (pg_relation_size() per fork, a few
//   stat() calls per relation), the long tail keeps its relpages estimate, flagged. Opening
//   every relation costs a relation-cache entry per table and index (at 2,000 tables x
//   2 indexes about 400 ms in a new session); the exported top N stays exact.
// A relation that someone holds or awaits an ACCESS EXCLUSIVE lock on is not opened (that
// would queue behind the lock): its size comes from relpages and is flagged estimated.
//
// Exports pg_database_size_bytes{datname} (postgres_exporter's name), heap / TOAST /
// index / total sizes of the top N tables by total size, and per-database sums over all
// user tables. Every table and index is kept in memory for the admin API (latest()).

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/core/mutex.h"
#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

inline constexpr int kDefaultSizeTopN = 20;

// The per-run query; the $1 largest tables (by relpages) are measured exactly.
std::string sizeQuery();
// sizeQuery's $1 for `measured` tables (at least 1).
std::string sizeQueryParam(int measured);

struct DatabaseSize {
  std::string datname;
  double bytes = 0;
};

struct TableSize {
  std::string schemaname, relname;
  double heap_bytes = 0;     // main fork + free space map + visibility map
  double toast_bytes = 0;    // TOAST table and its index
  double indexes_bytes = 0;  // all indexes of the table
  double total_bytes = 0;
  bool estimated = false;  // some part came from relpages (relation locked)
};

struct IndexSize {
  std::string schemaname, relname, indexrelname;
  double bytes = 0;
  bool estimated = false;
};

struct SizeReport {
  std::string datname;                  // the connected database
  std::vector<DatabaseSize> databases;  // largest first
  std::vector<TableSize> tables;        // largest total first
  std::vector<IndexSize> indexes;       // largest first
};

// Rows of kSizeQuery -> samples (top_n tables) and the full report. Pure.
// Errors: Internal on an unexpected result shape.
Status parseSizeRows(const PgRows& rows, int top_n, SampleBatch& out, SizeReport& report);

class SizeCollector final : public Collector, public DetailsProvider {
 public:
  SizeCollector(SqlSession& session, int top_n)
      : session_(session.caller()), top_n_(top_n > 0 ? top_n : kDefaultSizeTopN) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;
  // Its details are latest(): a SizeReport.
  const DetailsProvider* detailsProvider() const override { return this; }
  std::any details() const override;

  // The databases, tables and indexes of the last successful run, by size (for
  // GET /admin/database/size). Thread-safe.
  SizeReport latest() const;

 private:
  const std::string name_ = "size";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  const int top_n_;

  mutable Mutex mu_;
  SizeReport latest_ GUARDED_BY(mu_);
};

}  // namespace dbpulse::collectors
