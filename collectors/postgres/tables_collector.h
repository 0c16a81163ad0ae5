#pragma once
// `tables`: which tables need VACUUM or ANALYZE, how bloated are they, how close is
// transaction-ID wraparound?
//
// One query per run over pg_stat_user_tables, pg_class, pg_index and pg_stats of the
// connected database and pg_database (cost linear in tables + indexes + columns; no
// table is read). Exports, with bounded cardinality:
// - for the top N tables by dead tuples + rows modified since the last analyze (what the
//   maintenance planner acts on) and the top N by estimated bloat: postgres_exporter's
//   pg_stat_user_tables_n_live_tup / _n_dead_tup / _n_mod_since_analyze and our
//   dead-tuple ratio, time since the last (auto)vacuum / (auto)analyze, estimated bloat;
// - the top N indexes by estimated bloat; the top N tables by relfrozenxid age (the
//   older of the table's and its TOAST table's);
// - per database: age(datfrozenxid), mxid_age(datminmxid); aggregates per database.
//
// Bloat is a statistics-based estimate (no pgstattuple scans): expected pages from
// reltuples and the average row width in pg_stats, against relpages; B-tree indexes only
// for indexes. PostgreSQL shows pg_stats rows only for columns the role may SELECT, so
// with pg_monitor alone the estimate is unknown (counted, and logged once naming the
// missing SELECT privilege). Deduplicated B-tree indexes (PG13+) may be smaller than
// estimated: index bloat is then under-reported, never invented.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/mutex.h"
#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

inline constexpr int kDefaultTablesTopN = 20;
// Relations smaller than this have no meaningful bloat: reported as 0.
inline constexpr double kMinPagesForBloat = 10;

extern const char* const kTablesQuery;

// What the bloat estimate needs about a heap or a B-tree index.
struct BloatInput {
  double block_size = 8192;
  double pages = 0;        // relpages
  double tuples = 0;       // reltuples (-1: never vacuumed or analyzed, PG14+)
  double natts = 0;        // columns of the table / key + INCLUDE columns of the index
  double natts_stats = 0;  // how many of them have statistics visible in pg_stats
  double data_width = 0;   // sum over those columns of avg_width x (1 - null_frac)
  bool has_nulls = false;
  double fillfactor = 0;  // 0: the default (100 for tables, 90 for B-tree indexes)
};

struct BloatEstimate {
  double ratio = 0;  // wasted share of the relation's pages, 0..1
  double bytes = 0;  // wasted bytes
};

// Statistics-based estimates; nullopt when the statistics do not allow one (never
// analyzed, columns without visible statistics, expression columns).
std::optional<BloatEstimate> estimateTableBloat(const BloatInput& in);
std::optional<BloatEstimate> estimateBtreeBloat(const BloatInput& in);

// One user table as the last run saw it (for the maintenance planner and admin API).
struct TableHealth {
  std::string schemaname, relname;
  double live_tuples = 0;
  double dead_tuples = 0;
  double modified_since_analyze = 0;
  double dead_tuple_ratio = 0;                // dead / (live + dead), 0 when empty
  std::optional<double> vacuum_age_seconds;   // since the last vacuum or autovacuum
  std::optional<double> analyze_age_seconds;  // since the last analyze or autoanalyze
  double xid_age = 0;                         // age(relfrozenxid), TOAST included
  std::optional<BloatEstimate> bloat;
};

struct TablesReport {
  std::string datname;  // the connected database
  std::vector<TableHealth> tables;
  // Analyzed, non-empty tables without any visible pg_stats row: the role lacks SELECT.
  size_t stats_hidden = 0;
};

// Rows of kTablesQuery -> samples (bounded by top_n) and the full per-table report.
// Pure. Errors: Internal on an unexpected result shape.
Status parseTablesRows(const PgRows& rows, int top_n, SampleBatch& out, TablesReport& report);

class TablesCollector final : public Collector {
 public:
  TablesCollector(SqlSession& session, int top_n)
      : session_(session.caller()), top_n_(top_n > 0 ? top_n : kDefaultTablesTopN) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

  // Every user table of the last successful run. Thread-safe.
  TablesReport latest() const;

 private:
  const std::string name_ = "tables";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  const int top_n_;
  bool stats_hidden_logged_ = false;

  mutable Mutex mu_;
  TablesReport latest_ GUARDED_BY(mu_);
};

}  // namespace dbpulse::collectors
