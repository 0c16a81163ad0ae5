#include "collectors/postgres/tables_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;
using Opt = std::optional<std::string>;

const std::vector<std::string> kColumns = {
    "kind",     "schemaname",  "relname",     "indexrelname", "datname",   "live",  "dead",
    "modified", "vacuum_age",  "analyze_age", "xid_age",      "mxid_age",  "pages", "tuples",
    "natts",    "natts_stats", "data_width",  "has_nulls",    "fillfactor"};

std::string num(double v) { return std::to_string(v); }

struct Table {
  std::string relname;
  double live = 100, dead = 0, modified = 0;
  std::optional<double> vacuum_age = 60, analyze_age = 60;
  double xid_age = 1000;
  double pages = 1, tuples = 100, natts = 2, natts_stats = 2, width = 16;
};

Row tableRow(const Table& t) {
  auto opt = [](std::optional<double> v) { return v ? Opt(num(*v)) : std::nullopt; };
  return Row{"table",           "public",
             t.relname,         std::nullopt,
             std::nullopt,      num(t.live),
             num(t.dead),       num(t.modified),
             opt(t.vacuum_age), opt(t.analyze_age),
             num(t.xid_age),    std::nullopt,
             num(t.pages),      num(t.tuples),
             num(t.natts),      num(t.natts_stats),
             num(t.width),      "f",
             std::nullopt};
}

Row indexRow(const std::string& relname, const std::string& index, double pages, double tuples,
             double natts_stats = 1) {
  return Row{"index",          "public",     relname,      index,        std::nullopt,
             std::nullopt,     std::nullopt, std::nullopt, std::nullopt, std::nullopt,
             std::nullopt,     std::nullopt, num(pages),   num(tuples),  "1",
             num(natts_stats), "8",          "f",          std::nullopt};
}

Row databaseRow(const std::string& datname, double xid_age) {
  return Row{"database",   std::nullopt, std::nullopt, std::nullopt, datname,
             std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
             num(xid_age), "7",          std::nullopt, std::nullopt, std::nullopt,
             std::nullopt, std::nullopt, "f",          std::nullopt};
}

Row settingsRow() {
  return Row{"settings",   std::nullopt, std::nullopt, std::nullopt, "chat",
             std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
             "200000000",  std::nullopt, "8192",       std::nullopt, std::nullopt,
             std::nullopt, std::nullopt, "f",          std::nullopt};
}

PgRows rowsOf(std::vector<Row> rows, bool settings = true) {
  PgRows r;
  r.columns = kColumns;
  r.rows = std::move(rows);
  if (settings) r.rows.push_back(settingsRow());
  return r;
}

using batchtest::value;

std::set<std::string> relnamesOf(const SampleBatch& b, const std::string& name) {
  std::set<std::string> out;
  for (const auto& s : b.samples()) {
    if (s.name == name) out.insert(std::string(s.labels.get("relname")));
  }
  return out;
}

Labels table(const std::string& relname) {
  return Labels{{"datname", "chat"}, {"schemaname", "public"}, {"relname", relname}};
}

// ---------------------------------------------------------------- estimates

BloatInput heap(double pages, double tuples) {
  BloatInput in;
  in.pages = pages;
  in.tuples = tuples;
  in.natts = 4;
  in.natts_stats = 4;
  in.data_width = 53;
  return in;
}

TEST(BloatEstimateTest, HeapPagesAgainstRowWidth) {
  // 24-byte header + 56 bytes of data + 4-byte line pointer = 84 bytes: 97 rows per page,
  // so 10,000 rows need 104 pages.
  auto tight = estimateTableBloat(heap(104, 10000));
  ASSERT_TRUE(tight);
  EXPECT_DOUBLE_EQ(tight->ratio, 0);
  auto half = estimateTableBloat(heap(208, 10000));
  ASSERT_TRUE(half);
  EXPECT_DOUBLE_EQ(half->ratio, 0.5);
  EXPECT_DOUBLE_EQ(half->bytes, 104 * 8192);
  // Fewer pages than expected (wide values were TOASTed): no bloat, not a negative one.
  EXPECT_DOUBLE_EQ(estimateTableBloat(heap(50, 10000))->ratio, 0);
}

TEST(BloatEstimateTest, NullBitmapAndFillfactorCount) {
  BloatInput nulls = heap(1000, 10000);
  nulls.natts = 9;  // 23 + 2 bytes of bitmap -> a 32-byte header: 92 bytes, 88 per page
  nulls.natts_stats = 9;
  nulls.has_nulls = true;
  EXPECT_DOUBLE_EQ(estimateTableBloat(nulls)->ratio, 1 - 114.0 / 1000);
  BloatInput half_full = heap(1000, 10000);
  half_full.fillfactor = 50;  // 4,084 usable bytes: 48 rows per page, 209 pages
  EXPECT_DOUBLE_EQ(estimateTableBloat(half_full)->ratio, 1 - 209.0 / 1000);
}

TEST(BloatEstimateTest, UnknownWithoutStatistics) {
  BloatInput never_analyzed = heap(100, -1);
  EXPECT_FALSE(estimateTableBloat(never_analyzed));
  BloatInput hidden = heap(100, 1000);
  hidden.natts_stats = 0;  // pg_stats hides the columns: no SELECT privilege
  EXPECT_FALSE(estimateTableBloat(hidden));
  BloatInput partly = heap(100, 1000);
  partly.natts_stats = 3;
  EXPECT_FALSE(estimateTableBloat(partly));
  // Tiny relations are not worth an estimate: reported as no bloat.
  auto tiny = estimateTableBloat(heap(3, 1000));
  ASSERT_TRUE(tiny);
  EXPECT_DOUBLE_EQ(tiny->bytes, 0);
}

TEST(BloatEstimateTest, BtreeLeafPagesAgainstKeyWidth) {
  BloatInput in;
  in.pages = 58;
  in.tuples = 10000;
  in.natts = 1;
  in.natts_stats = 1;
  in.data_width = 8;
  // 16-byte tuple + 4-byte line pointer; (8192 - 40) x 90 % = 7,336 bytes: 366 per leaf
  // page, 28 leaves + the metapage = 29 pages expected.
  auto e = estimateBtreeBloat(in);
  ASSERT_TRUE(e);
  EXPECT_DOUBLE_EQ(e->ratio, 0.5);
  in.fillfactor = 100;  // 407 per page: 25 + 1
  EXPECT_DOUBLE_EQ(estimateBtreeBloat(in)->ratio, 1 - 26.0 / 58);
  in.natts = 2;  // an expression column without statistics
  EXPECT_FALSE(estimateBtreeBloat(in));
}

// ---------------------------------------------------------------- parse

TEST(TablesParseTest, SmallDatabasesShowEveryTable) {
  SampleBatch out;
  TablesReport report;
  ASSERT_TRUE(parseTablesRows(rowsOf({tableRow({"users", 900, 100, 50}),
                                      tableRow({"messages", 0, 0, 0, std::nullopt, std::nullopt})}),
                              20, out, report)
                  .ok());
  EXPECT_EQ(relnamesOf(out, "pg_stat_user_tables_n_live_tup"),
            (std::set<std::string>{"users", "messages"}));
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_dead_tuple_ratio", table("users")), 0.1);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_dead_tuple_ratio", table("messages")), 0);
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_user_tables_n_mod_since_analyze", table("users")), 50);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_vacuum_age_seconds", table("users")), 60);
  // Never vacuumed: no age (not a made-up one), counted in the aggregate.
  EXPECT_FALSE(value(out, "dbpulse_pg_table_vacuum_age_seconds", table("messages")));
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_tables_never_vacuumed", {{"datname", "chat"}}), 1);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_tables_dead_tuple_ratio", {{"datname", "chat"}}), 0.1);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_user_tables", {{"datname", "chat"}}), 2);
  EXPECT_DOUBLE_EQ(*value(out, "pg_settings_autovacuum_freeze_max_age"), 200000000);
  EXPECT_EQ(report.datname, "chat");
  ASSERT_EQ(report.tables.size(), 2u);
}

TEST(TablesParseTest, LargeDatabasesShowTheTopTablesOnly) {
  std::vector<Row> rows;
  for (int i = 0; i < 2000; ++i) {
    Table t{"t" + std::to_string(i)};
    t.dead = i % 100;
    t.modified = i == 7 ? 1e6 : 0;  // inserted into heavily: needs ANALYZE
    t.xid_age = 1000 + i;
    if (i == 1234) {  // the one bloated table: 2,000 pages for 100 rows
      t.pages = 2000;
      t.dead = 0;
    }
    rows.push_back(tableRow(t));
  }
  SampleBatch out;
  TablesReport report;
  ASSERT_TRUE(parseTablesRows(rowsOf(rows), 5, out, report).ok());
  const auto shown = relnamesOf(out, "pg_stat_user_tables_n_dead_tup");
  // Top 5 by dead + modified (t7 first, then four of the tables with 99 dead, ties by
  // name) plus the most bloated.
  EXPECT_EQ(shown, (std::set<std::string>{"t7", "t1099", "t1199", "t1299", "t1399", "t1234"}));
  EXPECT_EQ(relnamesOf(out, "dbpulse_pg_table_xid_age"),
            (std::set<std::string>{"t1999", "t1998", "t1997", "t1996", "t1995"}));
  EXPECT_GT(*value(out, "dbpulse_pg_table_bloat_ratio", table("t1234")), 0.99);
  EXPECT_EQ(report.tables.size(), 2000u);
  EXPECT_LT(out.samples().size(), 120u);
}

TEST(TablesParseTest, IndexBloatForTheMostBloatedIndexes) {
  SampleBatch out;
  TablesReport report;
  ASSERT_TRUE(
      parseTablesRows(rowsOf({tableRow({"users"}), indexRow("users", "users_pkey", 58, 10000),
                              indexRow("users", "users_tight", 29, 10000),
                              indexRow("users", "users_expr", 58, 10000, 0),
                              databaseRow("chat", 5000), databaseRow("postgres", 6000)}),
                      20, out, report)
          .ok());
  const Labels pkey{{"datname", "chat"},
                    {"schemaname", "public"},
                    {"relname", "users"},
                    {"indexrelname", "users_pkey"}};
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_index_bloat_ratio", pkey), 0.5);
  // No bloat: nothing to show; no statistics: counted as unknown.
  size_t index_series = 0;
  for (const auto& s : out.samples()) index_series += s.name == "dbpulse_pg_index_bloat_ratio";
  EXPECT_EQ(index_series, 1u);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_indexes_bloat_unknown", {{"datname", "chat"}}), 1);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_indexes_bloat_bytes", {{"datname", "chat"}}), 29 * 8192);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_database_xid_age", {{"datname", "postgres"}}), 6000);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_database_mxid_age", {{"datname", "chat"}}), 7);
}

TEST(TablesParseTest, CountsTablesWhoseStatisticsAreHidden) {
  Table hidden{"secret"};
  hidden.natts_stats = 0;
  Table never_analyzed{"fresh"};
  never_analyzed.natts_stats = 0;
  never_analyzed.analyze_age = std::nullopt;
  SampleBatch out;
  TablesReport report;
  ASSERT_TRUE(
      parseTablesRows(rowsOf({tableRow(hidden), tableRow(never_analyzed)}), 20, out, report).ok());
  EXPECT_EQ(report.stats_hidden, 1u);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_tables_bloat_unknown", {{"datname", "chat"}}), 2);
  EXPECT_FALSE(value(out, "dbpulse_pg_table_bloat_ratio", table("secret")));
}

TEST(TablesParseTest, MalformedResultsAreErrors) {
  SampleBatch out;
  TablesReport report;
  EXPECT_EQ(parseTablesRows(rowsOf({tableRow({"users"})}, false), 20, out, report).code(),
            StatusCode::kInternal);
  PgRows bad_kind = rowsOf({tableRow({"users"})});
  bad_kind.rows[0][0] = "view";
  EXPECT_EQ(parseTablesRows(bad_kind, 20, out, report).code(), StatusCode::kInternal);
  PgRows bad_number = rowsOf({tableRow({"users"})});
  bad_number.rows[0][5] = "many";
  EXPECT_EQ(parseTablesRows(bad_number, 20, out, report).code(), StatusCode::kInternal);
  PgRows missing = rowsOf({});
  missing.columns[8] = "last_vacuum";
  EXPECT_EQ(parseTablesRows(missing, 20, out, report).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace dbpulse::collectors
