// The statements, cache, stats, tables and size collectors against a real PostgreSQL (every major,
// tests/CMakeLists.txt): each test
// builds its own small chat database in the shared server, drives a workload with a
// separate client and runs the collector classes (or the real binary) against it.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "collectors/catalog.h"
#include "collectors/clients/postgres/pg_session.h"
#include "collectors/postgres/cache_collector.h"
#include "collectors/postgres/size_collector.h"
#include "collectors/postgres/statements_collector.h"
#include "collectors/postgres/stats_collector.h"
#include "collectors/postgres/tables_collector.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using collectors::CacheCollector;
using collectors::Collector;
using collectors::PgSession;
using collectors::PgSessionOptions;
using collectors::SizeCollector;
using collectors::StatementsCollector;
using collectors::StatementsOptions;
using collectors::TablesCollector;

// The chat schema of packaging/demo (the parts these tests need), small enough to build in
// well under a second. No index on messages(conversation_id): the missing index. messages
// (~2 MB) stays under a quarter of the test server's 16 MB shared_buffers, so scans of it
// go through shared buffers rather than a bulk-read ring.
constexpr const char* kChatSchema = R"SQL(
CREATE TABLE users (
  id bigint PRIMARY KEY, username text NOT NULL UNIQUE, display_name text NOT NULL);
CREATE TABLE conversations (id bigint PRIMARY KEY, title text);
CREATE TABLE messages (
  id bigint PRIMARY KEY, conversation_id bigint NOT NULL REFERENCES conversations (id),
  sender_id bigint NOT NULL REFERENCES users (id), body text NOT NULL,
  sent_at timestamptz NOT NULL DEFAULT now())
  WITH (autovacuum_enabled = false);
INSERT INTO users SELECT g, 'user' || g, 'User ' || g FROM generate_series(1, 2000) g;
INSERT INTO conversations SELECT g, 'conversation ' || g FROM generate_series(1, 500) g;
INSERT INTO messages (id, conversation_id, sender_id, body, sent_at)
SELECT g, 1 + g % 500, 1 + g % 2000, repeat('hi ', 1 + g % 5), now() - g * interval '1 s'
  FROM generate_series(1, 30000) g;
)SQL";

// A fresh database with the chat schema (dropped first if a previous run left it).
void makeChatDatabase(PgServer& pg, const std::string& db, bool with_statements = true) {
  pg.exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
  pg.exec("CREATE DATABASE " + db);
  if (with_statements) pg.exec("CREATE EXTENSION pg_stat_statements", db);
  pg.exec(kChatSchema, db);
  // Separately: an ANALYZE in the loading transaction would not reset the modified-rows
  // counters of the rows that transaction inserted. VACUUM too: otherwise autovacuum may
  // vacuum the freshly loaded users table mid-test, adding its free space and visibility map
  // forks (a size measured before differs from one measured after).
  pg.exec("VACUUM ANALYZE", db);
}

std::unique_ptr<PgSession> sessionFor(PgServer& pg, const std::string& db,
                                      const std::string& user = "postgres") {
  PgSessionOptions o;
  o.dsn = pg.dsn(db, user);
  o.statement_timeout = 10s;
  o.lock_timeout = 5s;
  return std::make_unique<PgSession>(o);
}

Status runOnce(Collector& collector, SampleBatch& out) {
  collectors::CollectContext ctx{
      std::chrono::system_clock::now(), std::chrono::steady_clock::now() + 30s, {}};
  return collector.collect(ctx, out);
}

// The value of the one sample named `name` whose labels include `match`.
std::optional<double> valueOf(const SampleBatch& batch, const std::string& name,
                              const std::vector<std::pair<std::string, std::string>>& match = {}) {
  for (const auto& s : batch.samples()) {
    if (s.name != name) continue;
    bool all = true;
    for (const auto& [k, v] : match) all = all && s.labels.get(k) == v;
    if (all) return s.value;
  }
  return std::nullopt;
}

// Makes the statistics of what `client` did visible to other sessions: the collectors read
// what was just done. Construct it before the workload it flushes (it does its own setup
// then, so a cache-hit measurement afterwards does not count it).
//
// PG 15+: pg_stat_force_next_flush() (shared-memory statistics). Before 15 a backend sends
// its counters to the statistics collector at a transaction end at most every 500 ms, and
// readers take the collector's file when it is under 500 ms old. So the session calls a
// marker function of its own until an observer session sees the calls counted past what
// was counted before this flush: the message that carried a new call carried everything
// the session did before it.
class StatsFlusher {
 public:
  StatsFlusher(PgServer& pg, PgClient& client) : client_(client), modern_(pg.major() >= 15) {
    if (modern_) return;
    client_.exec(
        "SET track_functions = 'all'; "
        "CREATE FUNCTION pg_temp.dbpulse_flush_marker() RETURNS int LANGUAGE plpgsql "
        "AS $$BEGIN RETURN 1; END$$");
    oid_ = client_.queryValue("SELECT 'pg_temp.dbpulse_flush_marker'::regproc::oid::text").value();
    observer_.emplace(pg.connect(client_.queryValue("SELECT current_database()").value()));
    (*this)();
  }

  void operator()() {
    if (modern_) {
      client_.exec("SELECT pg_stat_force_next_flush()");
      return;
    }
    const long before = calls_;
    const bool seen = pollUntil(
        [&] {
          client_.exec("SELECT pg_temp.dbpulse_flush_marker()");
          ++calls_;
          return std::stol(observer_->queryValue("SELECT pg_stat_get_function_calls(" + oid_ + ")")
                               .value_or("0")) > before;
        },
        10s, 50ms);
    if (!seen) throw HarnessError("statistics of the test session not visible within 10 s");
  }

 private:
  PgClient& client_;
  bool modern_;
  std::string oid_;
  std::optional<PgClient> observer_;
  long calls_ = 0;  // marker calls made so far (all of them reach the statistics in order)
};

class PgCollectorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres()) return;  // recorded as a skip (or a failure under CI=true)
    pg_ = &sharedPostgres();
  }
  PgServer* pg_ = nullptr;
};

// ---------------------------------------------------------------- statements

TEST_F(PgCollectorsTest, SlowQueryWithMissingIndexIsInTopStatementsWithItsQueryId) {
  const std::string db = "pga_statements";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  StatementsCollector collector(*session, StatementsOptions{5, 5s});
  SampleBatch baseline;
  ASSERT_TRUE(runOnce(collector, baseline).ok());

  // "Latest messages of a conversation" without an index on conversation_id: a scan of
  // the whole table each time; and a cheap lookup by primary key as the contrast.
  PgClient app = pg_->connect(db);
  for (int i = 0; i < 12; ++i) {
    app.exec("SELECT id, body FROM messages WHERE conversation_id = " + std::to_string(7 + i) +
             " ORDER BY sent_at DESC LIMIT 50");
    app.exec("SELECT username FROM users WHERE id = " + std::to_string(1 + i));
  }
  const std::string expected_queryid =
      pg_->queryValue(
             "SELECT queryid::text FROM pg_stat_statements s JOIN pg_database d ON "
             "d.oid = s.dbid WHERE d.datname = '" +
                 db + "' AND query LIKE 'SELECT id, body FROM messages WHERE%'",
             db)
          .value_or("");
  ASSERT_FALSE(expected_queryid.empty());

  SampleBatch out;
  ASSERT_TRUE(runOnce(collector, out).ok());
  const auto top = collector.topStatements();
  ASSERT_FALSE(top.empty());
  auto slow = std::find_if(top.begin(), top.end(),
                           [&](const auto& s) { return s.queryid == expected_queryid; });
  ASSERT_NE(slow, top.end()) << "the slow statement is not in the top " << top.size();
  EXPECT_EQ(slow->datname, db);
  EXPECT_EQ(slow->user, "postgres");
  EXPECT_EQ(slow->recent_calls, 12);
  EXPECT_NE(slow->query.find("FROM messages WHERE conversation_id ="), std::string::npos)
      << slow->query;
  auto lookup = std::find_if(top.begin(), top.end(), [](const auto& s) {
    return s.query.find("FROM users WHERE id") != std::string::npos;
  });
  if (lookup != top.end()) {
    EXPECT_GT(slow->recent_seconds, lookup->recent_seconds);
  }

  const auto calls =
      valueOf(out, "pg_stat_statements_calls_total",
              {{"queryid", expected_queryid}, {"datname", db}, {"user", "postgres"}});
  ASSERT_TRUE(calls.has_value());
  EXPECT_EQ(*calls, 12);
  EXPECT_GT(*valueOf(out, "dbpulse_pg_statement_recent_seconds", {{"queryid", expected_queryid}}),
            0);
  for (const auto& s : out.samples()) {
    EXPECT_TRUE(s.labels.get("query").empty()) << "query text used as a label in " << s.name;
  }

  // Nothing ran since: the statement is not exported again.
  SampleBatch idle;
  ASSERT_TRUE(runOnce(collector, idle).ok());
  EXPECT_FALSE(
      valueOf(idle, "pg_stat_statements_calls_total", {{"queryid", expected_queryid}}).has_value());
}

TEST_F(PgCollectorsTest, StatementsResetIsARestartNotANegativeRate) {
  const std::string db = "pga_statements_reset";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  StatementsCollector collector(*session, StatementsOptions{50, 5s});
  PgClient app = pg_->connect(db);
  for (int i = 0; i < 5; ++i) app.exec("SELECT count(*) FROM messages WHERE sender_id = 3");
  SampleBatch first;
  ASSERT_TRUE(runOnce(collector, first).ok());
  const double exec_before = *valueOf(first, "dbpulse_pg_statements_exec_seconds_total");

  app.exec("SELECT pg_stat_statements_reset()");
  app.exec("SELECT count(*) FROM messages WHERE sender_id = 3");
  SampleBatch second;
  ASSERT_TRUE(runOnce(collector, second).ok());
  for (const auto& s : second.samples()) {
    EXPECT_GE(s.value, 0) << s.name;
  }
  EXPECT_GE(*valueOf(second, "dbpulse_pg_statements_restarts_total"), 1);
  EXPECT_GE(*valueOf(second, "dbpulse_pg_statements_exec_seconds_total"), exec_before);
  const auto restarted =
      valueOf(second, "dbpulse_pg_statement_recent_calls", {{"datname", db}, {"user", "postgres"}});
  EXPECT_TRUE(restarted.has_value());
}

TEST_F(PgCollectorsTest, StatementsReportsLongRunningStatements) {
  const std::string db = "pga_statements_long";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  StatementsCollector collector(*session, StatementsOptions{50, 200ms});
  std::thread sleeper([&] {
    PgClient c = pg_->connect(db);
    c.exec("SELECT pg_sleep(2)");
  });
  SampleBatch seen;
  const bool reported = pollUntil(
      [&] {
        seen = SampleBatch();
        return runOnce(collector, seen).ok() &&
               valueOf(seen, "dbpulse_pg_long_running_statements").value_or(0) >= 1;
      },
      1800ms, 100ms);
  sleeper.join();
  ASSERT_TRUE(reported);
  EXPECT_GE(*valueOf(seen, "dbpulse_pg_longest_running_statement_seconds"), 0.2);
}

TEST_F(PgCollectorsTest, StatementsWithoutTheExtensionIsAFailedPreconditionWithTheFix) {
  const std::string db = "pga_no_extension";
  makeChatDatabase(*pg_, db, /*with_statements=*/false);
  auto session = sessionFor(*pg_, db);
  StatementsCollector collector(*session, StatementsOptions{});
  SampleBatch out;
  const Status s = runOnce(collector, out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(s.message().rfind("extension_missing:", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("shared_preload_libraries"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("CREATE EXTENSION pg_stat_statements"), std::string::npos);
}

TEST_F(PgCollectorsTest, StatementsInstalledButNotPreloadedIsExtensionMissing) {
  // A server of its own: the shared one preloads pg_stat_statements.
  PgServerOptions options;
  options.settings = {"shared_preload_libraries="};
  PgServer bare(options);
  bare.exec("CREATE EXTENSION pg_stat_statements");  // succeeds; using it does not
  auto session = sessionFor(bare, "postgres");
  StatementsCollector collector(*session, StatementsOptions{});
  SampleBatch out;
  const Status s = runOnce(collector, out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(
      s.message().rfind("extension_missing: pg_stat_statements is installed but not loaded", 0), 0u)
      << s.message();
  EXPECT_NE(s.message().find("add pg_stat_statements to shared_preload_libraries"),
            std::string::npos)
      << s.message();
}

TEST_F(PgCollectorsTest, StatementsWithoutExecutePrivilegeNamesThePrivilege) {
  const std::string db = "pga_statements_revoked";
  makeChatDatabase(*pg_, db);
  pg_->exec("DROP ROLE IF EXISTS pga_nobody; CREATE ROLE pga_nobody LOGIN");
  pg_->exec("REVOKE EXECUTE ON FUNCTION pg_stat_statements(boolean) FROM PUBLIC", db);
  auto session = sessionFor(*pg_, db, "pga_nobody");
  StatementsCollector collector(*session, StatementsOptions{});
  SampleBatch out;
  const Status s = runOnce(collector, out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(s.message().rfind("privilege_missing: statements:", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("permission denied for function pg_stat_statements"),
            std::string::npos)
      << s.message();
}

// PG 17 renamed pg_stat_statements' blk_read_time to shared_blk_read_time (and added
// stats_since); pg_stat_statements_info, the deallocation counter, came with 14. The
// collector picks its SQL from server_version_num: a scan read from outside shared buffers
// with track_io_timing on has a read time on every major.
TEST_F(PgCollectorsTest, StatementsReadTimeAndDeallocationsFollowTheServerVersion) {
  const std::string db = "pga_statements_version";
  makeChatDatabase(*pg_, db);
  pg_->exec("CHECKPOINT");
  pg_->stop();  // empties shared buffers: the scan below reads messages
  pg_->start();
  auto session = sessionFor(*pg_, db);
  StatementsCollector collector(*session, StatementsOptions{50, 5s});
  SampleBatch baseline;
  ASSERT_TRUE(runOnce(collector, baseline).ok());
  PgClient app = pg_->connect(db);
  app.exec("SET track_io_timing = on");
  app.exec("SELECT sum(length(body)) FROM messages");
  const std::string queryid =
      pg_->queryValue(
             "SELECT queryid::text FROM pg_stat_statements WHERE query LIKE "
             "'SELECT sum(length(body)) FROM messages%'",
             db)
          .value_or("");
  ASSERT_FALSE(queryid.empty());
  SampleBatch out;
  const Status s = runOnce(collector, out);
  ASSERT_TRUE(s.ok()) << "PostgreSQL " << pg_->major() << ": " << s.toString();
  const auto read_seconds = valueOf(out, "pg_stat_statements_block_read_seconds_total",
                                    {{"queryid", queryid}, {"datname", db}});
  ASSERT_TRUE(read_seconds.has_value()) << "PostgreSQL " << pg_->major();
  EXPECT_GT(*read_seconds, 0) << "PostgreSQL " << pg_->major();
  EXPECT_GT(*valueOf(out, "dbpulse_pg_statement_shared_blks_read_total", {{"queryid", queryid}}),
            200);
  EXPECT_EQ(valueOf(out, "dbpulse_pg_statements_deallocations_total").has_value(),
            pg_->major() >= 14)
      << "pg_stat_statements_info exists from PostgreSQL 14 on; this is " << pg_->major();
}

// ---------------------------------------------------------------- tables

TEST_F(PgCollectorsTest, DeletingHalfATableRaisesItsDeadTupleRatio) {
  const std::string db = "pga_tables";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  TablesCollector collector(*session, 20);
  const std::vector<std::pair<std::string, std::string>> messages = {{"datname", db},
                                                                     {"relname", "messages"}};
  SampleBatch before;
  ASSERT_TRUE(runOnce(collector, before).ok());
  const double ratio_before = *valueOf(before, "dbpulse_pg_table_dead_tuple_ratio", messages);
  EXPECT_LT(ratio_before, 0.05);

  PgClient app = pg_->connect(db);
  StatsFlusher flush_stats(*pg_, app);
  app.exec("DELETE FROM messages WHERE id % 2 = 0");
  flush_stats();
  SampleBatch after;
  ASSERT_TRUE(runOnce(collector, after).ok());
  const double ratio_after = *valueOf(after, "dbpulse_pg_table_dead_tuple_ratio", messages);
  EXPECT_NEAR(ratio_after, 0.5, 0.05);
  EXPECT_EQ(*valueOf(after, "pg_stat_user_tables_n_dead_tup", messages), 15000);
  EXPECT_EQ(*valueOf(after, "pg_stat_user_tables_n_mod_since_analyze", messages), 15000);
  EXPECT_GT(*valueOf(after, "dbpulse_pg_tables_dead_tuples", {{"datname", db}}), 14999);

  const auto report = collector.latest();
  EXPECT_EQ(report.datname, db);
  EXPECT_EQ(report.tables.size(), 3u);

  // VACUUM frees the dead rows' space without shrinking the file: half of it is now bloat,
  // and the statistics-based estimate should see about that much.
  app.exec("VACUUM ANALYZE messages");
  flush_stats();
  SampleBatch vacuumed;
  ASSERT_TRUE(runOnce(collector, vacuumed).ok());
  EXPECT_LT(*valueOf(vacuumed, "dbpulse_pg_table_dead_tuple_ratio", messages), 0.05);
  EXPECT_NEAR(*valueOf(vacuumed, "dbpulse_pg_table_bloat_ratio", messages), 0.5, 0.1);
  EXPECT_LT(*valueOf(vacuumed, "dbpulse_pg_table_vacuum_age_seconds", messages), 60);
  EXPECT_GT(*valueOf(vacuumed, "dbpulse_pg_database_xid_age", {{"datname", db}}), 0);
  EXPECT_TRUE(valueOf(vacuumed, "dbpulse_pg_table_xid_age", messages).has_value());
}

// ---------------------------------------------------------------- cache

TEST_F(PgCollectorsTest, CacheHitRatioDropsWhenColdAndRisesWhenWarm) {
  const std::string db = "pga_cache";
  makeChatDatabase(*pg_, db);
  pg_->exec("CHECKPOINT");
  // A restart empties shared buffers (the messages table then comes from disk).
  pg_->stop();
  pg_->start();
  auto session = sessionFor(*pg_, db);
  CacheCollector collector(*session, 20);
  PgClient app = pg_->connect(db);
  StatsFlusher flush_stats(*pg_, app);
  SampleBatch baseline;
  ASSERT_TRUE(runOnce(collector, baseline).ok());

  const std::vector<std::pair<std::string, std::string>> this_db = {{"datname", db}};
  const std::vector<std::pair<std::string, std::string>> messages = {{"datname", db},
                                                                     {"relname", "messages"}};
  app.exec("SELECT sum(length(body)) FROM messages");
  flush_stats();
  SampleBatch cold;
  ASSERT_TRUE(runOnce(collector, cold).ok());

  for (int i = 0; i < 5; ++i) app.exec("SELECT sum(length(body)) FROM messages");
  flush_stats();
  SampleBatch warm;
  ASSERT_TRUE(runOnce(collector, warm).ok());

  const double cold_ratio = *valueOf(cold, "dbpulse_pg_cache_hit_ratio", this_db);
  const double warm_ratio = *valueOf(warm, "dbpulse_pg_cache_hit_ratio", this_db);
  EXPECT_LT(cold_ratio, 0.5);
  EXPECT_GT(warm_ratio, 0.95);
  EXPECT_LT(*valueOf(cold, "dbpulse_pg_table_heap_cache_hit_ratio", messages), 0.5);
  EXPECT_GT(*valueOf(warm, "dbpulse_pg_table_heap_cache_hit_ratio", messages), 0.95);
}

// ---------------------------------------------------------------- size

TEST_F(PgCollectorsTest, SizesOfDatabaseTablesIndexesAndToastAppear) {
  const std::string db = "pga_size";
  makeChatDatabase(*pg_, db);
  // Free space and visibility maps (forks beside the main one) must be counted too.
  pg_->exec("DELETE FROM messages WHERE id % 3 = 0", db);
  pg_->exec("VACUUM messages", db);
  auto session = sessionFor(*pg_, db);
  SizeCollector collector(*session, 20);
  SampleBatch out;
  ASSERT_TRUE(runOnce(collector, out).ok());
  PgClient app = pg_->connect(db);
  const double db_bytes = std::stod(*app.queryValue("SELECT pg_database_size(current_database())"));
  EXPECT_NEAR(*valueOf(out, "pg_database_size_bytes", {{"datname", db}}), db_bytes,
              db_bytes * 0.05);
  const std::vector<std::pair<std::string, std::string>> messages = {{"datname", db},
                                                                     {"relname", "messages"}};
  EXPECT_EQ(*valueOf(out, "dbpulse_pg_table_total_size_bytes", messages),
            std::stod(*app.queryValue("SELECT pg_total_relation_size('messages')")));
  EXPECT_EQ(*valueOf(out, "dbpulse_pg_table_indexes_size_bytes", messages),
            std::stod(*app.queryValue("SELECT pg_indexes_size('messages')")));
  EXPECT_EQ(*valueOf(out, "dbpulse_pg_table_toast_size_bytes", messages),
            std::stod(*app.queryValue(
                "SELECT pg_total_relation_size(reltoastrelid) FROM pg_class WHERE relname = "
                "'messages'")));
  EXPECT_GT(*valueOf(out, "dbpulse_pg_user_tables_size_bytes", {{"datname", db}, {"part", "heap"}}),
            0);
  const auto report = collector.latest();
  ASSERT_FALSE(report.tables.empty());
  EXPECT_EQ(report.tables.front().relname, "messages");  // the largest first
  EXPECT_EQ(report.indexes.size(), 4u);  // three primary keys and users_username_key
}

TEST_F(PgCollectorsTest, SizeMeasuresTheLargestTablesAndEstimatesTheTail) {
  const std::string db = "pga_size_tail";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  SizeCollector collector(*session, 1);  // top 1: the 2 largest by relpages are measured
  SampleBatch out;
  ASSERT_TRUE(runOnce(collector, out).ok());
  EXPECT_EQ(*valueOf(out, "dbpulse_pg_size_estimated_tables", {{"datname", db}}), 1);
  PgClient app = pg_->connect(db);
  const auto report = collector.latest();
  ASSERT_EQ(report.tables.size(), 3u);
  for (const auto& t : report.tables) {
    SCOPED_TRACE(t.relname);
    EXPECT_EQ(t.estimated, t.relname == "conversations");  // the smallest
    if (t.estimated) continue;
    EXPECT_EQ(t.total_bytes,
              std::stod(*app.queryValue("SELECT pg_total_relation_size('" + t.relname + "')")));
  }
  EXPECT_EQ(*valueOf(out, "dbpulse_pg_table_total_size_bytes", {{"relname", "messages"}}),
            report.tables.front().total_bytes);
}

TEST_F(PgCollectorsTest, SizeDoesNotQueueBehindAnAccessExclusiveLock) {
  const std::string db = "pga_size_locked";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  SizeCollector collector(*session, 20);
  PgClient locker = pg_->connect(db);
  locker.exec("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE");
  const auto t0 = std::chrono::steady_clock::now();
  SampleBatch out;
  const Status s = runOnce(collector, out);
  const auto took = std::chrono::steady_clock::now() - t0;
  locker.exec("ROLLBACK");
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_LT(took, 4s) << "waited for the lock (lock_timeout is 5 s)";
  EXPECT_EQ(*valueOf(out, "dbpulse_pg_size_estimated_tables", {{"datname", db}}), 1);
  EXPECT_GT(*valueOf(out, "dbpulse_pg_table_total_size_bytes", {{"relname", "messages"}}), 0);
}

// ---------------------------------------------------------------- least privilege

TEST_F(PgCollectorsTest, AllFourWorkWithARoleThatHasOnlyPgMonitor) {
  const std::string db = "pga_monitor_only";
  makeChatDatabase(*pg_, db);
  pg_->exec(
      "DROP ROLE IF EXISTS pga_monitor; CREATE ROLE pga_monitor LOGIN; "
      "GRANT pg_monitor TO pga_monitor");
  PgClient app = pg_->connect(db);
  StatsFlusher flush_stats(*pg_, app);
  app.exec("SELECT count(*) FROM messages WHERE conversation_id = 3");
  flush_stats();

  auto session = sessionFor(*pg_, db, "pga_monitor");
  StatementsCollector statements(*session, StatementsOptions{});
  CacheCollector cache(*session, 20);
  TablesCollector tables(*session, 20);
  SizeCollector size(*session, 20);
  for (Collector* c : std::vector<Collector*>{&statements, &cache, &tables, &size}) {
    SampleBatch out;
    const Status s = runOnce(*c, out);
    EXPECT_TRUE(s.ok()) << c->name() << ": " << s.toString();
    EXPECT_FALSE(out.empty()) << c->name();
    if (c == &statements) {
      // pg_read_all_stats (in pg_monitor) shows other roles' statements.
      EXPECT_EQ(*valueOf(out, "dbpulse_pg_statements_hidden"), 0);
      EXPECT_TRUE(valueOf(out, "pg_stat_statements_calls_total", {{"user", "postgres"}}));
    }
    if (c == &tables) {
      // pg_stats hides columns the role may not SELECT: no bloat estimate, but the rest.
      EXPECT_EQ(*valueOf(out, "dbpulse_pg_tables_bloat_unknown", {{"datname", db}}), 3);
      EXPECT_TRUE(valueOf(out, "pg_stat_user_tables_n_live_tup", {{"relname", "messages"}}));
      EXPECT_EQ(tables.latest().stats_hidden, 3u);
    }
    if (c == &size) {
      EXPECT_TRUE(valueOf(out, "pg_database_size_bytes", {{"datname", "postgres"}}));
    }
  }
}

// ---------------------------------------------------------------- the real binary

std::string agentConfig(const DbpulseProcess& agent, const PgServer& pg, const std::string& db) {
  std::string toml = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                     agent.stateDir().string() + "\"\nlog_format = \"text\"\n[postgres]\ndsn = \"" +
                     pg.dsn(db) + "\"\nstatement_timeout = \"5s\"\n";
  for (const char* name : {"statements", "cache", "tables", "size"}) {
    toml += std::string("[collectors.") + name +
            "]\nenabled = true\ninterval = \"1s\"\ntimeout = \"900ms\"\n";
  }
  // Only these four: the test is about them, not about the others' servers.
  for (const char* name : {"connections", "stats", "indexes", "locks", "pgbouncer", "replication",
                           "redis", "process", "companion"}) {
    toml += std::string("[collectors.") + name + "]\nenabled = false\n";
  }
  return toml;
}

TEST_F(PgCollectorsTest, MissingExtensionSwitchesStatementsOffWhileTheOthersWork) {
  const std::string db = "pga_agent_no_extension";
  makeChatDatabase(*pg_, db, /*with_statements=*/false);
  DbpulseProcess agent;
  agent.start(agentConfig(agent, *pg_, db));
  ASSERT_TRUE(agent.waitHealthy(15s));
  ASSERT_TRUE(agent.waitForMetrics(
      [&](const std::string& text) {
        return sampleValue(text, "dbpulse_collector_enabled",
                           {{"collector", "statements"}, {"reason", "extension_missing"}}) == 0.0 &&
               sampleValue(text, "dbpulse_collector_success", {{"collector", "cache"}}) == 1.0 &&
               sampleValue(text, "dbpulse_collector_success", {{"collector", "tables"}}) == 1.0 &&
               sampleValue(text, "dbpulse_collector_success", {{"collector", "size"}}) == 1.0 &&
               sampleValue(text, "dbpulse_pg_cache_hit_ratio", {{"datname", db}}).has_value() &&
               sampleValue(text, "pg_database_size_bytes", {{"datname", db}}).has_value();
      },
      20s, "statements off with extension_missing, cache/tables/size working"));
  EXPECT_TRUE(agent.waitReady(5s));
}

// Every PostgreSQL collector of the catalogue (those with a session group; a new one is
// covered without touching this test) runs its queries against this major through the real
// binary and succeeds. The others (pgbouncer, redis, process, companion) are off.
TEST_F(PgCollectorsTest, EveryPostgresCollectorSucceedsOnThisMajor) {
  const std::string db = "pga_every_collector";
  makeChatDatabase(*pg_, db);
  DbpulseProcess agent;
  std::string toml = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                     agent.stateDir().string() + "\"\n[postgres]\ndsn = \"" + pg_->dsn(db) +
                     "\"\nstatement_timeout = \"5s\"\n";
  std::vector<std::string> postgres_collectors;
  for (const collectors::CatalogEntry& entry : collectors::catalog()) {
    const bool postgres = !entry.default_group.empty() && entry.make != nullptr;
    if (postgres) postgres_collectors.push_back(entry.name);
    toml += "[collectors." + entry.name + "]\nenabled = " + (postgres ? "true" : "false") + "\n";
  }
  ASSERT_GE(postgres_collectors.size(), 8u);
  const auto config = agent.writeConfig(toml);
  const CommandResult once = runDbpulse({"once", "--config", config.string()}, 30s);
  ASSERT_EQ(once.exit_code, 0) << once.describe();
  for (const std::string& name : postgres_collectors) {
    EXPECT_EQ(sampleValue(once.out, "dbpulse_collector_success", {{"collector", name}}), 1.0)
        << name << " on PostgreSQL " << pg_->major() << ":\n"
        << once.describe();
  }
  const auto version = sampleValue(once.out, "dbpulse_pg_server_version_num");
  ASSERT_TRUE(version.has_value()) << once.out;
  EXPECT_EQ(static_cast<int>(*version) / 10000, pg_->major());
}

TEST_F(PgCollectorsTest, OncePrintsEverySeriesAndPassesPromtool) {
  const std::string db = "pga_once";
  makeChatDatabase(*pg_, db);
  PgClient app = pg_->connect(db);
  StatsFlusher flush_stats(*pg_, app);
  app.exec("SELECT count(*) FROM messages WHERE conversation_id = 9");
  app.exec("DELETE FROM messages WHERE id % 10 = 0");
  flush_stats();
  DbpulseProcess agent;
  const auto config = agent.writeConfig(agentConfig(agent, *pg_, db));
  const CommandResult once = runDbpulse({"once", "--config", config.string()}, 30s);
  ASSERT_EQ(once.exit_code, 0) << once.describe();
  for (const char* name :
       {"pg_stat_statements_calls_total", "pg_stat_statements_seconds_total",
        "dbpulse_pg_statement_mean_seconds", "dbpulse_pg_long_running_statements",
        "dbpulse_pg_cache_hit_ratio", "dbpulse_pg_table_heap_cache_hit_ratio",
        "pg_stat_user_tables_n_live_tup", "pg_stat_user_tables_n_dead_tup",
        "dbpulse_pg_table_dead_tuple_ratio", "dbpulse_pg_table_bloat_ratio",
        "dbpulse_pg_index_bloat_ratio", "dbpulse_pg_database_xid_age", "dbpulse_pg_table_xid_age",
        "pg_database_size_bytes", "dbpulse_pg_table_total_size_bytes",
        "dbpulse_pg_table_toast_size_bytes"}) {
    EXPECT_FALSE(findSamples(once.out, name).empty()) << name << " missing from once output";
  }
  EXPECT_NEAR(
      *sampleValue(once.out, "dbpulse_pg_table_dead_tuple_ratio", {{"relname", "messages"}}), 0.1,
      0.02);

  if (!requirePromtool()) return;
  // The peers' names break some of promtool's naming rules (counters without _total):
  // dashboards need them as they are; every other finding fails.
  const auto lint = lintProblemsBesidesPeerNames(once.out);
  ASSERT_TRUE(lint.has_value()) << "promtool check metrics did not finish";
  EXPECT_EQ(*lint, "") << "promtool check metrics found problems:\n" << *lint;
}

// ---------------------------------------------------------------- stats

// The difference of one series between two runs (nullopt when absent from either).
std::optional<double> deltaOf(const SampleBatch& before, const SampleBatch& after,
                              const std::string& name,
                              const std::vector<std::pair<std::string, std::string>>& match) {
  const auto a = valueOf(before, name, match), b = valueOf(after, name, match);
  if (!a || !b) return std::nullopt;
  return *b - *a;
}

TEST_F(PgCollectorsTest, StatsCountTransactionsAndRowsPerDatabaseAndTable) {
  const std::string db = "pga_stats";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  collectors::StatsCollector collector(*session, 20);
  PgClient app = pg_->connect(db);
  StatsFlusher flush_stats(*pg_, app);
  SampleBatch before;
  ASSERT_TRUE(runOnce(collector, before).ok());

  for (int i = 0; i < 5; ++i) {
    app.exec("INSERT INTO messages (id, conversation_id, sender_id, body) VALUES (" +
             std::to_string(900000 + i) + ", 1, 1, 'new')");
  }
  app.exec("BEGIN");
  app.exec("UPDATE messages SET body = 'undone' WHERE id = 900000");
  app.exec("ROLLBACK");
  app.exec("UPDATE messages SET body = 'edited' WHERE id IN (900001, 900002)");
  app.exec("DELETE FROM messages WHERE id = 900004");
  flush_stats();
  SampleBatch after;
  ASSERT_TRUE(runOnce(collector, after).ok());

  const std::string datid =
      pg_->queryValue("SELECT oid::text FROM pg_database WHERE datname = '" + db + "'").value();
  const std::vector<std::pair<std::string, std::string>> this_db{{"datid", datid}, {"datname", db}};
  EXPECT_GE(deltaOf(before, after, "pg_stat_database_xact_commit", this_db).value_or(-1), 8);
  EXPECT_GE(deltaOf(before, after, "pg_stat_database_xact_rollback", this_db).value_or(-1), 1);
  EXPECT_GE(deltaOf(before, after, "pg_stat_database_tup_inserted", this_db).value_or(-1), 5);
  EXPECT_GE(deltaOf(before, after, "pg_stat_database_tup_updated", this_db).value_or(-1), 2);
  EXPECT_GE(deltaOf(before, after, "pg_stat_database_tup_deleted", this_db).value_or(-1), 1);
  EXPECT_GE(valueOf(after, "pg_stat_database_numbackends", this_db).value_or(0), 2);
  EXPECT_TRUE(valueOf(after, "pg_stat_database_blks_hit", this_db).has_value());
  EXPECT_TRUE(valueOf(after, "pg_stat_database_conflicts_confl_lock", this_db).has_value());
  // Session statistics exist from PostgreSQL 14.
  EXPECT_EQ(valueOf(after, "pg_stat_database_sessions", this_db).has_value(), pg_->major() >= 14);

  const std::vector<std::pair<std::string, std::string>> messages{
      {"datname", db}, {"schemaname", "public"}, {"relname", "messages"}};
  EXPECT_EQ(deltaOf(before, after, "pg_stat_user_tables_n_tup_ins", messages), 5);
  EXPECT_EQ(deltaOf(before, after, "pg_stat_user_tables_n_tup_del", messages), 1);
  EXPECT_GE(deltaOf(before, after, "pg_stat_user_tables_n_tup_upd", messages).value_or(-1), 2);
  EXPECT_GT(valueOf(after, "pg_statio_user_tables_heap_blks_hit", messages).value_or(0), 0);
  // VACUUM ANALYZE ran when the database was made: a Unix time, not 0.
  EXPECT_GT(valueOf(after, "pg_stat_user_tables_last_vacuum", messages).value_or(0), 1.6e9);
  EXPECT_GE(valueOf(after, "pg_stat_user_tables_vacuum_count", messages).value_or(0), 1);
}

TEST_F(PgCollectorsTest, StatsTopTablesAreBounded) {
  const std::string db = "pga_stats_top";
  makeChatDatabase(*pg_, db);
  {
    // messages becomes the table with the most rows read (users and conversations have
    // the foreign-key lookups of its 30,000 rows).
    PgClient app = pg_->connect(db);
    StatsFlusher flush_stats(*pg_, app);
    app.exec("SELECT count(*) FROM messages");
    app.exec("SELECT count(*) FROM messages");
    flush_stats();
  }
  auto session = sessionFor(*pg_, db);
  collectors::StatsCollector collector(*session, 2);
  SampleBatch out;
  ASSERT_TRUE(runOnce(collector, out).ok());
  size_t tables = 0;
  for (const auto& smp : out.samples()) tables += smp.name == "pg_stat_user_tables_n_tup_ins";
  EXPECT_EQ(tables, 2u);  // of three
  EXPECT_TRUE(valueOf(out, "pg_stat_user_tables_n_tup_ins", {{"relname", "messages"}}));
}

// pg_stat_bgwriter, or pg_stat_checkpointer from PostgreSQL 17; pg_settings in base units;
// the postmaster and version facts, each against what the server itself says.
TEST_F(PgCollectorsTest, StatsReadCheckpointsSettingsAndTheServerFromTheRightViews) {
  const std::string db = "pga_stats_server";
  makeChatDatabase(*pg_, db);
  auto session = sessionFor(*pg_, db);
  collectors::StatsCollector collector(*session, 20);
  SampleBatch before;
  ASSERT_TRUE(runOnce(collector, before).ok());
  const auto requested_before = valueOf(before, "pg_stat_bgwriter_checkpoints_req_total");
  ASSERT_TRUE(requested_before.has_value());

  pg_->exec("CHECKPOINT");
  SampleBatch after;
  EXPECT_TRUE(pollUntil(
      [&] {
        after.clear();
        EXPECT_TRUE(runOnce(collector, after).ok());
        return valueOf(after, "pg_stat_bgwriter_checkpoints_req_total").value_or(0) >
               *requested_before;
      },
      10s))
      << "a CHECKPOINT was not counted as requested";
  EXPECT_TRUE(valueOf(after, "pg_stat_bgwriter_buffers_alloc_total").has_value());
  EXPECT_EQ(valueOf(after, "pg_stat_bgwriter_buffers_backend_total").has_value(), pg_->major() < 17)
      << "PostgreSQL 17 dropped buffers_backend";
  EXPECT_EQ(valueOf(after, "pg_stat_archiver_archived_count"), 0);

  const auto server = [&](const std::string& sql) {
    return std::stod(pg_->queryValue(sql, db).value());
  };
  EXPECT_EQ(valueOf(after, "pg_settings_shared_buffers_bytes"),
            server("SELECT pg_size_bytes(current_setting('shared_buffers'))"));
  EXPECT_EQ(valueOf(after, "pg_settings_work_mem_bytes"),
            server("SELECT pg_size_bytes(current_setting('work_mem'))"));
  EXPECT_EQ(valueOf(after, "pg_settings_checkpoint_timeout_seconds"),
            server("SELECT extract(epoch FROM current_setting('checkpoint_timeout')::interval)"));
  EXPECT_EQ(valueOf(after, "pg_settings_fsync"),
            server("SELECT CASE current_setting('fsync') WHEN 'on' THEN 1 ELSE 0 END"));
  EXPECT_EQ(valueOf(after, "pg_settings_server_version_num"),
            server("SELECT current_setting('server_version_num')::int"));
  // The connections collector's own.
  EXPECT_FALSE(valueOf(after, "pg_settings_max_connections").has_value());
  EXPECT_NEAR(*valueOf(after, "pg_postmaster_start_time_seconds"),
              server("SELECT extract(epoch FROM pg_postmaster_start_time())"), 0.001);
  EXPECT_EQ(valueOf(after, "pg_static", {{"version", pg_->queryValue("SELECT version()").value()}}),
            1);
}

// The live /metrics of a real agent on this major against collectors/metric_names.tsv: every
// family on /metrics is in the table with the table's type (never untyped but where the
// table says why), and every name the table lists as always there for the enabled
// collectors and this major is there.
TEST_F(PgCollectorsTest, LiveMetricsMatchTheNameTable) {
  const std::string db = "pga_names";
  makeChatDatabase(*pg_, db);
  PgClient app = pg_->connect(db);
  app.exec("SELECT count(*) FROM messages WHERE conversation_id = 3");
  app.exec("DELETE FROM messages WHERE id % 50 = 0");
  const bool with_redis = std::filesystem::exists(std::string(kRedisServer));
  DbpulseProcess agent;
  std::string toml = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                     agent.stateDir().string() + "\"\nlog_format = \"text\"\n[postgres]\ndsn = \"" +
                     pg_->dsn(db) + "\"\nstatement_timeout = \"5s\"\n";
  if (with_redis) toml += "[redis]\naddress = \"" + sharedRedis().address() + "\"\n";
  std::set<std::string> enabled = {"agent"};
  for (const collectors::CatalogEntry& entry : collectors::catalog()) {
    const bool on = (!entry.default_group.empty() && entry.name != "pgbouncer") ||
                    entry.name == "process" || (entry.name == "redis" && with_redis);
    if (on) enabled.insert(entry.name);
    toml += "[collectors." + entry.name + "]\nenabled = " + (on ? "true" : "false") + "\n";
    if (on) toml += "interval = \"1s\"\ntimeout = \"900ms\"\n";
  }
  agent.start(toml);
  ASSERT_TRUE(agent.waitHealthy(15s));
  std::string scrape;
  ASSERT_TRUE(agent.waitForMetrics(
      [&](const std::string& text) {
        for (const auto& name : enabled) {
          if (name != "agent" &&
              sampleValue(text, "dbpulse_collector_success", {{"collector", name}}) != 1.0) {
            return false;
          }
        }
        return true;
      },
      30s, "every enabled collector succeeding", &scrape));

  const auto rows = readMetricNames();
  const auto exposed = exposedTypes(scrape);
  for (const auto& [family, type] : exposed) {
    const MetricNameRow* row = findMetricName(rows, family);
    if (row == nullptr) {
      ADD_FAILURE() << family << " (" << type << ") is on /metrics but not in the name table";
      continue;
    }
    EXPECT_EQ(type, row->type) << family;
    EXPECT_TRUE(enabled.count(row->collector))
        << family << " comes from " << row->collector << ", which is off here";
    EXPECT_TRUE(row->onMajor(pg_->major()))
        << family << " is listed for PostgreSQL " << row->pg << ", not " << pg_->major();
  }
  for (const auto& row : rows) {
    if (!enabled.count(row.collector) || row.when != "always" || !row.onMajor(pg_->major())) {
      continue;
    }
    bool found = false;
    for (const auto& [family, type] : exposed) found = found || row.matches(family);
    EXPECT_TRUE(found) << row.name << " (" << row.collector << ") is missing from /metrics on "
                       << "PostgreSQL " << pg_->major();
  }
  // PostgreSQL 15 is what the peers' reference scrape ran against: every pg_settings_*
  // name postgres_exporter exported there is here too, with the same unit suffix.
  if (pg_->major() == 15) {
    std::ifstream peer(std::string(DBPULSE_SOURCE_DIR) +
                       "/tests/packaging/peers/postgres_exporter-metrics.tsv");
    ASSERT_TRUE(peer.good());
    std::string line;
    int settings = 0;
    while (std::getline(peer, line)) {
      const std::string name = line.substr(0, line.find('\t'));
      if (name.rfind("pg_settings_", 0) != 0) continue;
      ++settings;
      EXPECT_TRUE(exposed.count(name)) << name << " (postgres_exporter's) is not on /metrics";
    }
    EXPECT_GT(settings, 200);
  }
}

}  // namespace
}  // namespace dbpulse::testing
