#include "collectors/postgres/size_collector.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "collectors/clients/postgres/result_reader.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

// pg_database_size() needs CONNECT on the database or pg_read_all_stats: databases the
// role may not measure are skipped rather than failing the whole query. A table's heap is
// its main, free-space-map and visibility-map forks, measured apart from its TOAST table
// (pg_table_size() would measure the TOAST table and its index once more); an index's
// size is all its forks (pg_table_size() of the index, as pg_indexes_size() counts it).
// The size functions take an ACCESS SHARE lock on the relation they measure; relations
// with an ACCESS EXCLUSIVE lock held or requested (granted or not: a waiter queues us too)
// keep their relpages estimate, so a long ALTER TABLE or VACUUM FULL cannot stall the run
// until lock_timeout. Index pages are summed per table in one pass (ipages), never by a
// per-table subquery over all indexes.
std::string sizeQueryParam(int measured) { return std::to_string(std::max(1, measured)); }

std::string sizeQuery() {
  return R"SQL(
WITH locked AS (
  SELECT DISTINCT relation
    FROM pg_locks
   WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
),
bs AS (SELECT current_setting('block_size')::float8 AS bs),
tbl AS (
  SELECT c.oid, n.nspname, c.relname, c.relpages, c.reltuples, c.reltoastrelid,
         COALESCE(t.relpages, 0) AS toast_pages
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
   WHERE c.relkind IN ('r', 'm')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
),
idx AS (
  SELECT i.indrelid, i.indexrelid, ic.relname, ic.relpages
    FROM tbl t
    JOIN pg_index i ON i.indrelid = t.oid
    JOIN pg_class ic ON ic.oid = i.indexrelid
),
ipages AS (SELECT indrelid, sum(relpages) AS pages FROM idx GROUP BY indrelid),
ranked AS (
  SELECT t.*, row_number() OVER (ORDER BY t.relpages + t.toast_pages + COALESCE(p.pages, 0)
                                 DESC, t.oid) AS rank
    FROM tbl t
    LEFT JOIN ipages p ON p.indrelid = t.oid
),
m AS (
  SELECT r.*, (r.rank <= $1::int OR r.reltuples < 0)
              AND NOT EXISTS (SELECT 1 FROM locked l
                               WHERE l.relation IN (r.oid, r.reltoastrelid)) AS exact
    FROM ranked r
)
SELECT 'database' AS kind, d.datname::text AS datname, NULL::text AS schemaname,
       NULL::text AS relname, NULL::text AS indexrelname,
       pg_database_size(d.oid)::float8 AS bytes, NULL::float8 AS toast_bytes,
       false AS estimated
  FROM pg_database d
 WHERE d.datallowconn
   AND (has_database_privilege(d.oid, 'CONNECT') OR pg_has_role('pg_read_all_stats', 'MEMBER'))
UNION ALL
SELECT 'current', current_database()::text, NULL, NULL, NULL, NULL, NULL, false
UNION ALL
SELECT 'table', current_database()::text, m.nspname::text, m.relname::text, NULL,
       CASE WHEN m.exact
            THEN pg_relation_size(m.oid, 'main') + pg_relation_size(m.oid, 'fsm') +
                 pg_relation_size(m.oid, 'vm')
            ELSE m.relpages * bs.bs END::float8,
       CASE WHEN m.reltoastrelid = 0 THEN 0
            WHEN m.exact THEN pg_total_relation_size(m.reltoastrelid)
            ELSE m.toast_pages * bs.bs END::float8,
       NOT m.exact
  FROM m CROSS JOIN bs
UNION ALL
SELECT 'index', current_database()::text, m.nspname::text, m.relname::text, x.relname::text,
       CASE WHEN e.exact THEN pg_table_size(x.indexrelid) ELSE x.relpages * bs.bs END::float8,
       NULL, NOT e.exact
  FROM idx x
  JOIN m ON m.oid = x.indrelid
  CROSS JOIN bs
  CROSS JOIN LATERAL (SELECT m.exact AND NOT EXISTS (SELECT 1 FROM locked l
                                                      WHERE l.relation = x.indexrelid))
                     AS e(exact)
)SQL";
}

Status parseSizeRows(const PgRows& rows, int top_n, SampleBatch& out, SizeReport& report) {
  auto reader = ResultReader::open("size", rows,
                                   {"kind", "datname", "schemaname", "relname", "indexrelname",
                                    "bytes", "toast_bytes", "estimated"});
  if (!reader.ok()) return reader.status();
  const ResultReader& r = *reader;
  const int c_kind = r.col("kind"), c_db = r.col("datname"), c_schema = r.col("schemaname"),
            c_rel = r.col("relname"), c_index = r.col("indexrelname"), c_bytes = r.col("bytes"),
            c_toast = r.col("toast_bytes"), c_est = r.col("estimated");

  SizeReport fresh;
  std::map<std::pair<std::string, std::string>, size_t> table_at;
  std::vector<IndexSize> indexes;
  for (size_t i = 0; i < r.size(); ++i) {
    const std::string kind = r.text(i, c_kind);
    // NULL: the relation was dropped between our catalog read and its measurement.
    const double bytes = r.numberOr(i, c_bytes, 0);
    if (!r.isNull(i, c_bytes) && !r.number(i, c_bytes)) {
      return internalError("size: non-numeric size in a row of kind '" + kind + "'");
    }
    if (kind == "database") {
      fresh.databases.push_back({r.text(i, c_db), bytes});
    } else if (kind == "current") {
      fresh.datname = r.text(i, c_db);
    } else if (kind == "table") {
      TableSize t;
      t.schemaname = r.text(i, c_schema);
      t.relname = r.text(i, c_rel);
      t.heap_bytes = bytes;
      t.toast_bytes = r.numberOr(i, c_toast, 0);
      t.estimated = r.flag(i, c_est);
      table_at[{t.schemaname, t.relname}] = fresh.tables.size();
      fresh.tables.push_back(std::move(t));
    } else if (kind == "index") {
      indexes.push_back(
          {r.text(i, c_schema), r.text(i, c_rel), r.text(i, c_index), bytes, r.flag(i, c_est)});
    } else {
      return internalError("size: unexpected row kind '" + kind + "'");
    }
  }
  for (const auto& x : indexes) {
    if (auto it = table_at.find({x.schemaname, x.relname}); it != table_at.end()) {
      TableSize& t = fresh.tables[it->second];
      t.indexes_bytes += x.bytes;
      t.estimated = t.estimated || x.estimated;
    }
  }
  double heap = 0, toast = 0, index_total = 0, estimated = 0;
  for (auto& t : fresh.tables) {
    t.total_bytes = t.heap_bytes + t.toast_bytes + t.indexes_bytes;
    heap += t.heap_bytes;
    toast += t.toast_bytes;
    index_total += t.indexes_bytes;
    estimated += t.estimated;
  }
  std::sort(fresh.databases.begin(), fresh.databases.end(),
            [](const DatabaseSize& a, const DatabaseSize& b) {
              return a.bytes != b.bytes ? a.bytes > b.bytes : a.datname < b.datname;
            });
  std::sort(fresh.tables.begin(), fresh.tables.end(), [](const TableSize& a, const TableSize& b) {
    if (a.total_bytes != b.total_bytes) return a.total_bytes > b.total_bytes;
    return std::tie(a.schemaname, a.relname) < std::tie(b.schemaname, b.relname);
  });
  std::sort(indexes.begin(), indexes.end(), [](const IndexSize& a, const IndexSize& b) {
    if (a.bytes != b.bytes) return a.bytes > b.bytes;
    return std::tie(a.schemaname, a.indexrelname) < std::tie(b.schemaname, b.indexrelname);
  });
  fresh.indexes = std::move(indexes);

  out.describe("pg_database_size_bytes", MetricType::kGauge, "Disk space used by the database.");
  for (const auto& d : fresh.databases) {
    out.add("pg_database_size_bytes", Labels{{"datname", d.datname}}, d.bytes);
  }
  if (fresh.datname.empty()) return internalError("size: current database row missing");
  out.describe("dbpulse_pg_table_size_bytes", MetricType::kGauge,
               "Heap of the table (main fork, free space and visibility maps), without TOAST "
               "and indexes (the largest tables only).");
  out.describe("dbpulse_pg_table_toast_size_bytes", MetricType::kGauge,
               "TOAST table of the table with its index (the largest tables only).");
  out.describe("dbpulse_pg_table_indexes_size_bytes", MetricType::kGauge,
               "All indexes of the table (the largest tables only).");
  out.describe("dbpulse_pg_table_total_size_bytes", MetricType::kGauge,
               "Heap + TOAST + indexes of the table (the largest tables only).");
  const size_t keep = std::min(fresh.tables.size(), static_cast<size_t>(std::max(1, top_n)));
  for (size_t i = 0; i < keep; ++i) {
    const TableSize& t = fresh.tables[i];
    const Labels labels{
        {"datname", fresh.datname}, {"schemaname", t.schemaname}, {"relname", t.relname}};
    out.add("dbpulse_pg_table_size_bytes", labels, t.heap_bytes);
    out.add("dbpulse_pg_table_toast_size_bytes", labels, t.toast_bytes);
    out.add("dbpulse_pg_table_indexes_size_bytes", labels, t.indexes_bytes);
    out.add("dbpulse_pg_table_total_size_bytes", labels, t.total_bytes);
  }
  out.describe("dbpulse_pg_user_tables_size_bytes", MetricType::kGauge,
               "Sum over all user tables of the database, by part (heap, toast, indexes); "
               "exact for the largest tables, from relpages for the rest.");
  for (const auto& [part, v] :
       {std::pair<const char*, double>{"heap", heap}, {"toast", toast}, {"indexes", index_total}}) {
    out.add("dbpulse_pg_user_tables_size_bytes", Labels{{"datname", fresh.datname}, {"part", part}},
            v);
  }
  out.gauge("dbpulse_pg_size_estimated_tables",
            "Tables whose sizes come from relpages (not among the largest, or under an "
            "ACCESS EXCLUSIVE lock) rather than from their files.",
            Labels{{"datname", fresh.datname}}, estimated);
  report = std::move(fresh);
  return okStatus();
}

Status SizeCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  SizeReport report;
  {
    auto rows = session_->queryParams(sizeQuery(), {sizeQueryParam(2 * top_n_)});
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    if (Status s = parseSizeRows(rows.value(), top_n_, out, report); !s.ok()) return s;
  }
  pgutil::releaseFreedMemory();  // the rows of every table and index
  MutexLock lock(mu_);
  latest_ = std::move(report);
  return okStatus();
}

SizeReport SizeCollector::latest() const {
  MutexLock lock(mu_);
  return latest_;
}

void SizeCollector::cancel() { session_->cancel(); }

std::any SizeCollector::details() const { return latest(); }

}  // namespace dbpulse::collectors
