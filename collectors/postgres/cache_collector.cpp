#include "collectors/postgres/cache_collector.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "collectors/clients/postgres/result_reader.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

// pg_stat_database has a row with a NULL datname for shared catalogs (PG12+): skipped.
// Tables never read at all cannot be among the top and are left on the server.
const char* const kCacheQuery = R"SQL(
SELECT 'db' AS kind, NULL::text AS relid, datname::text AS datname,
       NULL::text AS schemaname, NULL::text AS relname,
       blks_hit::float8 AS hit, blks_read::float8 AS read,
       NULL::float8 AS idx_hit, NULL::float8 AS idx_read
  FROM pg_stat_database
 WHERE datname IS NOT NULL
UNION ALL
SELECT 'table', relid::text, current_database()::text, schemaname::text, relname::text,
       COALESCE(heap_blks_hit, 0)::float8, COALESCE(heap_blks_read, 0)::float8,
       COALESCE(idx_blks_hit, 0)::float8, COALESCE(idx_blks_read, 0)::float8
  FROM pg_statio_user_tables
 WHERE COALESCE(heap_blks_hit, 0) + COALESCE(heap_blks_read, 0) +
       COALESCE(idx_blks_hit, 0) + COALESCE(idx_blks_read, 0) > 0
)SQL";

namespace {

struct Delta {
  double hit = 0, read = 0;
  double total() const { return hit + read; }
};

// Counters going backwards were reset (pg_stat_reset()): everything now counts as new.
template <typename B>
Delta deltaOf(const B& now, const B* before) {
  if (before == nullptr || now.hit < before->hit || now.read < before->read) {
    return {now.hit, now.read};
  }
  return {now.hit - before->hit, now.read - before->read};
}

}  // namespace

Status CacheTracker::update(const PgRows& rows, SampleBatch& out) {
  auto reader = ResultReader::open(
      "cache", rows,
      {"kind", "relid", "datname", "schemaname", "relname", "hit", "read", "idx_hit", "idx_read"});
  if (!reader.ok()) return reader.status();
  const ResultReader& r = *reader;
  const int c_kind = r.col("kind"), c_relid = r.col("relid"), c_db = r.col("datname"),
            c_schema = r.col("schemaname"), c_rel = r.col("relname"), c_hit = r.col("hit"),
            c_read = r.col("read"), c_ihit = r.col("idx_hit"), c_iread = r.col("idx_read");

  struct TableRow {
    std::string datname, schemaname, relname;
    Delta heap, index;
  };
  std::map<std::string, Blocks> databases;
  std::map<std::string, double> ratios;
  std::unordered_map<std::string, TableBlocks> tables;
  std::vector<TableRow> table_rows;
  out.describe("dbpulse_pg_cache_hit_ratio", MetricType::kGauge,
               "Share of block accesses served from shared buffers since the previous run.");

  for (size_t i = 0; i < r.size(); ++i) {
    const std::string kind = r.text(i, c_kind);
    const auto hit = r.number(i, c_hit), read = r.number(i, c_read);
    if (!hit || !read) return internalError("cache: non-numeric block counters");
    if (kind == "db") {
      const std::string datname = r.text(i, c_db);
      const Blocks now{*hit, *read};
      const auto before = databases_.find(datname);
      const Delta d = deltaOf(now, before == databases_.end() ? nullptr : &before->second);
      databases[datname] = now;
      const Labels labels{{"datname", datname}};
      if (d.total() > 0) {
        ratios[datname] = d.hit / d.total();
      } else if (auto last = database_ratio_.find(datname); last != database_ratio_.end()) {
        ratios[datname] = last->second;  // no block accesses: nothing new to say
      }
      if (auto it = ratios.find(datname); it != ratios.end()) {
        out.add("dbpulse_pg_cache_hit_ratio", labels, it->second);
      }
    } else if (kind == "table") {
      TableBlocks now;
      now.heap = {*hit, *read};
      now.index = {r.numberOr(i, c_ihit, 0), r.numberOr(i, c_iread, 0)};
      const std::string relid = r.text(i, c_relid);
      const auto before = tables_.find(relid);
      const TableBlocks* prev = before == tables_.end() ? nullptr : &before->second;
      TableRow t{r.text(i, c_db), r.text(i, c_schema), r.text(i, c_rel),
                 deltaOf(now.heap, prev ? &prev->heap : nullptr),
                 deltaOf(now.index, prev ? &prev->index : nullptr)};
      if (t.heap.total() + t.index.total() > 0) table_rows.push_back(std::move(t));
      tables[relid] = now;
    } else {
      return internalError("cache: unexpected row kind '" + kind + "'");
    }
  }

  const size_t keep = std::min(table_rows.size(), static_cast<size_t>(top_n_));
  std::partial_sort(table_rows.begin(), table_rows.begin() + static_cast<std::ptrdiff_t>(keep),
                    table_rows.end(), [](const TableRow& a, const TableRow& b) {
                      const double ta = a.heap.total() + a.index.total();
                      const double tb = b.heap.total() + b.index.total();
                      if (ta != tb) return ta > tb;
                      return std::tie(a.schemaname, a.relname) < std::tie(b.schemaname, b.relname);
                    });
  out.describe("dbpulse_pg_table_heap_cache_hit_ratio", MetricType::kGauge,
               "Share of the table's heap block accesses served from shared buffers since the "
               "previous run (top tables by block accesses).");
  out.describe("dbpulse_pg_table_index_cache_hit_ratio", MetricType::kGauge,
               "Share of the table's index block accesses served from shared buffers since "
               "the previous run (top tables by block accesses).");
  for (size_t i = 0; i < keep; ++i) {
    const TableRow& t = table_rows[i];
    const Labels labels{
        {"datname", t.datname}, {"schemaname", t.schemaname}, {"relname", t.relname}};
    if (t.heap.total() > 0) {
      out.add("dbpulse_pg_table_heap_cache_hit_ratio", labels, t.heap.hit / t.heap.total());
    }
    if (t.index.total() > 0) {
      out.add("dbpulse_pg_table_index_cache_hit_ratio", labels, t.index.hit / t.index.total());
    }
  }

  databases_ = std::move(databases);
  database_ratio_ = std::move(ratios);
  tables_ = std::move(tables);
  return okStatus();
}

Status CacheCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  Status status;
  {
    auto rows = session_->query(kCacheQuery);
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    status = tracker_.update(rows.value(), out);
  }
  pgutil::releaseFreedMemory();  // a row per table read since the start
  return status;
}

void CacheCollector::cancel() { session_->cancel(); }

}  // namespace dbpulse::collectors
