#include "collectors/postgres/size_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

const std::vector<std::string> kColumns = {"kind",         "datname", "schemaname",  "relname",
                                           "indexrelname", "bytes",   "toast_bytes", "estimated"};

Row databaseRow(const std::string& datname, double bytes) {
  return Row{"database",   datname, std::nullopt, std::nullopt, std::nullopt, std::to_string(bytes),
             std::nullopt, "f"};
}
Row currentRow() {
  return Row{"current",    "chat",       std::nullopt, std::nullopt,
             std::nullopt, std::nullopt, std::nullopt, "f"};
}
// `bytes` is the heap alone (main, FSM and VM forks); `toast` the TOAST table with its index.
Row tableRow(const std::string& relname, double bytes, double toast, bool estimated = false) {
  return Row{"table",
             "chat",
             "public",
             relname,
             std::nullopt,
             std::to_string(bytes),
             std::to_string(toast),
             estimated ? "t" : "f"};
}
Row indexRow(const std::string& relname, const std::string& index, std::optional<double> bytes,
             bool estimated = false) {
  return Row{
      "index",      "chat",
      "public",     relname,
      index,        bytes ? std::optional<std::string>(std::to_string(*bytes)) : std::nullopt,
      std::nullopt, estimated ? "t" : "f"};
}

PgRows rowsOf(std::vector<Row> rows) {
  PgRows r;
  r.columns = kColumns;
  r.rows = std::move(rows);
  return r;
}

using batchtest::value;

using batchtest::countOf;

Labels table(const std::string& relname) {
  return Labels{{"datname", "chat"}, {"schemaname", "public"}, {"relname", relname}};
}

TEST(SizeParseTest, SplitsHeapToastAndIndexes) {
  SampleBatch out;
  SizeReport report;
  ASSERT_TRUE(
      parseSizeRows(
          rowsOf({databaseRow("chat", 9e6), databaseRow("postgres", 7e6), currentRow(),
                  tableRow("messages", 4000, 1000), indexRow("messages", "messages_pkey", 300),
                  indexRow("messages", "messages_sent_at_idx", 200), tableRow("users", 100, 0)}),
          20, out, report)
          .ok());
  EXPECT_DOUBLE_EQ(*value(out, "pg_database_size_bytes", {{"datname", "postgres"}}), 7e6);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_size_bytes", table("messages")), 4000);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_toast_size_bytes", table("messages")), 1000);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_indexes_size_bytes", table("messages")), 500);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_total_size_bytes", table("messages")), 5500);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_total_size_bytes", table("users")), 100);
  EXPECT_DOUBLE_EQ(
      *value(out, "dbpulse_pg_user_tables_size_bytes", {{"datname", "chat"}, {"part", "heap"}}),
      4100);
  EXPECT_DOUBLE_EQ(
      *value(out, "dbpulse_pg_user_tables_size_bytes", {{"datname", "chat"}, {"part", "indexes"}}),
      500);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_size_estimated_tables", {{"datname", "chat"}}), 0);

  EXPECT_EQ(report.datname, "chat");
  ASSERT_EQ(report.databases.size(), 2u);
  EXPECT_EQ(report.databases[0].datname, "chat");  // largest first
  ASSERT_EQ(report.tables.size(), 2u);
  EXPECT_EQ(report.tables[0].relname, "messages");
  ASSERT_EQ(report.indexes.size(), 2u);
  EXPECT_EQ(report.indexes[0].indexrelname, "messages_pkey");
}

TEST(SizeParseTest, OnlyTheLargestTablesAreSeries) {
  std::vector<Row> rows{currentRow()};
  for (int i = 0; i < 2000; ++i) rows.push_back(tableRow("t" + std::to_string(i), 1000.0 + i, 0));
  SampleBatch out;
  SizeReport report;
  ASSERT_TRUE(parseSizeRows(rowsOf(rows), 10, out, report).ok());
  EXPECT_EQ(countOf(out, "dbpulse_pg_table_total_size_bytes"), 10u);
  EXPECT_TRUE(value(out, "dbpulse_pg_table_total_size_bytes", table("t1999")));
  EXPECT_FALSE(value(out, "dbpulse_pg_table_total_size_bytes", table("t1989")));
  EXPECT_EQ(report.tables.size(), 2000u);  // all of them for the admin API
}

TEST(SizeParseTest, LockedAndDroppedRelations) {
  SampleBatch out;
  SizeReport report;
  ASSERT_TRUE(
      parseSizeRows(rowsOf({currentRow(), tableRow("locked", 8192, 0, true),
                            tableRow("plain", 100, 0), indexRow("plain", "plain_idx", 50, true),
                            indexRow("plain", "dropped_meanwhile", std::nullopt)}),
                    20, out, report)
          .ok());
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_size_estimated_tables", {{"datname", "chat"}}), 2);
  EXPECT_DOUBLE_EQ(*value(out, "dbpulse_pg_table_indexes_size_bytes", table("plain")), 50);
  ASSERT_EQ(report.tables.size(), 2u);
  EXPECT_TRUE(report.tables[0].estimated);
}

TEST(SizeQueryTest, MeasuresTheRequestedNumberOfLargestTables) {
  EXPECT_NE(sizeQuery().find("r.rank <= $1::int OR r.reltuples < 0"), std::string::npos)
      << "the number is a parameter, not SQL text";
  EXPECT_EQ(sizeQueryParam(40), "40");
  EXPECT_EQ(sizeQueryParam(0), "1");
}

TEST(SizeParseTest, MalformedResultsAreErrors) {
  SampleBatch out;
  SizeReport report;
  EXPECT_EQ(parseSizeRows(rowsOf({tableRow("t", 1, 0)}), 20, out, report).code(),
            StatusCode::kInternal);  // no 'current' row
  PgRows bad_kind = rowsOf({currentRow(), tableRow("t", 1, 0)});
  bad_kind.rows[1][0] = "sequence";
  EXPECT_EQ(parseSizeRows(bad_kind, 20, out, report).code(), StatusCode::kInternal);
  PgRows bad_number = rowsOf({currentRow(), tableRow("t", 1, 0)});
  bad_number.rows[1][5] = "12 kB";
  EXPECT_EQ(parseSizeRows(bad_number, 20, out, report).code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace dbpulse::collectors
