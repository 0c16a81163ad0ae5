#include "collectors/postgres/indexes_collector.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "collectors/clients/postgres/sql_session.h"
#include "collectors/postgres/pg_collect_util.h"

namespace dbpulse::collectors {

namespace {

constexpr const char* kCollector = "indexes";
constexpr const char* kPrivilegeHint = "grant pg_monitor to the dbpulse role";
// Rows parsed at a time: a few hundred kilobytes of PgRows, whatever the schema.
constexpr size_t kIndexChunkRows = 500;

// Row kinds: 'stats' (one: current_database() in `schemaname`, the statistics window in
// `v1`), 'index' (one per index of a user table; v1..v3 = idx_scan, idx_tup_read,
// idx_tup_fetch), 'table' (top-N user tables by seq_tup_read; v1..v3 = seq_scan,
// seq_tup_read, idx_scan). Columns a kind does not use are NULL.
//
// - pg_constraint.conindid is not indexed: reading the set of constraint-backing indexes
//   once (DISTINCT) keeps the join a hash join, linear in indexes + constraints.
// - pg_stat_progress_create_index tells a build in progress (also invalid until it ends)
//   from a failed one.
// - Rows come in `ord`er: the statistics row, the indexes grouped by table (so that
//   scanIndexes() can judge one table at a time), the tables by seq_tup_read (their
//   LIMIT subquery's order survives a sort by name among equal keys: see parseIndexRows).
// - The statistics window: pg_stat_database.stats_reset is NULL until the first reset;
//   statistics then cover at least the time since the server started (they also
//   survive a clean restart, so this underestimates, which errs on the safe side).
constexpr const char* kIndexesQueryTemplate = R"SQL(
WITH cons AS (
  SELECT DISTINCT conindid FROM pg_constraint WHERE conindid <> 0
), building AS (
  SELECT DISTINCT index_relid FROM pg_stat_progress_create_index
)
SELECT 0 AS ord, 'stats' AS kind, NULL::bigint AS oid, current_database()::text AS schemaname,
       NULL::text AS relname, NULL::text AS indexrelname, NULL::text AS qualified,
       NULL::text AS amname, NULL::float8 AS size_bytes,
       GREATEST(0, extract(epoch FROM now() - COALESCE(
         (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()),
         pg_postmaster_start_time())))::float8 AS v1,
       NULL::float8 AS v2, NULL::float8 AS v3,
       NULL::bool AS indisvalid, NULL::bool AS indisunique, NULL::bool AS indisprimary,
       NULL::bool AS indisexclusion, NULL::bool AS backs_constraint, NULL::bool AS building,
       NULL::int AS indnkeyatts, NULL::text AS indkey, NULL::text AS indclass,
       NULL::text AS indcollation, NULL::text AS indoption, NULL::text AS exprs,
       NULL::text AS pred, NULL::bool AS nulls_not_distinct
UNION ALL
SELECT 1, 'index', s.indexrelid::bigint, s.schemaname::text, s.relname::text,
       s.indexrelname::text, quote_ident(s.schemaname) || '.' || quote_ident(s.indexrelname),
       am.amname::text, pg_relation_size(s.indexrelid)::float8,
       s.idx_scan::float8, s.idx_tup_read::float8, s.idx_tup_fetch::float8,
       i.indisvalid, i.indisunique, i.indisprimary, i.indisexclusion,
       c.conindid IS NOT NULL, b.index_relid IS NOT NULL,
       i.indnkeyatts::int, i.indkey::text, i.indclass::text, i.indcollation::text,
       i.indoption::text, pg_get_expr(i.indexprs, i.indrelid), pg_get_expr(i.indpred, i.indrelid),
       @NULLS_NOT_DISTINCT@
  FROM pg_stat_user_indexes s
  JOIN pg_index i ON i.indexrelid = s.indexrelid
  JOIN pg_class ic ON ic.oid = s.indexrelid
  JOIN pg_am am ON am.oid = ic.relam
  LEFT JOIN cons c ON c.conindid = s.indexrelid
  LEFT JOIN building b ON b.index_relid = s.indexrelid
UNION ALL
SELECT 2, 'table', NULL, schemaname, relname, NULL, NULL, NULL, NULL, v1, v2, v3,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
  FROM (SELECT schemaname::text, relname::text, COALESCE(seq_scan, 0)::float8 AS v1,
               COALESCE(seq_tup_read, 0)::float8 AS v2, COALESCE(idx_scan, 0)::float8 AS v3
          FROM pg_stat_user_tables
         ORDER BY seq_tup_read DESC NULLS LAST, schemaname, relname
         LIMIT @TOP_N@) t
 ORDER BY ord, schemaname, relname, oid
)SQL";

std::string replaceAll(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// "2 5" (int2vector / oidvector text) -> {2, 5}.
template <typename T>
bool parseVector(const std::optional<std::string>& field, std::vector<T>& out) {
  out.clear();
  if (!field) return false;
  const std::string& s = *field;
  size_t pos = 0;
  while (pos < s.size()) {
    if (s[pos] == ' ') {
      ++pos;
      continue;
    }
    size_t end = s.find(' ', pos);
    if (end == std::string::npos) end = s.size();
    T value{};
    auto [ptr, ec] = std::from_chars(s.data() + pos, s.data() + end, value);
    if (ec != std::errc() || ptr != s.data() + end) return false;
    out.push_back(value);
    pos = end;
  }
  return true;
}

bool btree(const IndexInfo& i) { return i.amname == "btree"; }

bool mustKeep(const IndexInfo& i) { return i.primary || i.exclusion || i.backs_constraint; }

// True when `big` can serve every query and guarantee that `small` serves (see header).
bool covers(const IndexInfo& big, const IndexInfo& small) {
  if (!big.valid || big.building) return false;
  if (big.amname != small.amname || big.exprs != small.exprs || big.pred != small.pred) {
    return false;
  }
  const size_t n = small.keys.size();
  if (n == 0 || n > big.keys.size()) return false;
  if (!btree(small) && n != big.keys.size()) return false;
  if (small.opclasses.size() < n || small.collations.size() < n || small.options.size() < n ||
      big.opclasses.size() < n || big.collations.size() < n || big.options.size() < n) {
    return false;
  }
  for (size_t k = 0; k < n; ++k) {
    if (small.keys[k] != big.keys[k] || small.opclasses[k] != big.opclasses[k] ||
        small.collations[k] != big.collations[k] || small.options[k] != big.options[k]) {
      return false;
    }
  }
  for (int col : small.includes) {
    if (std::find(big.keys.begin(), big.keys.end(), col) == big.keys.end() &&
        std::find(big.includes.begin(), big.includes.end(), col) == big.includes.end()) {
      return false;
    }
  }
  if (small.unique) {
    // Uniqueness over these columns is a guarantee only an equally narrow unique index
    // gives.
    if (!big.unique || big.keys.size() != n || big.nulls_not_distinct != small.nulls_not_distinct) {
      return false;
    }
  }
  return true;
}

// Which of two mutually covering indexes to keep: higher ranks first.
auto keepRank(const IndexInfo& i) {
  return std::make_tuple(mustKeep(i), i.unique, i.idx_scan, -i.oid);
}

std::string humanDuration(double seconds) {
  if (seconds >= 2 * 86400)
    return std::to_string(static_cast<long long>(seconds / 86400)) + " days";
  if (seconds >= 2 * 3600) return std::to_string(static_cast<long long>(seconds / 3600)) + " hours";
  if (seconds >= 120) return std::to_string(static_cast<long long>(seconds / 60)) + " minutes";
  return std::to_string(static_cast<long long>(seconds)) + " seconds";
}

int reasonOrder(const std::string& reason) {
  return reason == "invalid" ? 0 : reason == "duplicate" ? 1 : 2;
}

// By reason (invalid, duplicate, unused), then size descending, then name.
void sortFindings(std::vector<IndexFinding>& findings) {
  std::stable_sort(findings.begin(), findings.end(),
                   [](const IndexFinding& a, const IndexFinding& b) {
                     const int ra = reasonOrder(a.reason), rb = reasonOrder(b.reason);
                     if (ra != rb) return ra < rb;
                     if (a.size_bytes != b.size_bytes) return a.size_bytes > b.size_bytes;
                     return std::tie(a.schemaname, a.index) < std::tie(b.schemaname, b.index);
                   });
}

}  // namespace

std::string indexesQuery(int server_version_num, int top_n) {
  // NULLS NOT DISTINCT unique indexes (PostgreSQL 15) are not interchangeable with plain
  // unique ones.
  const char* nnd = server_version_num >= 150000 ? "i.indnullsnotdistinct" : "false";
  return replaceAll(replaceAll(kIndexesQueryTemplate, "@NULLS_NOT_DISTINCT@", nnd), "@TOP_N@",
                    std::to_string(top_n > 0 ? top_n : kDefaultIndexesTopN));
}

namespace {

Status requireIndexColumns(const PgRows& rows) {
  return pgutil::requireColumns(kCollector, rows,
                                {"kind",
                                 "oid",
                                 "schemaname",
                                 "relname",
                                 "indexrelname",
                                 "qualified",
                                 "amname",
                                 "size_bytes",
                                 "v1",
                                 "v2",
                                 "v3",
                                 "indisvalid",
                                 "indisunique",
                                 "indisprimary",
                                 "indisexclusion",
                                 "backs_constraint",
                                 "building",
                                 "indnkeyatts",
                                 "indkey",
                                 "indclass",
                                 "indcollation",
                                 "indoption",
                                 "exprs",
                                 "pred",
                                 "nulls_not_distinct"});
}

// Largest first; equal ones keep the query's order (by name).
void sortTables(std::vector<TableScanInfo>& tables) {
  std::stable_sort(tables.begin(), tables.end(),
                   [](const TableScanInfo& a, const TableScanInfo& b) {
                     return a.seq_tup_read > b.seq_tup_read;
                   });
}

Status parseIndexRowsInto(const PgRows& rows, IndexStats& stats, bool& seen_stats) {
  if (Status s = requireIndexColumns(rows); !s.ok()) return s;
  auto col = [&rows](std::string_view name) { return static_cast<size_t>(rows.column(name)); };
  const size_t c_kind = col("kind"), c_oid = col("oid"), c_schema = col("schemaname"),
               c_rel = col("relname"), c_idx = col("indexrelname"), c_qual = col("qualified"),
               c_am = col("amname"), c_size = col("size_bytes"), c_v1 = col("v1"), c_v2 = col("v2"),
               c_v3 = col("v3"), c_valid = col("indisvalid"), c_unique = col("indisunique"),
               c_primary = col("indisprimary"), c_excl = col("indisexclusion"),
               c_cons = col("backs_constraint"), c_building = col("building"),
               c_nkey = col("indnkeyatts"), c_indkey = col("indkey"), c_class = col("indclass"),
               c_coll = col("indcollation"), c_opt = col("indoption"), c_exprs = col("exprs"),
               c_pred = col("pred"), c_nnd = col("nulls_not_distinct");
  for (const auto& row : rows.rows) {
    if (row.size() != rows.columns.size()) {
      return internalError("indexes: row with " + std::to_string(row.size()) +
                           " fields, expected " + std::to_string(rows.columns.size()));
    }
    const std::string kind = row[c_kind].value_or("");
    if (kind == "stats") {
      seen_stats = true;
      stats.datname = row[c_schema].value_or("");
      if (!pgutil::toDouble(row[c_v1], stats.stats_window_seconds)) {
        return internalError("indexes: non-numeric statistics window");
      }
    } else if (kind == "index") {
      IndexInfo i;
      long long nkey = 0;
      std::vector<int> all_columns;
      if (!pgutil::toInt64(row[c_oid], i.oid) || !pgutil::toDouble(row[c_size], i.size_bytes) ||
          !pgutil::toDouble(row[c_v1], i.idx_scan) ||
          !pgutil::toDouble(row[c_v2], i.idx_tup_read) ||
          !pgutil::toDouble(row[c_v3], i.idx_tup_fetch) || !pgutil::toInt64(row[c_nkey], nkey) ||
          !parseVector(row[c_indkey], all_columns) || !parseVector(row[c_class], i.opclasses) ||
          !parseVector(row[c_coll], i.collations) || !parseVector(row[c_opt], i.options) ||
          nkey < 0 || static_cast<size_t>(nkey) > all_columns.size()) {
        return internalError("indexes: malformed row for index '" + row[c_idx].value_or("?") + "'");
      }
      i.schemaname = row[c_schema].value_or("");
      i.relname = row[c_rel].value_or("");
      i.indexrelname = row[c_idx].value_or("");
      i.qualified = row[c_qual].value_or("");
      i.amname = row[c_am].value_or("");
      i.valid = pgutil::toBool(row[c_valid]);
      i.unique = pgutil::toBool(row[c_unique]);
      i.primary = pgutil::toBool(row[c_primary]);
      i.exclusion = pgutil::toBool(row[c_excl]);
      i.backs_constraint = pgutil::toBool(row[c_cons]);
      i.building = pgutil::toBool(row[c_building]);
      i.nulls_not_distinct = pgutil::toBool(row[c_nnd]);
      i.keys.assign(all_columns.begin(), all_columns.begin() + nkey);
      i.includes.assign(all_columns.begin() + nkey, all_columns.end());
      i.exprs = row[c_exprs].value_or("");
      i.pred = row[c_pred].value_or("");
      stats.indexes.push_back(std::move(i));
    } else if (kind == "table") {
      TableScanInfo t;
      t.schemaname = row[c_schema].value_or("");
      t.relname = row[c_rel].value_or("");
      if (!pgutil::toDouble(row[c_v1], t.seq_scan) ||
          !pgutil::toDouble(row[c_v2], t.seq_tup_read) ||
          !pgutil::toDouble(row[c_v3], t.idx_scan)) {
        return internalError("indexes: malformed row for table '" + t.relname + "'");
      }
      stats.tables.push_back(std::move(t));
    } else {
      return internalError("indexes: unexpected row kind '" + kind + "'");
    }
  }
  return okStatus();
}

}  // namespace

Result<IndexStats> parseIndexRows(const PgRows& rows) {
  IndexStats stats;
  bool seen_stats = false;
  if (Status s = parseIndexRowsInto(rows, stats, seen_stats); !s.ok()) return s;
  if (!seen_stats) return internalError("indexes: statistics row missing from the result");
  for (IndexInfo& i : stats.indexes) i.observed_seconds = stats.stats_window_seconds;
  sortTables(stats.tables);
  return stats;
}

std::vector<IndexFinding> findIndexProblems(const IndexStats& stats, double min_age_seconds) {
  std::vector<IndexFinding> findings;
  auto finding = [](const IndexInfo& i, const char* reason, std::string detail) {
    IndexFinding f;
    f.schemaname = i.schemaname;
    f.table = i.relname;
    f.index = i.indexrelname;
    f.reason = reason;
    f.statement = "DROP INDEX CONCURRENTLY " + i.qualified + ";";
    f.size_bytes = i.size_bytes;
    f.detail = std::move(detail);
    return f;
  };

  // Indexes grouped by table: duplicates are only looked for within one table.
  std::map<std::pair<std::string, std::string>, std::vector<const IndexInfo*>> by_table;
  for (const IndexInfo& i : stats.indexes) by_table[{i.schemaname, i.relname}].push_back(&i);

  std::set<long long> reported;
  for (const IndexInfo& i : stats.indexes) {
    if (!i.valid && !i.building) {
      findings.push_back(finding(i, "invalid",
                                 "invalid (a failed CREATE INDEX CONCURRENTLY or REINDEX): "
                                 "maintained on every write, never used by queries"));
      reported.insert(i.oid);
    }
  }

  for (const auto& [table, indexes] : by_table) {
    // Redundant: covered by another index that is not itself the one to drop of a pair.
    std::set<const IndexInfo*> redundant;
    for (const IndexInfo* a : indexes) {
      if (!a->valid || a->building || mustKeep(*a)) continue;
      for (const IndexInfo* b : indexes) {
        if (a == b || !covers(*b, *a)) continue;
        if (!covers(*a, *b) || keepRank(*b) > keepRank(*a)) {
          redundant.insert(a);
          break;
        }
      }
    }
    for (const IndexInfo* a : redundant) {
      // Name a covering index that stays (one always exists: covering is transitive and
      // ties are broken by a strict order); any coverer if that search fails.
      const IndexInfo* keeper = nullptr;
      for (const IndexInfo* b : indexes) {
        if (b == a || !covers(*b, *a)) continue;
        if (redundant.count(b) == 0) {
          keeper = b;
          break;
        }
        if (keeper == nullptr) keeper = b;
      }
      const bool exact = keeper != nullptr && covers(*a, *keeper);
      findings.push_back(finding(*a, "duplicate",
                                 (exact ? "same definition as " : "covered by ") +
                                     (keeper != nullptr ? keeper->qualified : std::string("?"))));
      reported.insert(a->oid);
    }
  }

  for (const IndexInfo& i : stats.indexes) {
    if (reported.count(i.oid) != 0 || !i.valid || i.building || i.unique || mustKeep(i)) continue;
    if (i.idx_scan > 0 || i.observed_seconds < min_age_seconds) continue;
    findings.push_back(finding(i, "unused", "no scans in " + humanDuration(i.observed_seconds)));
  }

  sortFindings(findings);
  return findings;
}

Result<IndexScan> scanIndexes(const ChunkedQuery& run, int server_version_num, int top_n,
                              double min_age_seconds,
                              const std::function<void(IndexInfo&)>& adjust) {
  const size_t n = static_cast<size_t>(top_n > 0 ? top_n : kDefaultIndexesTopN);
  IndexScan scan;
  IndexStats& stats = scan.stats;
  stats.index_count = 0;
  bool seen_stats = false;
  IndexStats table;  // one table's indexes at a time
  // A heap of the n largest so far, the smallest of them on top.
  auto larger = [](const IndexInfo& a, const IndexInfo& b) {
    if (a.size_bytes != b.size_bytes) return a.size_bytes > b.size_bytes;
    return a.oid < b.oid;
  };
  auto judgeTable = [&] {
    if (table.indexes.empty()) return;
    table.datname = stats.datname;
    table.stats_window_seconds = stats.stats_window_seconds;
    for (IndexInfo& i : table.indexes) {
      i.observed_seconds = stats.stats_window_seconds;
      if (adjust) adjust(i);
    }
    for (IndexFinding& f : findIndexProblems(table, min_age_seconds)) {
      scan.findings.push_back(std::move(f));
    }
    *stats.index_count += table.indexes.size();
    for (IndexInfo& i : table.indexes) {
      if (stats.indexes.size() == n && !larger(i, stats.indexes.front())) continue;
      stats.indexes.push_back(std::move(i));
      std::push_heap(stats.indexes.begin(), stats.indexes.end(), larger);
      if (stats.indexes.size() > n) {
        std::pop_heap(stats.indexes.begin(), stats.indexes.end(), larger);
        stats.indexes.pop_back();
      }
    }
    table.indexes.clear();
  };
  IndexStats chunk_stats;
  Status status = run(indexesQuery(server_version_num, top_n), [&](const PgRows& chunk) {
    chunk_stats.indexes.clear();
    if (Status s = parseIndexRowsInto(chunk, chunk_stats, seen_stats); !s.ok()) return s;
    if (seen_stats && stats.datname.empty()) {
      stats.datname = chunk_stats.datname;
      stats.stats_window_seconds = chunk_stats.stats_window_seconds;
    }
    for (IndexInfo& i : chunk_stats.indexes) {
      if (!table.indexes.empty() && (table.indexes.back().schemaname != i.schemaname ||
                                     table.indexes.back().relname != i.relname)) {
        judgeTable();
      }
      table.indexes.push_back(std::move(i));
    }
    return okStatus();
  });
  if (!status.ok()) return status;
  if (!seen_stats) return internalError("indexes: statistics row missing from the result");
  judgeTable();
  std::sort(stats.indexes.begin(), stats.indexes.end(), larger);
  stats.tables = std::move(chunk_stats.tables);
  sortTables(stats.tables);
  sortFindings(scan.findings);
  return scan;
}

void exportIndexSamples(const IndexStats& stats, const std::vector<IndexFinding>& findings,
                        int top_n, SampleBatch& out) {
  const std::string& db = stats.datname;
  std::map<std::string, std::pair<double, double>> by_reason = {
      {"invalid", {0, 0}}, {"duplicate", {0, 0}}, {"unused", {0, 0}}};
  for (const IndexFinding& f : findings) {
    auto& [count, bytes] = by_reason[f.reason];
    count += 1;
    bytes += f.size_bytes;
  }
  out.gauge("dbpulse_pg_indexes", "Indexes on user tables in this database.",
            Labels{{"datname", db}},
            static_cast<double>(stats.index_count.value_or(stats.indexes.size())));
  out.gauge("dbpulse_pg_indexes_unused",
            "Indexes never scanned in the statistics window that back no constraint.",
            Labels{{"datname", db}}, by_reason["unused"].first);
  out.gauge("dbpulse_pg_indexes_duplicate",
            "Indexes covered by another index of the same table (a leading-prefix or exact "
            "duplicate).",
            Labels{{"datname", db}}, by_reason["duplicate"].first);
  out.gauge("dbpulse_pg_indexes_invalid",
            "Invalid indexes (e.g. a failed CREATE INDEX CONCURRENTLY) not being built.",
            Labels{{"datname", db}}, by_reason["invalid"].first);
  out.describe("dbpulse_pg_indexes_droppable_bytes", MetricType::kGauge,
               "Total size of the indexes suggested for dropping, by reason.");
  for (const auto& [reason, figures] : by_reason) {
    out.add("dbpulse_pg_indexes_droppable_bytes", Labels{{"datname", db}, {"reason", reason}},
            figures.second);
  }
  out.gauge("dbpulse_pg_index_stats_window_seconds",
            "How long the index statistics cover: since pg_stat_database.stats_reset, or since "
            "the server started when never reset.",
            Labels{{"datname", db}}, stats.stats_window_seconds);

  const size_t n = static_cast<size_t>(top_n > 0 ? top_n : kDefaultIndexesTopN);
  std::vector<const IndexInfo*> by_size;
  for (const IndexInfo& i : stats.indexes) by_size.push_back(&i);
  std::stable_sort(by_size.begin(), by_size.end(), [](const IndexInfo* a, const IndexInfo* b) {
    if (a->size_bytes != b->size_bytes) return a->size_bytes > b->size_bytes;
    return a->oid < b->oid;
  });
  if (by_size.size() > n) by_size.resize(n);
  // postgres_exporter's names and types (counters without _total: promtool's lint finding
  // is accepted for the peers' names, see collectors/metric_names.tsv).
  out.describe("pg_stat_user_indexes_idx_scan", MetricType::kCounter,
               "Index scans since the statistics reset (top indexes by size).");
  out.describe("pg_stat_user_indexes_idx_tup_read", MetricType::kCounter,
               "Index entries returned by scans of the index (top indexes by size).");
  out.describe("pg_stat_user_indexes_idx_tup_fetch", MetricType::kCounter,
               "Live table rows fetched by simple index scans using the index (top indexes by "
               "size).");
  out.describe("pg_stat_user_indexes_size_bytes", MetricType::kGauge,
               "Index size on disk (top indexes by size).");
  for (const IndexInfo* i : by_size) {
    const Labels labels{{"datname", db},
                        {"schemaname", i->schemaname},
                        {"relname", i->relname},
                        {"indexrelname", i->indexrelname}};
    out.add("pg_stat_user_indexes_idx_scan", labels, i->idx_scan);
    out.add("pg_stat_user_indexes_idx_tup_read", labels, i->idx_tup_read);
    out.add("pg_stat_user_indexes_idx_tup_fetch", labels, i->idx_tup_fetch);
    out.add("pg_stat_user_indexes_size_bytes", labels, i->size_bytes);
  }

  out.describe("pg_stat_user_tables_seq_scan", MetricType::kCounter,
               "Sequential scans of the table (top tables by seq_tup_read).");
  out.describe("pg_stat_user_tables_seq_tup_read", MetricType::kCounter,
               "Rows read by sequential scans (top tables by seq_tup_read).");
  out.describe("pg_stat_user_tables_idx_scan", MetricType::kCounter,
               "Index scans of the table (top tables by seq_tup_read).");
  out.describe("dbpulse_pg_table_seq_scan_ratio", MetricType::kGauge,
               "Share of the table's scans that were sequential, since the statistics reset "
               "(top tables by seq_tup_read).");
  out.describe("dbpulse_pg_table_seq_tup_read_per_scan", MetricType::kGauge,
               "Average rows read per sequential scan: high on a table read often is the "
               "signal for a missing index (top tables by seq_tup_read).");
  size_t exported_tables = 0;
  for (const TableScanInfo& t : stats.tables) {
    if (exported_tables++ == n) break;
    const Labels labels{{"datname", db}, {"schemaname", t.schemaname}, {"relname", t.relname}};
    out.add("pg_stat_user_tables_seq_scan", labels, t.seq_scan);
    out.add("pg_stat_user_tables_seq_tup_read", labels, t.seq_tup_read);
    out.add("pg_stat_user_tables_idx_scan", labels, t.idx_scan);
    const double scans = t.seq_scan + t.idx_scan;
    out.add("dbpulse_pg_table_seq_scan_ratio", labels, scans > 0 ? t.seq_scan / scans : 0);
    out.add("dbpulse_pg_table_seq_tup_read_per_scan", labels,
            t.seq_scan > 0 ? t.seq_tup_read / t.seq_scan : 0);
  }
}

IndexesCollector::IndexesCollector(SqlSession& session, IndexesOptions options)
    : session_(session.caller()), options_([&options] {
        if (options.top_n <= 0) options.top_n = kDefaultIndexesTopN;
        if (options.min_age.count() <= 0) options.min_age = kDefaultUnusedIndexMinAge;
        return options;
      }()) {}

Status IndexesCollector::collect(const CollectContext& ctx, SampleBatch& out) {
  auto version = serverVersionNum(*session_);
  if (!version.ok()) return pgutil::mapQueryError(kCollector, version.status(), kPrivilegeHint);

  // Index ages: those present at the first run are as old as the statistics window; those
  // appearing later count from when they were first seen. Forget dropped ones.
  std::map<long long, WallTime> seen_now;
  auto adjust = [&](IndexInfo& i) {
    WallTime first = WallTime::min();  // present at the first run
    if (baseline_taken_) {
      auto it = first_seen_.find(i.oid);
      first = it != first_seen_.end() ? it->second : ctx.now;
    }
    seen_now[i.oid] = first;
    if (first != WallTime::min()) {
      const double age = std::chrono::duration<double>(ctx.now - first).count();
      i.observed_seconds = std::min(i.observed_seconds, std::max(0.0, age));
    }
  };
  const double min_age_seconds = std::chrono::duration<double>(options_.min_age).count();
  auto scan = scanIndexes(
      [this](const std::string& sql, const PgChunkFn& on_chunk) {
        return session_->queryChunks(sql, kIndexChunkRows, on_chunk);
      },
      *version, options_.top_n, min_age_seconds, adjust);
  if (!scan.ok()) return pgutil::mapQueryError(kCollector, scan.status(), kPrivilegeHint);
  first_seen_ = std::move(seen_now);
  baseline_taken_ = true;

  exportIndexSamples(scan->stats, scan->findings, options_.top_n, out);
  {
    MutexLock lock(mu_);
    latest_ = std::move(scan->findings);
  }
  pgutil::releaseFreedMemory();  // the chunks and each table's parsed indexes
  return okStatus();
}

void IndexesCollector::cancel() { session_->cancel(); }

std::vector<IndexFinding> IndexesCollector::latestFindings() const {
  MutexLock lock(mu_);
  return latest_;
}

}  // namespace dbpulse::collectors
