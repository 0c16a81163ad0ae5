#include "collectors/postgres/indexes_collector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;
constexpr double kDay = 86400;

// A valid btree index of public.messages, 1 MiB, never scanned.
IndexInfo btree(long long oid, const std::string& name, std::vector<int> keys) {
  IndexInfo i;
  i.oid = oid;
  i.schemaname = "public";
  i.relname = "messages";
  i.indexrelname = name;
  i.qualified = "public." + name;
  i.amname = "btree";
  i.size_bytes = 1 << 20;
  i.keys = std::move(keys);
  i.opclasses.assign(i.keys.size(), 3124);
  i.collations.assign(i.keys.size(), 0);
  i.options.assign(i.keys.size(), 0);
  i.observed_seconds = 30 * kDay;
  return i;
}

IndexInfo scanned(IndexInfo i, double scans = 100) {
  i.idx_scan = scans;
  return i;
}

IndexStats statsOf(std::vector<IndexInfo> indexes) {
  IndexStats s;
  s.datname = "chat";
  s.stats_window_seconds = 30 * kDay;
  s.indexes = std::move(indexes);
  return s;
}

// "index:reason" for each finding, in order.
std::vector<std::string> summary(const std::vector<IndexFinding>& findings) {
  std::vector<std::string> out;
  for (const auto& f : findings) out.push_back(f.index + ":" + f.reason);
  return out;
}

std::vector<std::string> problems(std::vector<IndexInfo> indexes, double min_age = 7 * kDay) {
  return summary(findIndexProblems(statsOf(std::move(indexes)), min_age));
}

TEST(IndexesCollectorTest, DuplicateDetectionTable) {
  IndexInfo pkey = scanned(btree(1, "messages_pkey", {1}));
  pkey.unique = pkey.primary = pkey.backs_constraint = true;

  IndexInfo unique_email = scanned(btree(20, "users_email_key", {3}));
  unique_email.unique = unique_email.backs_constraint = true;
  IndexInfo plain_email = scanned(btree(21, "users_email_idx", {3}));
  IndexInfo wide_unique = scanned(btree(22, "users_email_name_uniq", {3, 2}));
  wide_unique.unique = true;
  IndexInfo narrow_unique = scanned(btree(23, "users_email_uniq", {3}));
  narrow_unique.unique = true;

  IndexInfo desc = scanned(btree(30, "messages_conv_desc", {2}));
  desc.options = {3};  // DESC NULLS FIRST
  IndexInfo collated = scanned(btree(31, "messages_body_c", {4}));
  collated.collations = {950};
  IndexInfo body = scanned(btree(32, "messages_body", {4}));
  body.collations = {100};

  IndexInfo partial = scanned(btree(40, "messages_conv_recent", {2}));
  partial.pred = "(sent_at > '2024-01-01')";
  IndexInfo expr_a = scanned(btree(41, "users_lower_email", {0}));
  expr_a.exprs = "lower(email)";
  IndexInfo expr_b = scanned(btree(42, "users_lower_email_id", {0, 1}));
  expr_b.exprs = "lower(email)";
  IndexInfo expr_c = scanned(btree(43, "users_upper_email", {0}));
  expr_c.exprs = "upper(email)";

  IndexInfo with_include = scanned(btree(50, "messages_conv_inc_body", {2}));
  with_include.includes = {4};
  IndexInfo hash_a = scanned(btree(60, "messages_conv_hash", {2}));
  hash_a.amname = "hash";
  IndexInfo hash_b = scanned(btree(61, "messages_conv_sent_hash", {2, 5}));
  hash_b.amname = "hash";
  IndexInfo hash_c = scanned(btree(62, "messages_conv_hash2", {2}), 5);
  hash_c.amname = "hash";

  const struct {
    const char* what;
    std::vector<IndexInfo> indexes;
    std::vector<std::string> want;
  } cases[] = {
      {"leading prefix is redundant",
       {scanned(btree(10, "messages_conv", {2})), scanned(btree(11, "messages_conv_sent", {2, 5}))},
       {"messages_conv:duplicate"}},
      {"not a leading prefix",
       {scanned(btree(10, "messages_sent", {5})), scanned(btree(11, "messages_conv_sent", {2, 5}))},
       {}},
      {"exact duplicates: the more scanned stays",
       {scanned(btree(10, "a_idx", {2}), 5), scanned(btree(11, "b_idx", {2}), 50)},
       {"a_idx:duplicate"}},
      {"exact duplicates, equal scans: the older (lower oid) stays",
       {scanned(btree(11, "b_idx", {2})), scanned(btree(10, "a_idx", {2}))},
       {"b_idx:duplicate"}},
      {"constraint index stays, its copy goes",
       {pkey, scanned(btree(12, "messages_id", {1}), 1e6)},
       {"messages_id:duplicate"}},
      {"unique constraint covered by nothing wider", {unique_email, wide_unique}, {}},
      {"plain index covered by unique constraint",
       {unique_email, plain_email},
       {"users_email_idx:duplicate"}},
      {"narrow unique is not covered by a wider unique", {narrow_unique, wide_unique}, {}},
      {"sort order differs", {desc, scanned(btree(33, "messages_conv", {2}))}, {}},
      {"collation differs", {collated, body}, {}},
      {"predicate differs", {partial, scanned(btree(34, "messages_conv", {2}))}, {}},
      {"same expression, prefix", {expr_a, expr_b}, {"users_lower_email:duplicate"}},
      {"different expression", {expr_a, expr_c}, {}},
      {"INCLUDE column not in the wider index",
       {with_include, scanned(btree(51, "messages_conv_sent", {2, 5}))},
       {}},
      {"INCLUDE column among the wider index's keys",
       {with_include, scanned(btree(52, "messages_conv_body", {2, 4}))},
       {"messages_conv_inc_body:duplicate"}},
      {"hash: prefixes do not count", {hash_a, hash_b}, {}},
      {"hash: exact duplicates do", {hash_a, hash_c}, {"messages_conv_hash2:duplicate"}},
      {"chain: both narrower ones go",
       {scanned(btree(10, "c1", {2})), scanned(btree(11, "c12", {2, 5})),
        scanned(btree(12, "c123", {2, 5, 4}))},
       {"c1:duplicate", "c12:duplicate"}},
  };
  for (const auto& c : cases) {
    std::vector<std::string> got = problems(c.indexes);
    std::sort(got.begin(), got.end());
    std::vector<std::string> want = c.want;
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want) << c.what;
  }
}

TEST(IndexesCollectorTest, DuplicatesOfOtherTablesDoNotCount) {
  IndexInfo a = scanned(btree(10, "messages_conv", {2}));
  IndexInfo b = scanned(btree(11, "archive_conv", {2}));
  b.relname = "archive";
  EXPECT_TRUE(problems({a, b}).empty());
}

TEST(IndexesCollectorTest, DuplicateFindingNamesTheIndexThatStays) {
  const auto findings =
      findIndexProblems(statsOf({scanned(btree(10, "c1", {2})), scanned(btree(11, "c12", {2, 5})),
                                 scanned(btree(12, "c123", {2, 5, 4}))}),
                        7 * kDay);
  ASSERT_EQ(findings.size(), 2u);
  for (const auto& f : findings) {
    EXPECT_EQ(f.detail, "covered by public.c123") << f.index;
    EXPECT_EQ(f.statement, "DROP INDEX CONCURRENTLY public." + f.index + ";");
    EXPECT_EQ(f.table, "messages");
    EXPECT_EQ(f.schemaname, "public");
    EXPECT_EQ(f.size_bytes, 1 << 20);
  }
}

TEST(IndexesCollectorTest, UnusedNeedsZeroScansAgeAndNoConstraint) {
  IndexInfo young = btree(2, "young", {3});
  young.observed_seconds = 2 * kDay;
  IndexInfo unique = btree(3, "uniq", {4});
  unique.unique = true;
  IndexInfo fk_target = btree(4, "fk_target", {5});
  fk_target.backs_constraint = true;
  IndexInfo exclusion = btree(5, "excl", {6});
  exclusion.exclusion = true;
  exclusion.amname = "gist";
  EXPECT_EQ(problems({btree(1, "old_unused", {2}), young, unique, fk_target, exclusion,
                      scanned(btree(6, "used", {7}), 1)}),
            std::vector<std::string>{"old_unused:unused"});
  // The age limit is the option's.
  EXPECT_EQ(problems({young}, 1 * kDay), std::vector<std::string>{"young:unused"});
  const auto f = findIndexProblems(statsOf({btree(1, "old_unused", {2})}), 7 * kDay);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].detail, "no scans in 30 days");
}

TEST(IndexesCollectorTest, InvalidIndexesUnlessBeingBuilt) {
  IndexInfo failed = btree(1, "users_email_uniq", {3});
  failed.valid = false;
  failed.unique = true;
  IndexInfo in_progress = btree(2, "messages_new", {4});
  in_progress.valid = false;
  in_progress.building = true;
  // An invalid index is reported once, as invalid, and never covers another.
  IndexInfo narrower = scanned(btree(3, "users_email_short", {3}));
  EXPECT_EQ(problems({failed, in_progress, narrower}),
            std::vector<std::string>{"users_email_uniq:invalid"});
}

TEST(IndexesCollectorTest, EachIndexReportedOnceInReasonOrder) {
  IndexInfo invalid = btree(1, "z_invalid", {9});
  invalid.valid = false;
  invalid.size_bytes = 10;
  // Unused and duplicate at once: reported as duplicate.
  IndexInfo dup = btree(2, "a_dup", {2});
  IndexInfo big_unused = btree(3, "a_big_unused", {2, 5});
  big_unused.size_bytes = 5 << 20;
  IndexInfo small_unused = btree(4, "b_small_unused", {7});
  EXPECT_EQ(problems({small_unused, big_unused, dup, invalid}),
            (std::vector<std::string>{"z_invalid:invalid", "a_dup:duplicate", "a_big_unused:unused",
                                      "b_small_unused:unused"}));
}

// ---- parsing ----

const std::vector<std::string> kColumns = {"kind",
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
                                           "nulls_not_distinct"};

Row statsRow(const char* window) {
  Row r(kColumns.size());
  r[0] = "stats";
  r[2] = "chat";
  r[8] = window;
  return r;
}

Row indexRow(const char* oid, const char* name, const char* nkey, const char* indkey,
             const char* indclass, const char* scans = "0", const char* valid = "t") {
  return Row{"index", oid,      "public", "messages", name,         std::string("public.") + name,
             "btree", "8192",   scans,    "0",        "0",          valid,
             "f",     "f",      "f",      "f",        "f",          nkey,
             indkey,  indclass, "0 0",    "0 0",      std::nullopt, std::nullopt,
             "f"};
}

Row tableRow(const char* rel, const char* seq_scan, const char* seq_tup, const char* idx_scan) {
  Row r(kColumns.size());
  r[0] = "table";
  r[2] = "public";
  r[3] = rel;
  r[8] = seq_scan;
  r[9] = seq_tup;
  r[10] = idx_scan;
  return r;
}

PgRows rowsOf(std::vector<Row> rows) {
  PgRows r;
  r.columns = kColumns;
  r.rows = std::move(rows);
  return r;
}

TEST(IndexesCollectorTest, ParsesIndexAndTableRows) {
  auto stats = parseIndexRows(
      rowsOf({statsRow("3600.5"), indexRow("16415", "messages_conv_body", "1", "2 4", "3124"),
              tableRow("users", "10", "2000", "3"), tableRow("messages", "40", "200000", "7")}));
  ASSERT_TRUE(stats.ok()) << stats.status().toString();
  EXPECT_EQ(stats->datname, "chat");
  EXPECT_EQ(stats->stats_window_seconds, 3600.5);
  ASSERT_EQ(stats->indexes.size(), 1u);
  const IndexInfo& i = stats->indexes[0];
  EXPECT_EQ(i.oid, 16415);
  EXPECT_EQ(i.keys, std::vector<int>{2});
  EXPECT_EQ(i.includes, std::vector<int>{4});  // beyond indnkeyatts
  EXPECT_EQ(i.opclasses, std::vector<long long>{3124});
  EXPECT_TRUE(i.valid);
  EXPECT_EQ(i.observed_seconds, 3600.5);
  ASSERT_EQ(stats->tables.size(), 2u);
  EXPECT_EQ(stats->tables[0].relname, "messages");  // most rows read sequentially first
}

TEST(IndexesCollectorTest, RejectsMalformedRows) {
  const struct {
    const char* what;
    PgRows rows;
  } cases[] = {
      {"no stats row", rowsOf({indexRow("1", "a", "1", "2", "3124")})},
      {"missing column", PgRows{{"kind"}, {}}},
      {"unknown kind", rowsOf({statsRow("1"), Row(kColumns.size(), std::string("x"))})},
      {"bad indkey", rowsOf({statsRow("1"), indexRow("1", "a", "1", "2 x", "3124")})},
      {"indnkeyatts beyond indkey", rowsOf({statsRow("1"), indexRow("1", "a", "3", "2", "3124")})},
      {"bad scans", rowsOf({statsRow("1"), indexRow("1", "a", "1", "2", "3124", "lots")})},
      {"short row", rowsOf({statsRow("1"), Row{"index"}})},
  };
  for (const auto& c : cases) {
    auto stats = parseIndexRows(c.rows);
    EXPECT_FALSE(stats.ok()) << c.what;
    if (!stats.ok()) {
      EXPECT_EQ(stats.status().code(), StatusCode::kInternal) << c.what;
    }
  }
}

std::optional<double> value(const SampleBatch& b, const std::string& name, const Labels& labels) {
  std::optional<double> found;
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) {
      EXPECT_FALSE(found.has_value()) << "duplicate series " << name;
      found = s.value;
    }
  }
  return found;
}

size_t count(const SampleBatch& b, const std::string& name) {
  return static_cast<size_t>(std::count_if(b.samples().begin(), b.samples().end(),
                                           [&](const Sample& s) { return s.name == name; }));
}

TEST(IndexesCollectorTest, ExportsCountsAndBoundedSeries) {
  std::vector<IndexInfo> indexes;
  for (int k = 0; k < 30; ++k) {
    IndexInfo i = btree(100 + k, "idx" + std::to_string(k), {k + 1});
    i.size_bytes = 1000 * (k + 1);
    indexes.push_back(i);
  }
  IndexStats stats = statsOf(indexes);
  for (int k = 0; k < 30; ++k) {
    stats.tables.push_back(TableScanInfo{"public", "t" + std::to_string(k), 4, 1000.0 * (30 - k),
                                         k == 0 ? 0.0 : 12.0});
  }
  const auto findings = findIndexProblems(stats, 7 * kDay);
  SampleBatch out;
  exportIndexSamples(stats, findings, 10, out);

  const Labels db{{"datname", "chat"}};
  EXPECT_EQ(value(out, "dbpulse_pg_indexes", db), 30);
  EXPECT_EQ(value(out, "dbpulse_pg_indexes_unused", db), 30);
  EXPECT_EQ(value(out, "dbpulse_pg_indexes_duplicate", db), 0);
  EXPECT_EQ(value(out, "dbpulse_pg_indexes_invalid", db), 0);
  EXPECT_EQ(
      value(out, "dbpulse_pg_indexes_droppable_bytes", {{"datname", "chat"}, {"reason", "unused"}}),
      1000.0 * 30 * 31 / 2);
  EXPECT_EQ(value(out, "dbpulse_pg_indexes_droppable_bytes",
                  {{"datname", "chat"}, {"reason", "invalid"}}),
            0);
  EXPECT_EQ(value(out, "dbpulse_pg_index_stats_window_seconds", db), 30 * kDay);
  // Top 10 by size: idx29 .. idx20.
  EXPECT_EQ(count(out, "pg_stat_user_indexes_size_bytes"), 10u);
  EXPECT_EQ(count(out, "pg_stat_user_indexes_idx_scan"), 10u);
  const Labels idx29{{"datname", "chat"},
                     {"schemaname", "public"},
                     {"relname", "messages"},
                     {"indexrelname", "idx29"}};
  EXPECT_EQ(value(out, "pg_stat_user_indexes_size_bytes", idx29), 30000);
  const Labels idx0{{"datname", "chat"},
                    {"schemaname", "public"},
                    {"relname", "messages"},
                    {"indexrelname", "idx0"}};
  EXPECT_FALSE(value(out, "pg_stat_user_indexes_size_bytes", idx0).has_value());
  EXPECT_EQ(count(out, "pg_stat_user_tables_seq_tup_read"), 10u);
  const Labels t0{{"datname", "chat"}, {"schemaname", "public"}, {"relname", "t0"}};
  EXPECT_EQ(value(out, "dbpulse_pg_table_seq_scan_ratio", t0), 1.0);
  EXPECT_EQ(value(out, "dbpulse_pg_table_seq_tup_read_per_scan", t0), 30000.0 / 4);
  const Labels t1{{"datname", "chat"}, {"schemaname", "public"}, {"relname", "t1"}};
  EXPECT_EQ(value(out, "dbpulse_pg_table_seq_scan_ratio", t1), 4.0 / 16);
  EXPECT_EQ(out.families().at("pg_stat_user_indexes_idx_scan").type, MetricType::kCounter);
  EXPECT_EQ(out.families().at("pg_stat_user_tables_seq_scan").type, MetricType::kCounter);
  for (const auto& s : out.samples()) EXPECT_EQ(out.families().count(s.name), 1u) << s.name;
}

TEST(IndexesCollectorTest, QuerySwitchesNullsNotDistinctAtPostgres15) {
  for (int version : {130012, 140005, 150004, 160002, 170000}) {
    const std::string sql = indexesQuery(version, 25);
    EXPECT_EQ(sql.find("indnullsnotdistinct") != std::string::npos, version >= 150000) << version;
    EXPECT_NE(sql.find("LIMIT 25"), std::string::npos) << version;
    EXPECT_EQ(sql.find('@'), std::string::npos) << version;
  }
  EXPECT_NE(indexesQuery(150004, 0).find("LIMIT 50"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse::collectors
