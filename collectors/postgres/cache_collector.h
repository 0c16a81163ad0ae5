#pragma once
// `cache`: is the working set in shared buffers?
//
// One query per run over pg_stat_database (one row per database) and
// pg_statio_user_tables of the connected database (one row per table that was ever read;
// cost linear in the number of tables). The raw counters (pg_stat_database_blks_hit/_read)
// are the stats collector's. Exports:
// - dbpulse_pg_cache_hit_ratio{datname}: hits / (hits + reads) over the blocks accessed
//   since the previous run, not since the stats reset, so it moves when the working set
//   stops fitting. The first run (no previous one yet) uses the counters since the reset;
//   an interval without block accesses keeps the last ratio; counters going backwards
//   (pg_stat_reset()) count from zero;
// - dbpulse_pg_table_heap_cache_hit_ratio / _index_cache_hit_ratio{datname,schemaname,
//   relname}: the same per table, for the top N tables by blocks accessed since the
//   previous run (bounded cardinality whatever the number of tables).

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

inline constexpr int kDefaultCacheTopTables = 20;

extern const char* const kCacheQuery;

// The pure part: rows of kCacheQuery -> samples, remembering counters for the next
// run's deltas. Not thread-safe.
class CacheTracker {
 public:
  explicit CacheTracker(int top_n) : top_n_(top_n > 0 ? top_n : kDefaultCacheTopTables) {}
  // Errors: Internal on an unexpected result shape (the state is then left unchanged).
  Status update(const PgRows& rows, SampleBatch& out);

 private:
  struct Blocks {
    double hit = 0, read = 0;
  };
  struct TableBlocks {
    Blocks heap, index;
  };
  const int top_n_;
  std::map<std::string, Blocks> databases_;              // by datname
  std::map<std::string, double> database_ratio_;         // last reported ratio, by datname
  std::unordered_map<std::string, TableBlocks> tables_;  // by relid
};

class CacheCollector final : public Collector {
 public:
  CacheCollector(SqlSession& session, int top_n) : session_(session.caller()), tracker_(top_n) {}
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;

 private:
  const std::string name_ = "cache";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  CacheTracker tracker_;
};

}  // namespace dbpulse::collectors
