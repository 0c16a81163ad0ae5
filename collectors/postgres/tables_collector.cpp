#include "collectors/postgres/tables_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include "collectors/clients/postgres/result_reader.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

// pg_stats checks the column privilege of every statistics row: the most expensive part,
// read once (colstats, a CTE referenced twice is computed once) and mapped to attribute
// numbers through pg_attribute's (attrelid, attname) index. Table widths need no other
// pg_attribute access (relnatts minus dropped columns); index columns are the key and
// INCLUDE columns (indkey), all stored in leaf tuples, matched by attribute number, so an
// expression column (attnum 0) has no statistics and its index gets no estimate.
const char* const kTablesQuery = R"SQL(
WITH tbl AS (
  SELECT s.relid, s.schemaname, s.relname, c.relpages, c.reltuples, c.reltoastrelid,
         c.relfrozenxid, c.reloptions, c.relnatts, s.n_live_tup, s.n_dead_tup,
         s.n_mod_since_analyze,
         GREATEST(s.last_vacuum, s.last_autovacuum) AS vacuumed,
         GREATEST(s.last_analyze, s.last_autoanalyze) AS analyzed
    FROM pg_stat_user_tables s
    JOIN pg_class c ON c.oid = s.relid
   WHERE c.relkind IN ('r', 'm')
),
dropped AS (
  SELECT attrelid, count(*) AS n FROM pg_attribute WHERE attisdropped GROUP BY attrelid
),
colstats AS (
  SELECT t.relid, a.attnum, st.null_frac, st.avg_width
    FROM pg_stats st
    JOIN tbl t ON t.schemaname = st.schemaname AND t.relname = st.tablename
    JOIN pg_attribute a ON a.attrelid = t.relid AND a.attname = st.attname
   WHERE NOT st.inherited AND st.schemaname NOT IN ('pg_catalog', 'information_schema')
),
tcols AS (
  SELECT relid, count(*) AS natts_stats,
         sum((1 - null_frac) * avg_width) AS data_width, bool_or(null_frac > 0) AS has_nulls
    FROM colstats GROUP BY relid
),
idx AS (
  SELECT t.relid, t.schemaname, t.relname, ic.relname AS indexrelname, ic.relpages,
         ic.reltuples, ic.reloptions, i.indexrelid, i.indkey
    FROM tbl t
    JOIN pg_index i ON i.indrelid = t.relid
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
),
icols AS (
  SELECT x.indexrelid, count(*) AS natts, count(cs.avg_width) AS natts_stats,
         sum((1 - COALESCE(cs.null_frac, 0)) * COALESCE(cs.avg_width, 0)) AS data_width,
         bool_or(COALESCE(cs.null_frac, 0) > 0) AS has_nulls
    FROM idx x
    CROSS JOIN LATERAL unnest(x.indkey::int2[]) AS k(attnum)
    LEFT JOIN colstats cs ON cs.relid = x.relid AND cs.attnum = k.attnum
   GROUP BY x.indexrelid
)
SELECT 'table' AS kind, t.schemaname::text AS schemaname, t.relname::text AS relname,
       NULL::text AS indexrelname, NULL::text AS datname,
       t.n_live_tup::float8 AS live, t.n_dead_tup::float8 AS dead,
       t.n_mod_since_analyze::float8 AS modified,
       extract(epoch FROM now() - t.vacuumed)::float8 AS vacuum_age,
       extract(epoch FROM now() - t.analyzed)::float8 AS analyze_age,
       GREATEST(age(t.relfrozenxid), age(tc.relfrozenxid))::float8 AS xid_age,
       NULL::float8 AS mxid_age,
       t.relpages::float8 AS pages, t.reltuples::float8 AS tuples,
       (t.relnatts - COALESCE(d.n, 0))::float8 AS natts,
       COALESCE(c.natts_stats, 0)::float8 AS natts_stats,
       COALESCE(c.data_width, 0)::float8 AS data_width, COALESCE(c.has_nulls, false) AS has_nulls,
       (SELECT option_value FROM pg_options_to_table(t.reloptions)
         WHERE option_name = 'fillfactor')::float8 AS fillfactor
  FROM tbl t
  LEFT JOIN tcols c ON c.relid = t.relid
  LEFT JOIN dropped d ON d.attrelid = t.relid
  LEFT JOIN pg_class tc ON tc.oid = t.reltoastrelid
UNION ALL
SELECT 'index', x.schemaname::text, x.relname::text, x.indexrelname::text, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, x.relpages, x.reltuples,
       c.natts, c.natts_stats, c.data_width, c.has_nulls,
       (SELECT option_value FROM pg_options_to_table(x.reloptions)
         WHERE option_name = 'fillfactor')::float8
  FROM idx x
  JOIN icols c ON c.indexrelid = x.indexrelid
UNION ALL
SELECT 'database', NULL, NULL, NULL, datname::text, NULL, NULL, NULL, NULL, NULL,
       age(datfrozenxid), mxid_age(datminmxid), NULL, NULL, NULL, NULL, NULL, false, NULL
  FROM pg_database
 WHERE datallowconn
UNION ALL
SELECT 'settings', NULL, NULL, NULL, current_database()::text, NULL, NULL, NULL, NULL, NULL,
       current_setting('autovacuum_freeze_max_age')::float8, NULL,
       current_setting('block_size')::float8, NULL, NULL, NULL, NULL, false, NULL
)SQL";

namespace {

double maxAlign(double bytes) { return std::ceil(bytes / 8) * 8; }

// Page header (PageHeaderData) and line pointer (ItemIdData) sizes, the same on every
// supported platform.
constexpr double kPageHeader = 24;
constexpr double kLinePointer = 4;

std::optional<BloatEstimate> estimate(const BloatInput& in, double tuple_bytes, double usable_bytes,
                                      double overhead_pages) {
  if (in.pages < kMinPagesForBloat) return BloatEstimate{0, 0};
  const double per_page = std::max(1.0, std::floor(usable_bytes / tuple_bytes));
  const double expected = std::ceil(std::max(0.0, in.tuples) / per_page) + overhead_pages;
  const double wasted = std::max(0.0, in.pages - expected);
  return BloatEstimate{wasted / in.pages, wasted * in.block_size};
}

bool estimable(const BloatInput& in) {
  return in.tuples >= 0 && in.natts > 0 && in.natts_stats == in.natts && in.block_size > 0;
}

}  // namespace

std::optional<BloatEstimate> estimateTableBloat(const BloatInput& in) {
  if (!estimable(in)) return std::nullopt;
  // HeapTupleHeaderData is 23 bytes plus a null bitmap of one bit per column when any
  // value is null, aligned; then the data, aligned as the next tuple starts aligned.
  const double header = maxAlign(23 + (in.has_nulls ? std::ceil(in.natts / 8) : 0));
  const double tuple = header + maxAlign(in.data_width) + kLinePointer;
  const double fillfactor = in.fillfactor > 0 ? in.fillfactor : 100;
  return estimate(in, tuple, (in.block_size - kPageHeader) * fillfactor / 100, 0);
}

std::optional<BloatEstimate> estimateBtreeBloat(const BloatInput& in) {
  if (!estimable(in)) return std::nullopt;
  // IndexTupleData is 8 bytes, plus a 4-byte null bitmap when the tuple has nulls; leaf
  // pages keep a 16-byte BTPageOpaqueData and are filled to the fillfactor (90 by
  // default); one metapage. Internal pages are left out (about 1 % of a B-tree).
  const double tuple = maxAlign(8 + (in.has_nulls ? 4 : 0) + in.data_width) + kLinePointer;
  const double fillfactor = in.fillfactor > 0 ? in.fillfactor : 90;
  return estimate(in, tuple, (in.block_size - kPageHeader - 16) * fillfactor / 100, 1);
}

Status parseTablesRows(const PgRows& rows, int top_n, SampleBatch& out, TablesReport& report) {
  auto reader = ResultReader::open(
      "tables", rows,
      {"kind", "schemaname", "relname", "indexrelname", "datname", "live", "dead", "modified",
       "vacuum_age", "analyze_age", "xid_age", "mxid_age", "pages", "tuples", "natts",
       "natts_stats", "data_width", "has_nulls", "fillfactor"});
  if (!reader.ok()) return reader.status();
  const ResultReader& r = *reader;
  const int c_kind = r.col("kind"), c_schema = r.col("schemaname"), c_rel = r.col("relname"),
            c_index = r.col("indexrelname"), c_db = r.col("datname"), c_live = r.col("live"),
            c_dead = r.col("dead"), c_mod = r.col("modified"), c_vac = r.col("vacuum_age"),
            c_ana = r.col("analyze_age"), c_xid = r.col("xid_age"), c_mxid = r.col("mxid_age"),
            c_pages = r.col("pages"), c_tuples = r.col("tuples"), c_natts = r.col("natts"),
            c_natts_stats = r.col("natts_stats"), c_width = r.col("data_width"),
            c_nulls = r.col("has_nulls"), c_ff = r.col("fillfactor");

  // Settings first: the block size is needed by every estimate.
  std::optional<size_t> settings_row;
  for (size_t i = 0; i < r.size(); ++i) {
    if (r.text(i, c_kind) == "settings") settings_row = i;
  }
  if (!settings_row) return internalError("tables: settings row missing from the result");
  const std::string datname = r.text(*settings_row, c_db);
  const double block_size = r.numberOr(*settings_row, c_pages, 8192);
  const double freeze_max_age = r.numberOr(*settings_row, c_xid, 0);

  auto bloatInput = [&](size_t i) {
    BloatInput in;
    in.block_size = block_size;
    in.pages = r.numberOr(i, c_pages, 0);
    in.tuples = r.numberOr(i, c_tuples, -1);
    in.natts = r.numberOr(i, c_natts, 0);
    in.natts_stats = r.numberOr(i, c_natts_stats, 0);
    in.data_width = r.numberOr(i, c_width, 0);
    in.has_nulls = r.flag(i, c_nulls);
    in.fillfactor = r.numberOr(i, c_ff, 0);
    return in;
  };

  struct IndexBloat {
    std::string schemaname, relname, indexrelname;
    BloatEstimate bloat;
  };
  struct Database {
    std::string datname;
    double xid_age, mxid_age;
  };
  TablesReport fresh;
  fresh.datname = datname;
  std::vector<IndexBloat> indexes;
  std::vector<Database> databases;
  double index_bloat_bytes = 0, indexes_unknown = 0;

  for (size_t i = 0; i < r.size(); ++i) {
    const std::string kind = r.text(i, c_kind);
    if (kind == "table") {
      TableHealth t;
      t.schemaname = r.text(i, c_schema);
      t.relname = r.text(i, c_rel);
      const auto live = r.number(i, c_live), dead = r.number(i, c_dead);
      if (!live || !dead) return internalError("tables: non-numeric tuple counts");
      t.live_tuples = *live;
      t.dead_tuples = *dead;
      t.modified_since_analyze = r.numberOr(i, c_mod, 0);
      t.dead_tuple_ratio = *live + *dead > 0 ? *dead / (*live + *dead) : 0;
      t.vacuum_age_seconds = r.number(i, c_vac);
      t.analyze_age_seconds = r.number(i, c_ana);
      t.xid_age = r.numberOr(i, c_xid, 0);
      const BloatInput in = bloatInput(i);
      t.bloat = estimateTableBloat(in);
      if (!t.bloat && t.analyze_age_seconds && in.tuples > 0 && in.natts > 0 &&
          in.natts_stats == 0) {
        ++fresh.stats_hidden;
      }
      fresh.tables.push_back(std::move(t));
    } else if (kind == "index") {
      const auto bloat = estimateBtreeBloat(bloatInput(i));
      if (!bloat) {
        ++indexes_unknown;
        continue;
      }
      index_bloat_bytes += bloat->bytes;
      if (bloat->bytes > 0) {
        indexes.push_back({r.text(i, c_schema), r.text(i, c_rel), r.text(i, c_index), *bloat});
      }
    } else if (kind == "database") {
      databases.push_back({r.text(i, c_db), r.numberOr(i, c_xid, 0), r.numberOr(i, c_mxid, 0)});
    } else if (kind != "settings") {
      return internalError("tables: unexpected row kind '" + kind + "'");
    }
  }

  const size_t n = static_cast<size_t>(std::max(1, top_n));
  // Indices into fresh.tables of the top n by `better`, ties broken by name.
  auto topBy = [&](auto key) {
    std::vector<size_t> order;
    for (size_t i = 0; i < fresh.tables.size(); ++i) {
      if (key(fresh.tables[i]) > 0) order.push_back(i);
    }
    const size_t keep = std::min(order.size(), n);
    std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep), order.end(),
                      [&](size_t a, size_t b) {
                        const TableHealth& x = fresh.tables[a];
                        const TableHealth& y = fresh.tables[b];
                        if (key(x) != key(y)) return key(x) > key(y);
                        return std::tie(x.schemaname, x.relname) <
                               std::tie(y.schemaname, y.relname);
                      });
    order.resize(keep);
    return order;
  };
  // What the maintenance planner acts on: dead tuples (VACUUM) and rows modified since
  // the last analyze (ANALYZE). Then the most bloated; then the oldest for wraparound.
  std::set<size_t> shown;
  for (size_t i :
       topBy([](const TableHealth& t) { return t.dead_tuples + t.modified_since_analyze; })) {
    shown.insert(i);
  }
  for (size_t i : topBy([](const TableHealth& t) { return t.bloat ? t.bloat->bytes : 0; })) {
    shown.insert(i);
  }
  // Small databases: every table fits in the top N, busy or not.
  if (fresh.tables.size() <= n) {
    for (size_t i = 0; i < fresh.tables.size(); ++i) shown.insert(i);
  }

  out.describe("pg_stat_user_tables_n_live_tup", MetricType::kGauge,
               "Estimated live rows (top tables by dead + modified rows, and by bloat).");
  out.describe("pg_stat_user_tables_n_dead_tup", MetricType::kGauge,
               "Estimated dead rows (top tables only).");
  out.describe("pg_stat_user_tables_n_mod_since_analyze", MetricType::kGauge,
               "Rows modified since the table was last analyzed (top tables only).");
  out.describe("dbpulse_pg_table_dead_tuple_ratio", MetricType::kGauge,
               "Dead rows / (live + dead rows) of the table (top tables only).");
  out.describe("dbpulse_pg_table_vacuum_age_seconds", MetricType::kGauge,
               "Seconds since the table was last vacuumed, manually or by autovacuum; absent "
               "when never.");
  out.describe("dbpulse_pg_table_analyze_age_seconds", MetricType::kGauge,
               "Seconds since the table was last analyzed, manually or by autovacuum; absent "
               "when never.");
  out.describe("dbpulse_pg_table_bloat_ratio", MetricType::kGauge,
               "Estimated share of the table's pages that is free or dead space "
               "(from statistics; absent when unknown).");
  out.describe("dbpulse_pg_table_bloat_bytes", MetricType::kGauge,
               "Estimated bytes of free or dead space in the table (from statistics).");
  for (size_t i : shown) {
    const TableHealth& t = fresh.tables[i];
    const Labels labels{{"datname", datname}, {"schemaname", t.schemaname}, {"relname", t.relname}};
    out.add("pg_stat_user_tables_n_live_tup", labels, t.live_tuples);
    out.add("pg_stat_user_tables_n_dead_tup", labels, t.dead_tuples);
    out.add("pg_stat_user_tables_n_mod_since_analyze", labels, t.modified_since_analyze);
    out.add("dbpulse_pg_table_dead_tuple_ratio", labels, t.dead_tuple_ratio);
    if (t.vacuum_age_seconds) {
      out.add("dbpulse_pg_table_vacuum_age_seconds", labels, *t.vacuum_age_seconds);
    }
    if (t.analyze_age_seconds) {
      out.add("dbpulse_pg_table_analyze_age_seconds", labels, *t.analyze_age_seconds);
    }
    if (t.bloat) {
      out.add("dbpulse_pg_table_bloat_ratio", labels, t.bloat->ratio);
      out.add("dbpulse_pg_table_bloat_bytes", labels, t.bloat->bytes);
    }
  }

  out.describe("dbpulse_pg_table_xid_age", MetricType::kGauge,
               "age(relfrozenxid) of the table or its TOAST table, whichever is older (the "
               "oldest tables only).");
  for (size_t i : topBy([](const TableHealth& t) { return t.xid_age; })) {
    const TableHealth& t = fresh.tables[i];
    out.add("dbpulse_pg_table_xid_age",
            Labels{{"datname", datname}, {"schemaname", t.schemaname}, {"relname", t.relname}},
            t.xid_age);
  }

  const size_t keep_indexes = std::min(indexes.size(), n);
  std::partial_sort(indexes.begin(), indexes.begin() + static_cast<std::ptrdiff_t>(keep_indexes),
                    indexes.end(), [](const IndexBloat& a, const IndexBloat& b) {
                      if (a.bloat.bytes != b.bloat.bytes) return a.bloat.bytes > b.bloat.bytes;
                      return std::tie(a.schemaname, a.indexrelname) <
                             std::tie(b.schemaname, b.indexrelname);
                    });
  out.describe("dbpulse_pg_index_bloat_ratio", MetricType::kGauge,
               "Estimated share of the B-tree index's pages that is free space (from "
               "statistics; the most bloated indexes only).");
  out.describe("dbpulse_pg_index_bloat_bytes", MetricType::kGauge,
               "Estimated bytes of free space in the B-tree index (the most bloated only).");
  for (size_t i = 0; i < keep_indexes; ++i) {
    const IndexBloat& x = indexes[i];
    const Labels labels{{"datname", datname},
                        {"schemaname", x.schemaname},
                        {"relname", x.relname},
                        {"indexrelname", x.indexrelname}};
    out.add("dbpulse_pg_index_bloat_ratio", labels, x.bloat.ratio);
    out.add("dbpulse_pg_index_bloat_bytes", labels, x.bloat.bytes);
  }

  double live = 0, dead = 0, never_vacuumed = 0, never_analyzed = 0, bloat_bytes = 0,
         bloat_unknown = 0;
  for (const auto& t : fresh.tables) {
    live += t.live_tuples;
    dead += t.dead_tuples;
    never_vacuumed += !t.vacuum_age_seconds;
    never_analyzed += !t.analyze_age_seconds;
    if (t.bloat) {
      bloat_bytes += t.bloat->bytes;
    } else {
      bloat_unknown += 1;
    }
  }
  const Labels db{{"datname", datname}};
  out.gauge("dbpulse_pg_user_tables", "User tables and materialized views in the database.", db,
            static_cast<double>(fresh.tables.size()));
  out.gauge("dbpulse_pg_tables_live_tuples", "Estimated live rows in all user tables.", db, live);
  out.gauge("dbpulse_pg_tables_dead_tuples", "Estimated dead rows in all user tables.", db, dead);
  out.gauge("dbpulse_pg_tables_dead_tuple_ratio",
            "Dead rows / (live + dead rows) over all user tables.", db,
            live + dead > 0 ? dead / (live + dead) : 0);
  out.gauge("dbpulse_pg_tables_never_vacuumed",
            "User tables never vacuumed, manually or by autovacuum.", db, never_vacuumed);
  out.gauge("dbpulse_pg_tables_never_analyzed",
            "User tables never analyzed, manually or by autovacuum.", db, never_analyzed);
  out.gauge("dbpulse_pg_tables_bloat_bytes",
            "Estimated free or dead space in all user tables with an estimate.", db, bloat_bytes);
  out.gauge("dbpulse_pg_tables_bloat_unknown",
            "User tables without a bloat estimate (never analyzed, or pg_stats hidden: the "
            "role lacks SELECT on them).",
            db, bloat_unknown);
  out.gauge("dbpulse_pg_indexes_bloat_bytes",
            "Estimated free space in all B-tree indexes of user tables with an estimate.", db,
            index_bloat_bytes);
  out.gauge("dbpulse_pg_indexes_bloat_unknown",
            "B-tree indexes of user tables without a bloat estimate (expression columns, "
            "no statistics, or no SELECT privilege).",
            db, indexes_unknown);

  out.describe("dbpulse_pg_database_xid_age", MetricType::kGauge,
               "age(datfrozenxid): transactions since the database was last fully frozen "
               "(wraparound protection starts at autovacuum_freeze_max_age).");
  out.describe("dbpulse_pg_database_mxid_age", MetricType::kGauge,
               "mxid_age(datminmxid): multixacts since the database was last fully frozen.");
  for (const auto& d : databases) {
    out.add("dbpulse_pg_database_xid_age", Labels{{"datname", d.datname}}, d.xid_age);
    out.add("dbpulse_pg_database_mxid_age", Labels{{"datname", d.datname}}, d.mxid_age);
  }
  out.gauge("pg_settings_autovacuum_freeze_max_age", "Server setting autovacuum_freeze_max_age.",
            {}, freeze_max_age);

  report = std::move(fresh);
  return okStatus();
}

Status TablesCollector::collect(const CollectContext& /*ctx*/, SampleBatch& out) {
  TablesReport report;
  {
    auto rows = session_->query(kTablesQuery);
    if (!rows.ok()) return collectorQueryError(name_, rows.status());
    if (Status s = parseTablesRows(rows.value(), top_n_, out, report); !s.ok()) return s;
  }
  pgutil::releaseFreedMemory();  // the rows of every table and index
  if (report.stats_hidden > 0 && !stats_hidden_logged_) {
    stats_hidden_logged_ = true;
    spdlog::warn(
        "collector tables: no bloat estimate for {} analyzed tables of database {}: pg_stats "
        "shows statistics only for columns the role may read (privilege missing: SELECT on "
        "the tables; fix: GRANT SELECT ON ALL TABLES IN SCHEMA ... TO the dbpulse role)",
        report.stats_hidden, report.datname);
  }
  MutexLock lock(mu_);
  latest_ = std::move(report);
  return okStatus();
}

TablesReport TablesCollector::latest() const {
  MutexLock lock(mu_);
  return latest_;
}

void TablesCollector::cancel() { session_->cancel(); }

}  // namespace dbpulse::collectors
