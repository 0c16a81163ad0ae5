#include "collectors/postgres/statements_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

const std::vector<std::string> kColumns = {
    "kind",         "queryid",      "datname",   "user",
    "entries",      "calls",        "total_ms",  "max_ms",
    "rows",         "blks_hit",     "blks_read", "blk_read_ms",
    "blk_write_ms", "since",        "running",   "longest_running",
    "max_entries",  "deallocations"};

struct Stmt {
  std::string queryid;
  double calls;
  double total_ms;
  std::string datname = "chat";
  std::string user = "app";
  std::optional<double> since = std::nullopt;
};

std::string num(double v) { return std::to_string(v); }

Row stmtRow(const Stmt& s) {
  return Row{"stmt",
             s.queryid,
             s.datname,
             s.user,
             "1",
             num(s.calls),
             num(s.total_ms),
             num(s.total_ms / std::max(1.0, s.calls) * 2),
             num(s.calls * 10),
             "100",
             "7",
             "1.5",
             "0.5",
             s.since ? std::optional<std::string>(num(*s.since)) : std::nullopt,
             std::nullopt,
             std::nullopt,
             std::nullopt,
             std::nullopt};
}

Row hiddenRow(int entries) {
  Row r = stmtRow({"", 5, 50});
  r[1] = std::nullopt;
  r[4] = std::to_string(entries);
  return r;
}

Row summaryRow(double running = 0, double longest = 0) {
  return Row{"summary",    std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
             std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt,
             std::nullopt, std::nullopt, num(running), num(longest), "5000",       "3"};
}

PgRows rowsOf(const std::vector<Stmt>& stmts, Row summary = summaryRow()) {
  PgRows r;
  r.columns = kColumns;
  for (const auto& s : stmts) r.rows.push_back(stmtRow(s));
  r.rows.push_back(std::move(summary));
  return r;
}

using batchtest::value;

std::set<std::string> exportedIds(const SampleBatch& b) {
  std::set<std::string> ids;
  for (const auto& s : b.samples()) {
    if (s.name == "dbpulse_pg_statement_recent_seconds")
      ids.insert(std::string(s.labels.get("queryid")));
  }
  return ids;
}

Labels stmtLabels(const std::string& queryid, const std::string& datname = "chat",
                  const std::string& user = "app") {
  return Labels{{"queryid", queryid}, {"datname", datname}, {"user", user}};
}

// ---------------------------------------------------------------- version switch

TEST(StatementsSqlVariantTest, ColumnNamesFollowTheServerVersion) {
  struct Case {
    int server;
    const char* total;
    const char* max;
    const char* blk_read;
    bool info;
    bool since;
  };
  const std::vector<Case> cases = {
      {120017, "total_time", "max_time", "blk_read_time", false, false},
      {130000, "total_exec_time", "max_exec_time", "blk_read_time", false, false},
      {130015, "total_exec_time", "max_exec_time", "blk_read_time", false, false},
      {140010, "total_exec_time", "max_exec_time", "blk_read_time", true, false},
      {150004, "total_exec_time", "max_exec_time", "blk_read_time", true, false},
      {160002, "total_exec_time", "max_exec_time", "blk_read_time", true, false},
      {170000, "total_exec_time", "max_exec_time", "shared_blk_read_time", true, true},
      {170004, "total_exec_time", "max_exec_time", "shared_blk_read_time", true, true},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.server);
    const auto v = statementsSqlVariant(c.server, "");
    EXPECT_EQ(v.total_time, c.total);
    EXPECT_EQ(v.max_time, c.max);
    EXPECT_EQ(v.blk_read_time, c.blk_read);
    EXPECT_EQ(v.blk_write_time, std::string(c.blk_read) == "blk_read_time"
                                    ? "blk_write_time"
                                    : "shared_blk_write_time");
    EXPECT_EQ(v.has_info_view, c.info);
    EXPECT_EQ(v.has_stats_since, c.since);
  }
}

TEST(StatementsSqlVariantTest, InstalledExtensionVersionOverridesTheServer) {
  // PG17 upgraded with pg_upgrade, extension still at 1.10: the old column names.
  EXPECT_EQ(statementsSqlVariant(170002, "1.10"), statementsSqlVariant(150004, ""));
  // PG13 server with the extension never updated from 1.7.
  EXPECT_EQ(statementsSqlVariant(130000, "1.7").total_time, "total_time");
  EXPECT_FALSE(statementsSqlVariant(140000, "1.8").has_info_view);
  EXPECT_TRUE(statementsSqlVariant(140000, "1.9").has_info_view);
  EXPECT_EQ(statementsSqlVariant(170000, "1.11"), statementsSqlVariant(170000, ""));
  // Unparsable version strings fall back to the server version.
  EXPECT_EQ(statementsSqlVariant(150004, "devel"), statementsSqlVariant(150004, ""));
}

TEST(StatementsSqlVariantTest, QueryUsesTheVariantColumnsAndQuotedSchema) {
  const std::string pg15 = statementsQuery(statementsSqlVariant(150004, "1.10"), "public");
  EXPECT_NE(pg15.find("sum(total_exec_time)"), std::string::npos);
  EXPECT_NE(pg15.find("sum(blk_read_time)"), std::string::npos);
  EXPECT_NE(pg15.find("\"public\".pg_stat_statements(false)"), std::string::npos);
  EXPECT_NE(pg15.find("\"public\".pg_stat_statements_info"), std::string::npos);
  EXPECT_NE(pg15.find("make_interval(secs => $1::float8)"), std::string::npos)
      << "the threshold is a parameter, not SQL text";
  EXPECT_EQ(pg15.find("stats_since"), std::string::npos);

  const std::string pg12 = statementsQuery(statementsSqlVariant(120000, ""), "ext\"s");
  EXPECT_NE(pg12.find("sum(total_time)"), std::string::npos);
  EXPECT_EQ(pg12.find("total_exec_time"), std::string::npos);
  EXPECT_EQ(pg12.find("pg_stat_statements_info"), std::string::npos);
  EXPECT_NE(pg12.find("\"ext\"\"s\".pg_stat_statements(false)"), std::string::npos);

  const std::string pg17 = statementsQuery(statementsSqlVariant(170000, ""), "public");
  EXPECT_NE(pg17.find("sum(shared_blk_read_time)"), std::string::npos);
  EXPECT_NE(pg17.find("max(stats_since)"), std::string::npos);
}

TEST(StatementsSqlVariantTest, ThresholdParamIsSecondsWithMilliseconds) {
  EXPECT_EQ(statementsThresholdParam(std::chrono::seconds(5)), "5.000");
  EXPECT_EQ(statementsThresholdParam(std::chrono::milliseconds(250)), "0.250");
  EXPECT_EQ(statementsThresholdParam(std::chrono::milliseconds(90'500)), "90.500");
}

TEST(StatementTextsQueryTest, BindsOnlyIntegerQueryIds) {
  EXPECT_EQ(statementTextsParam({"123", "-45", "1; DROP TABLE x", ""}), "123,-45");
  EXPECT_EQ(statementTextsParam({"abc"}), "");
  EXPECT_EQ(statementTextsParam({}), "");
  const std::string sql = statementTextsQuery("public");
  EXPECT_NE(sql.find("$1"), std::string::npos) << "the queryids are a parameter, not SQL text";
}

// ---------------------------------------------------------------- deltas and top-N

TEST(StatementsTrackerTest, FirstRunRanksByCountersSinceReset) {
  StatementsTracker t(2);
  SampleBatch out;
  ASSERT_TRUE(t.update(rowsOf({{"1", 10, 100}, {"2", 5, 900}, {"3", 1, 50}}), out).ok());
  EXPECT_EQ(exportedIds(out), (std::set<std::string>{"1", "2"}));
  ASSERT_EQ(t.top().size(), 2u);
  EXPECT_EQ(t.top()[0].queryid, "2");
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_statements_seconds_total", stmtLabels("2")), 0.9);
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_statements_calls_total", stmtLabels("2")), 5);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statement_mean_seconds", stmtLabels("2")), 0.18);
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_statements_block_read_seconds_total", stmtLabels("2")),
                   0.0015);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statement_shared_blks_read_total", stmtLabels("2")), 7);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statements_tracked"), 3);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statements_active"), 3);
  // The setting itself is the stats collector's pg_settings_pg_stat_statements_max.
  EXPECT_EQ(out.families().count("pg_settings_pg_stat_statements_max"), 0u);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statements_deallocations_total"), 3);
}

TEST(StatementsTrackerTest, LaterRunsRankByTimeSinceThePreviousRun) {
  StatementsTracker t(2);
  SampleBatch first;
  ASSERT_TRUE(t.update(rowsOf({{"1", 10, 100}, {"2", 5, 900}, {"3", 1, 50}}), first).ok());
  // Statement 2 has the largest lifetime total but did not run; 3 ran the most since.
  SampleBatch second;
  ASSERT_TRUE(t.update(rowsOf({{"1", 12, 130}, {"2", 5, 900}, {"3", 4, 450}}), second).ok());
  EXPECT_EQ(exportedIds(second), (std::set<std::string>{"1", "3"}));
  ASSERT_EQ(t.top().size(), 2u);
  EXPECT_EQ(t.top()[0].queryid, "3");
  EXPECT_DOUBLE_EQ(t.top()[0].recent_seconds, 0.4);
  EXPECT_DOUBLE_EQ(t.top()[0].recent_calls, 3);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statement_recent_seconds", stmtLabels("1")), 0.03);
  // Lifetime counters stay lifetime counters.
  EXPECT_DOUBLE_EQ(*value(second, "pg_stat_statements_seconds_total", stmtLabels("3")), 0.45);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_active"), 2);
  // Our own totals add the deltas: 1050 ms then 430 ms.
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_exec_seconds_total"), 1.48);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_calls_total"), 16 + 5);
}

TEST(StatementsTrackerTest, UnmovedStatementsAreNotExportedAgain) {
  StatementsTracker t(50);
  SampleBatch first, second;
  ASSERT_TRUE(t.update(rowsOf({{"1", 10, 100}, {"2", 5, 900}}), first).ok());
  ASSERT_TRUE(t.update(rowsOf({{"1", 10, 100}, {"2", 5, 900}}), second).ok());
  EXPECT_TRUE(exportedIds(second).empty());
  EXPECT_TRUE(t.top().empty());
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_active"), 0);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_tracked"), 2);
}

TEST(StatementsTrackerTest, CountersGoingBackwardsAreARestartNotANegativeRate) {
  StatementsTracker t(50);
  SampleBatch first, second;
  ASSERT_TRUE(t.update(rowsOf({{"1", 1000, 50000}, {"2", 10, 10}}), first).ok());
  // pg_stat_statements_reset(): statement 1 ran 3 times since, 2 was evicted and is gone.
  ASSERT_TRUE(t.update(rowsOf({{"1", 3, 30}}), second).ok());
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statement_recent_seconds", stmtLabels("1")), 0.03);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statement_recent_calls", stmtLabels("1")), 3);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_restarts_total"), 1);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_exec_seconds_total"), 50.01 + 0.03);
  for (const auto& s : second.samples()) {
    EXPECT_GE(s.value, 0) << s.name;
  }
  // And the next run deltas against the restarted values.
  SampleBatch third;
  ASSERT_TRUE(t.update(rowsOf({{"1", 5, 50}}), third).ok());
  EXPECT_DOUBLE_EQ(*value(third, "dbpulse_pg_statement_recent_calls", stmtLabels("1")), 2);
  // An evicted statement coming back is new again: its whole count is recent.
  SampleBatch fourth;
  ASSERT_TRUE(t.update(rowsOf({{"1", 5, 50}, {"2", 1, 2}}), fourth).ok());
  EXPECT_EQ(exportedIds(fourth), (std::set<std::string>{"2"}));
}

TEST(StatementsTrackerTest, ChangedStatsSinceIsARestartEvenWhenCallsGrew) {
  StatementsTracker t(50);
  SampleBatch first, second;
  ASSERT_TRUE(t.update(rowsOf({{"1", 10, 100, "chat", "app", 1000.0}}), first).ok());
  ASSERT_TRUE(t.update(rowsOf({{"1", 12, 20, "chat", "app", 2000.0}}), second).ok());
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statement_recent_calls", stmtLabels("1")), 12);
  EXPECT_DOUBLE_EQ(*value(second, "dbpulse_pg_statements_restarts_total"), 1);
}

TEST(StatementsTrackerTest, SameQueryIdInTwoDatabasesOrUsersAreSeparateSeries) {
  StatementsTracker t(50);
  SampleBatch out;
  ASSERT_TRUE(t.update(rowsOf({{"7", 1, 10, "chat", "app"},
                               {"7", 2, 20, "chat", "admin"},
                               {"7", 3, 30, "other", "app"}}),
                       out)
                  .ok());
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_statements_calls_total", stmtLabels("7", "chat", "app")),
                   1);
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_statements_calls_total", stmtLabels("7", "chat", "admin")),
                   2);
  EXPECT_DOUBLE_EQ(*value(out, "pg_stat_statements_calls_total", stmtLabels("7", "other", "app")),
                   3);
}

TEST(StatementsTrackerTest, TopNBoundsCardinalityWhateverTheWorkload) {
  StatementsTracker t(50);
  std::vector<Stmt> many;
  for (int i = 0; i < 5000; ++i) many.push_back({std::to_string(i), 1.0 + i, 1.0 + i});
  SampleBatch out;
  ASSERT_TRUE(t.update(rowsOf(many), out).ok());
  EXPECT_EQ(exportedIds(out).size(), 50u);
  EXPECT_EQ(t.top().front().queryid, "4999");
  EXPECT_EQ(t.top().back().queryid, "4950");
  for (const auto& s : out.samples()) {
    EXPECT_EQ(s.labels.get("query"), "");  // never the text as a label
  }
}

TEST(StatementsTrackerTest, TiesAreBrokenDeterministically) {
  StatementsTracker a(2), b(2);
  SampleBatch out_a, out_b;
  ASSERT_TRUE(a.update(rowsOf({{"3", 1, 10}, {"1", 1, 10}, {"2", 1, 10}}), out_a).ok());
  ASSERT_TRUE(b.update(rowsOf({{"2", 1, 10}, {"1", 1, 10}, {"3", 1, 10}}), out_b).ok());
  EXPECT_EQ(exportedIds(out_a), (std::set<std::string>{"1", "2"}));
  EXPECT_EQ(exportedIds(out_a), exportedIds(out_b));
}

TEST(StatementsTrackerTest, HiddenEntriesAreCountedNotExported) {
  StatementsTracker t(50);
  PgRows rows = rowsOf({{"1", 1, 10}});
  rows.rows.insert(rows.rows.begin(), hiddenRow(4));
  SampleBatch out;
  ASSERT_TRUE(t.update(rows, out).ok());
  EXPECT_DOUBLE_EQ(t.hidden(), 4);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statements_hidden"), 4);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_statements_tracked"), 5);
  EXPECT_EQ(exportedIds(out), (std::set<std::string>{"1"}));
}

TEST(StatementsTrackerTest, ReportsLongRunningStatements) {
  StatementsTracker t(50);
  SampleBatch out;
  ASSERT_TRUE(t.update(rowsOf({}, summaryRow(2, 12.5)), out).ok());
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_long_running_statements"), 2);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_longest_running_statement_seconds"), 12.5);
}

TEST(StatementsTrackerTest, MalformedResultsAreErrorsAndKeepTheState) {
  StatementsTracker t(50);
  SampleBatch first;
  ASSERT_TRUE(t.update(rowsOf({{"1", 10, 100}}), first).ok());

  PgRows no_summary = rowsOf({{"1", 11, 110}});
  no_summary.rows.pop_back();
  SampleBatch bad;
  EXPECT_EQ(t.update(no_summary, bad).code(), StatusCode::kInternal);

  PgRows missing_column = rowsOf({{"1", 11, 110}});
  missing_column.columns[6] = "total_exec_time";
  EXPECT_EQ(t.update(missing_column, bad).code(), StatusCode::kInternal);

  PgRows short_row = rowsOf({{"1", 11, 110}});
  short_row.rows[0].pop_back();
  EXPECT_EQ(t.update(short_row, bad).code(), StatusCode::kInternal);

  PgRows bad_number = rowsOf({{"1", 11, 110}});
  bad_number.rows[0][5] = "eleven";
  EXPECT_EQ(t.update(bad_number, bad).code(), StatusCode::kInternal);

  PgRows bad_kind = rowsOf({{"1", 11, 110}});
  bad_kind.rows[0][0] = "what";
  EXPECT_EQ(t.update(bad_kind, bad).code(), StatusCode::kInternal);

  // The failed updates did not replace the remembered counters.
  SampleBatch next;
  ASSERT_TRUE(t.update(rowsOf({{"1", 11, 110}}), next).ok());
  EXPECT_DOUBLE_EQ(*value(next, "dbpulse_pg_statement_recent_calls", stmtLabels("1")), 1);
}

TEST(StatementsTrackerTest, CountersAreCountersAndRatesAreGauges) {
  StatementsTracker t(50);
  SampleBatch out;
  ASSERT_TRUE(t.update(rowsOf({{"1", 1, 10}}), out).ok());
  for (const auto& [name, info] : out.families()) {
    const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(info.type == MetricType::kCounter, total) << name;
  }
}

}  // namespace
}  // namespace dbpulse::collectors
