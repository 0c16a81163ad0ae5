// The collect() glue of PostgreSQL collectors over a FakeSqlSession: which statements a
// run sends, how rows become samples, and how a failed query becomes the collector's Status.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "collectors/postgres/cache_collector.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/statements_collector.h"
#include "fakes/fake_sql_session.h"
#include "unit/collectors/sample_batch_util.h"

namespace dbpulse::collectors {
namespace {

using Row = std::vector<std::optional<std::string>>;

CollectContext context() {
  return CollectContext{WallTime{}, std::chrono::steady_clock::now() + std::chrono::seconds(5), {}};
}

PgRows cacheRows(double hit, double read) {
  PgRows r;
  r.columns = {"kind", "relid", "datname", "schemaname", "relname",
               "hit",  "read",  "idx_hit", "idx_read"};
  r.rows.push_back(Row{"db", std::nullopt, "chat", std::nullopt, std::nullopt, std::to_string(hit),
                       std::to_string(read), std::nullopt, std::nullopt});
  return r;
}

TEST(PgCollectorSessionTest, CacheRunSendsItsQueryAndExportsTheRatio) {
  fakes::FakeSqlSession db;
  db.answer("pg_statio_user_tables", cacheRows(750, 250));
  CacheCollector c(db, 20);
  SampleBatch out;
  ASSERT_TRUE(c.collect(context(), out).ok());
  ASSERT_EQ(db.statements().size(), 1u);
  EXPECT_EQ(db.statements()[0].sql, std::string(kCacheQuery));
  auto ratio = batchtest::value(out, "dbpulse_pg_cache_hit_ratio", {{"datname", "chat"}});
  ASSERT_TRUE(ratio.has_value());
  EXPECT_DOUBLE_EQ(*ratio, 0.75);
}

TEST(PgCollectorSessionTest, MissingPrivilegeSwitchesTheCollectorOffVisibly) {
  fakes::FakeSqlSession db;
  db.answer("pg_statio_user_tables",
            Status(StatusCode::kPermissionDenied, "permission denied for view pg_statio"));
  CacheCollector c(db, 20);
  SampleBatch out;
  const Status s = c.collect(context(), out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(s.reason(), "privilege_missing");
  EXPECT_NE(s.message().find("permission denied for view pg_statio"), std::string::npos);
  EXPECT_NE(s.message().find("pg_monitor"), std::string::npos) << "names the fix";
}

TEST(PgCollectorSessionTest, ServerDownIsReportedAsItIs) {
  fakes::FakeSqlSession db;
  db.failEverything(Status(StatusCode::kUnavailable, "connection refused"));
  CacheCollector c(db, 20);
  SampleBatch out;
  const Status s = c.collect(context(), out);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "connection refused");
}

TEST(PgCollectorSessionTest, MalformedRowsAreAnInternalErrorNotACrash) {
  fakes::FakeSqlSession db;
  PgRows wrong;
  wrong.columns = {"kind", "datname"};
  wrong.rows.push_back(Row{"db", "chat"});
  db.answer("pg_statio_user_tables", wrong);
  CacheCollector c(db, 20);
  SampleBatch out;
  EXPECT_EQ(c.collect(context(), out).code(), StatusCode::kInternal);
}

PgRows probeRows(std::vector<Row> rows) {
  PgRows r;
  r.columns = {"schema", "version"};
  r.rows = std::move(rows);
  return r;
}

TEST(PgCollectorSessionTest, StatementsWithoutTheExtensionSayWhatIsMissing) {
  fakes::FakeSqlSession db;
  db.answer("e.extname = 'pg_stat_statements'", probeRows({}));
  StatementsCollector c(db, StatementsOptions{});
  SampleBatch out;
  const Status s = c.collect(context(), out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(s.reason(), "extension_missing");
  EXPECT_NE(s.message().find(db.redactedDsn()), std::string::npos) << "names the database";
  EXPECT_EQ(db.statements().size(), 1u) << "no statements query without the extension";
}

TEST(PgCollectorSessionTest, StatementsProbeIsRedoneAfterAFailedRun) {
  fakes::FakeSqlSession db;
  db.answer("e.extname = 'pg_stat_statements'", probeRows({Row{"public", "1.10"}}));
  // Installed but not in shared_preload_libraries: the per-run query fails.
  db.answer("pg_stat_statements(",
            Status(StatusCode::kInvalidArgument,
                   "pg_stat_statements must be loaded via shared_preload_libraries"));
  StatementsCollector c(db, StatementsOptions{});
  SampleBatch out;
  Status s = c.collect(context(), out);
  EXPECT_EQ(s.reason(), "extension_missing") << s.toString();
  EXPECT_NE(s.message().find("not loaded"), std::string::npos) << s.message();
  s = c.collect(context(), out);
  EXPECT_EQ(s.reason(), "extension_missing");
  // The failure dropped the probe, so each run probed again.
  EXPECT_EQ(db.count("e.extname = 'pg_stat_statements'"), 2u);
}

TEST(PgCollectorSessionTest, LocksAsksTheServerVersionWhenNotConnectedYet) {
  fakes::FakeSqlSession db;
  db.setServerVersion(0);  // not connected: the collector asks
  PgRows version;
  version.columns = {"server_version_num"};
  version.rows.push_back(Row{"160002"});
  db.answer("SHOW server_version_num", version);
  db.answer("pg_locks", Status(StatusCode::kDeadlineExceeded, "canceling statement"));
  LocksCollector c(db, 5);
  SampleBatch out;
  EXPECT_EQ(c.collect(context(), out).code(), StatusCode::kDeadlineExceeded);
  ASSERT_GE(db.statements().size(), 2u);
  EXPECT_EQ(db.statements()[0].sql, "SHOW server_version_num");
}

TEST(PgCollectorSessionTest, CancelEndsOnlyTheCollectorsOwnHandle) {
  fakes::FakeSqlSession db;
  CacheCollector a(db, 20);  // handle 1
  CacheCollector b(db, 20);  // handle 2
  b.cancel();
  EXPECT_EQ(db.cancelled(), std::vector<int>{2})
      << "a collector cancels its own statement, never the session's or another member's";
}

}  // namespace
}  // namespace dbpulse::collectors
