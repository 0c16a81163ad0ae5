#include "collectors/postgres/locks_collector.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

const std::vector<std::string> kColumns = {"kind", "datname",  "mode",    "value",
                                           "pid",  "blockers", "usename", "query"};

Row modeRow(const char* db, const char* mode, const char* n) {
  return Row{"mode", db, mode, n, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
}
Row waitRow(const char* pid, const char* blockers, const char* seconds,
            const char* query = "UPDATE messages SET body = $1 WHERE id = $2") {
  return Row{"waiting", "chat", "sharelock", seconds, pid, blockers, "chat", query};
}

PgRows rowsOf(std::vector<Row> rows) {
  PgRows r;
  r.columns = kColumns;
  r.rows = std::move(rows);
  return r;
}

using batchtest::value;

TEST(LocksCollectorTest, CountsLocksByDatabaseAndMode) {
  SampleBatch out;
  std::vector<BlockedSession> waiting;
  const Status s = parseLockRows(
      rowsOf({modeRow("chat", "rowexclusivelock", "6"), modeRow("chat", "sireadlock", "0")}), 20,
      out, waiting);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(value(out, "pg_locks_count", {{"datname", "chat"}, {"mode", "rowexclusivelock"}}), 6);
  EXPECT_EQ(value(out, "pg_locks_count", {{"datname", "chat"}, {"mode", "sireadlock"}}), 0);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_waiting_sessions"), 0);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_blocked_sessions"), 0);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_chain_max_depth"), 0);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_longest_wait_seconds"), 0);
  EXPECT_TRUE(waiting.empty());
  // postgres_exporter's type; deadlocks are the stats collector's now (one family, one
  // collector).
  EXPECT_EQ(out.families().at("pg_locks_count").type, MetricType::kGauge);
  EXPECT_EQ(out.families().count("pg_stat_database_deadlocks"), 0u);
  for (const auto& smp : out.samples()) EXPECT_EQ(out.families().count(smp.name), 1u) << smp.name;
}

TEST(LocksCollectorTest, FollowsBlockingChainsToTheirHeads) {
  // 101 holds the row; 102 waits for 101; 103 waits for 102 (queued behind it); 104 waits
  // for a lock nobody is named for (e.g. just granted).
  SampleBatch out;
  std::vector<BlockedSession> waiting;
  const Status s = parseLockRows(
      rowsOf({waitRow("102", "101", "12.5"), waitRow("103", "102", "3"), waitRow("104", "", "1")}),
      20, out, waiting);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(value(out, "dbpulse_pg_lock_waiting_sessions"), 3);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_blocked_sessions"), 2);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_blocking_sessions"), 2);  // 101 and 102
  EXPECT_EQ(value(out, "dbpulse_pg_lock_root_blockers"), 1);      // only 101 runs
  EXPECT_EQ(value(out, "dbpulse_pg_lock_chain_max_depth"), 2);
  EXPECT_EQ(value(out, "dbpulse_pg_lock_longest_wait_seconds"), 12.5);
  ASSERT_EQ(waiting.size(), 3u);
  EXPECT_EQ(waiting[0].pid, 102);  // longest wait first
  EXPECT_EQ(waiting[0].blocking_pids, std::vector<int>{101});
  EXPECT_EQ(waiting[0].lock_mode, "sharelock");
  EXPECT_EQ(waiting[0].datname, "chat");
  EXPECT_EQ(waiting[0].query, "UPDATE messages SET body = $1 WHERE id = $2");
  EXPECT_TRUE(waiting[2].blocking_pids.empty());
}

TEST(LocksCollectorTest, SeveralBlockersAndCyclesAreBounded) {
  // 201 waits for 202 and 203; 202 and 204 wait for each other (a deadlock not yet broken).
  SampleBatch out;
  std::vector<BlockedSession> waiting;
  ASSERT_TRUE(parseLockRows(rowsOf({waitRow("201", "202,203", "5"), waitRow("202", "204", "4"),
                                    waitRow("204", "202", "4")}),
                            20, out, waiting)
                  .ok());
  EXPECT_EQ(waiting[0].blocking_pids, (std::vector<int>{202, 203}));
  EXPECT_EQ(value(out, "dbpulse_pg_lock_blocking_sessions"), 3);  // 202, 203, 204
  EXPECT_EQ(value(out, "dbpulse_pg_lock_root_blockers"), 1);      // 203
  // The cycle terminates; 201 -> 202 -> 204 (-> 202 again is not followed).
  EXPECT_EQ(value(out, "dbpulse_pg_lock_chain_max_depth"), 3);
}

TEST(LocksCollectorTest, DetailsAreBoundedButCountsAreNot) {
  std::vector<Row> rows;
  for (int i = 0; i < 50; ++i) {
    rows.push_back(waitRow(std::to_string(1000 + i).c_str(), "999", std::to_string(i).c_str()));
  }
  SampleBatch out;
  std::vector<BlockedSession> waiting;
  ASSERT_TRUE(parseLockRows(rowsOf(rows), 5, out, waiting).ok());
  EXPECT_EQ(value(out, "dbpulse_pg_lock_blocked_sessions"), 50);
  ASSERT_EQ(waiting.size(), 5u);
  EXPECT_EQ(waiting.front().pid, 1049);  // waited 49 s, the longest
  EXPECT_EQ(waiting.back().pid, 1045);
}

TEST(LocksCollectorTest, HiddenQueryTextNamesThePrivilege) {
  SampleBatch out;
  std::vector<BlockedSession> waiting;
  ASSERT_TRUE(
      parseLockRows(rowsOf({waitRow("7", "8", "1", "<insufficient privilege>")}), 20, out, waiting)
          .ok());
  ASSERT_EQ(waiting.size(), 1u);
  EXPECT_NE(waiting[0].query.find("pg_read_all_stats"), std::string::npos) << waiting[0].query;
}

TEST(LocksCollectorTest, RejectsMalformedResults) {
  const struct {
    const char* what;
    PgRows rows;
  } cases[] = {
      {"missing column", PgRows{{"kind", "datname"}, {}}},
      {"unknown kind", rowsOf({Row{"bogus", "chat", "", "1", std::nullopt, std::nullopt,
                                   std::nullopt, std::nullopt}})},
      {"non-numeric value", rowsOf({modeRow("chat", "sharelock", "many")})},
      {"bad blocker list", rowsOf({waitRow("5", "1,x", "1")})},
      {"short row", rowsOf({Row{"mode", "chat"}})},
  };
  for (const auto& c : cases) {
    SampleBatch out;
    std::vector<BlockedSession> waiting;
    const Status s = parseLockRows(c.rows, 20, out, waiting);
    EXPECT_EQ(s.code(), StatusCode::kInternal) << c.what << ": " << s.toString();
  }
}

TEST(LocksCollectorTest, QueryUsesWaitstartFromPostgres14) {
  for (int version : {130012, 140000, 150004, 160002, 170000}) {
    const std::string sql = locksQuery(version);
    const bool has_waitstart = sql.find("pg_locks.waitstart") != std::string::npos ||
                               sql.find(" waitstart AS waitstart") != std::string::npos;
    EXPECT_EQ(has_waitstart, version >= 140000) << version;
    EXPECT_EQ(sql.find("@"), std::string::npos) << "unreplaced placeholder for " << version;
    EXPECT_NE(sql.find("pg_blocking_pids"), std::string::npos);
  }
  EXPECT_NE(locksQuery(130012).find("NULL::timestamptz AS waitstart"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse::collectors
