#pragma once
// `indexes`: which indexes are unused, duplicate or invalid, and which tables are read
// by sequential scans (the signal for a missing index)?
//
// One query per run, in the database of the DSN (index statistics and catalogues are
// per database): one row per index of a user table (pg_stat_user_indexes joined to
// pg_index, pg_class, pg_am, the indexes that back constraints and the builds in
// progress), the top-N tables by sequential tuples read, and the statistics window.
// Cost is linear in the number of indexes (plus one pg_relation_size() stat() per index);
// duplicate detection compares indexes of the same table only, in C++.
//
// Derived sets (each index is reported for one reason, in this order):
//   invalid    pg_index.indisvalid = false and no CREATE INDEX is building it (e.g. a
//              failed CREATE INDEX CONCURRENTLY; it costs writes and serves no reads)
//   duplicate  another valid index of the same table covers it: same access method,
//              predicate and expressions; its key columns are a leading prefix of the
//              other's (btree) or equal to them (other methods), with the same opclass,
//              collation and sort options per column; its INCLUDE columns are among the
//              other's columns; a unique index is covered only by a unique index with the
//              same keys. Of exact duplicates the one kept is the one backing a
//              constraint, else unique, else more scanned, else the older (lower oid).
//   unused     no scan since the statistics were reset, not unique and not backing a
//              constraint (primary key, unique, exclusion or a foreign key's referenced
//              index), and observed for at least `min_age`. PostgreSQL does not record
//              when an index was created: an index counts as observed for as long as the
//              database's statistics cover (now - pg_stat_database.stats_reset, or since
//              the server started when they were never reset); an index that appears
//              while the agent runs counts from when the agent first saw it.
// Indexes backing a constraint are never suggested for dropping.
//
// Series (datname = the DSN's database):
//   dbpulse_pg_indexes{datname}                          indexes on user tables
//   dbpulse_pg_indexes_unused / _duplicate / _invalid{datname}
//   dbpulse_pg_indexes_droppable_bytes{datname,reason}   their total size by reason
//   dbpulse_pg_index_stats_window_seconds{datname}       how long the statistics cover
//   pg_stat_user_indexes_{idx_scan,idx_tup_read,idx_tup_fetch,size_bytes}
//       {datname,schemaname,relname,indexrelname}        top-N indexes by size
//   pg_stat_user_tables_{seq_scan,seq_tup_read,idx_scan}{datname,schemaname,relname},
//   dbpulse_pg_table_seq_scan_ratio, dbpulse_pg_table_seq_tup_read_per_scan
//                                                        top-N tables by seq_tup_read
// The findings themselves (index, table, reason, DROP statement, size) are kept in memory
// for the admin API: IndexesCollector::latestFindings().

#include <chrono>
#include <functional>
#include <map>
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

inline constexpr int kDefaultIndexesTopN = 50;
inline constexpr std::chrono::milliseconds kDefaultUnusedIndexMinAge = std::chrono::hours(24 * 7);

// The query for a server version (server_version_num) returning at most `top_n` table
// rows. pg_index.indnullsnotdistinct exists from PostgreSQL 15.
std::string indexesQuery(int server_version_num, int top_n);

struct IndexInfo {
  long long oid = 0;
  std::string schemaname, relname, indexrelname;
  std::string qualified;  // quote_ident(schema).quote_ident(index), for statements
  std::string amname;     // "btree", "hash", "gin", ...
  double size_bytes = 0;
  double idx_scan = 0, idx_tup_read = 0, idx_tup_fetch = 0;
  bool valid = true, unique = false, primary = false, exclusion = false;
  bool backs_constraint = false;  // referenced by pg_constraint.conindid
  bool building = false;          // a CREATE INDEX is in progress for it
  bool nulls_not_distinct = false;
  std::vector<int> keys;                                  // key columns (attnums; 0 = expression)
  std::vector<int> includes;                              // INCLUDE columns
  std::vector<long long> opclasses, collations, options;  // per key column
  std::string exprs, pred;                                // pg_get_expr text, "" when none
  // How long the index has been observed with these statistics, in seconds; the parser
  // sets the statistics window, the collector lowers it for indexes it saw appear.
  double observed_seconds = 0;
};

struct TableScanInfo {
  std::string schemaname, relname;
  double seq_scan = 0, seq_tup_read = 0, idx_scan = 0;
};

struct IndexStats {
  std::string datname;
  double stats_window_seconds = 0;
  std::vector<IndexInfo> indexes;
  std::vector<TableScanInfo> tables;  // top-N by seq_tup_read, largest first
  // Every index of the database, when `indexes` holds only the largest (scanIndexes());
  // unset: `indexes` is all of them.
  std::optional<size_t> index_count;
};

// Rows of indexesQuery() -> IndexStats. Pure; Internal on an unexpected result shape.
Result<IndexStats> parseIndexRows(const PgRows& rows);

// One index the admin API would suggest dropping.
struct IndexFinding {
  std::string schemaname, table, index;
  std::string reason;     // "invalid", "duplicate" or "unused"
  std::string statement;  // DROP INDEX CONCURRENTLY schema.name;
  double size_bytes = 0;
  std::string detail;  // why, for people ("covered by public.x", "0 scans in 9 days")
};

// The derived sets of IndexStats. Pure. Findings are sorted by reason (invalid,
// duplicate, unused), then size descending.
std::vector<IndexFinding> findIndexProblems(const IndexStats& stats, double min_age_seconds);

// What scanIndexes() found: `stats.indexes` holds the top_n largest indexes only
// (`stats.index_count` counts all), `findings` as findIndexProblems() over all of them.
struct IndexScan {
  IndexStats stats;
  std::vector<IndexFinding> findings;
};

// Runs a statement and hands its rows over in chunks (SqlSession::queryChunks).
using ChunkedQuery = std::function<Status(const std::string& sql, const PgChunkFn& on_chunk)>;

// indexesQuery() through `run`, one table's indexes at a time (the query returns them
// grouped by table): judged as findIndexProblems() does, counted, and only the top_n
// largest kept. Memory is bounded by the largest table's indexes, the findings and top_n,
// not by the number of indexes in the database (10,000 tables: a chunk, not 20,000
// parsed rows). `adjust` (optional) may lower an index's observed_seconds before it is
// judged. Errors: the query's, or Internal on an unexpected result shape.
Result<IndexScan> scanIndexes(const ChunkedQuery& run, int server_version_num, int top_n,
                              double min_age_seconds,
                              const std::function<void(IndexInfo&)>& adjust = {});

// IndexStats + findings -> samples (counts, top-N indexes by size, the tables as given).
void exportIndexSamples(const IndexStats& stats, const std::vector<IndexFinding>& findings,
                        int top_n, SampleBatch& out);

struct IndexesOptions {
  int top_n = kDefaultIndexesTopN;                                // <= 0: the default
  std::chrono::milliseconds min_age = kDefaultUnusedIndexMinAge;  // <= 0: the default
};

class IndexesCollector final : public Collector {
 public:
  IndexesCollector(SqlSession& session, IndexesOptions options);
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

  // The indexes worth dropping as of the last successful run. Thread-safe; a copy.
  std::vector<IndexFinding> latestFindings() const;

 private:
  const std::string name_ = "indexes";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  const IndexesOptions options_;
  // When each index oid was first seen; WallTime::min() for those present at the first
  // run (their age is the statistics window). Only collect() touches these.
  std::map<long long, WallTime> first_seen_;
  bool baseline_taken_ = false;
  mutable Mutex mu_;
  std::vector<IndexFinding> latest_ GUARDED_BY(mu_);
};

}  // namespace dbpulse::collectors
