// The indexes, locks, pgbouncer and replication collectors against a real PostgreSQL 15
// (and a real pgbouncer), each on a small chat database built by the test. The collectors
// run in-process through a PgSession as a role that has only pg_monitor, the least
// privilege the README documents.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/pg_session.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using collectors::BlockedSession;
using collectors::CollectContext;
using collectors::PgSession;
using collectors::PgSessionOptions;

// A login role with nothing but pg_monitor (cluster-wide; created once per server).
constexpr const char* kMonitorRole = "dbpulse_monitor_b";

void ensureMonitorRole(PgServer& pg) {
  pg.exec(std::string(R"SQL(
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ')SQL") +
          kMonitorRole + R"SQL(') THEN
    CREATE ROLE )SQL" + kMonitorRole +
          R"SQL( LOGIN;
    GRANT pg_monitor TO )SQL" + kMonitorRole +
          R"SQL(;
  END IF;
END $$)SQL");
}

// The chat schema the tests work on: users, conversations, messages.
void createChatSchema(PgServer& pg, const std::string& db) {
  pg.createDatabase(db);
  pg.exec(R"SQL(
CREATE TABLE IF NOT EXISTS users (
  id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (
  id bigint PRIMARY KEY, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS messages (
  id bigint PRIMARY KEY, conversation_id bigint NOT NULL REFERENCES conversations(id),
  sender_id bigint NOT NULL REFERENCES users(id), body text NOT NULL,
  sent_at timestamptz NOT NULL DEFAULT now());
INSERT INTO users SELECT g, 'user' || g, 'user' || g || '@example.com'
  FROM generate_series(1, 200) g ON CONFLICT DO NOTHING;
INSERT INTO conversations SELECT g, 'room ' || g FROM generate_series(1, 20) g
  ON CONFLICT DO NOTHING;
INSERT INTO messages SELECT g, 1 + g % 20, 1 + g % 200, 'hello ' || g,
       now() - make_interval(secs => g)
  FROM generate_series(1, 5000) g ON CONFLICT DO NOTHING;
ANALYZE;
)SQL",
          db);
}

PgSessionOptions monitorSession(PgServer& pg, const std::string& db) {
  PgSessionOptions o;
  o.dsn = pg.dsn(db, kMonitorRole);
  o.statement_timeout = 5s;
  o.lock_timeout = 1s;
  o.connect_timeout = 5s;
  return o;
}

CollectContext context() {
  CollectContext ctx;
  ctx.now = WallTime(std::chrono::system_clock::now());
  ctx.deadline = std::chrono::steady_clock::now() + 5s;
  return ctx;
}

std::optional<double> valueOf(const SampleBatch& batch, std::string_view name,
                              const Labels& labels = {}) {
  for (const Sample& s : batch.samples()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

// Runs a statement on its own connection in a background thread (a session that will
// block); get() rethrows what the statement threw.
class BackgroundStatement {
 public:
  BackgroundStatement(PgServer& pg, const std::string& db, std::string sql) {
    future_ = std::async(std::launch::async, [this, &pg, db, sql = std::move(sql)] {
      PgClient client = pg.connect(db);
      pid_ = client.backendPid();
      client.exec("SET statement_timeout = '20s'");  // never outlives a broken test
      client.exec(sql);
    });
  }
  ~BackgroundStatement() {
    if (future_.valid()) future_.wait();
  }
  int pid() const { return pid_.load(); }
  bool finished() { return future_.wait_for(0ms) == std::future_status::ready; }
  void get() { future_.get(); }

 private:
  std::atomic<int> pid_{0};
  std::future<void> future_;
};

class PgCollectorsBTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres()) GTEST_SKIP();
    pg_ = &sharedPostgres();
    ensureMonitorRole(*pg_);
  }
  PgServer* pg_ = nullptr;
};

// ---- locks ----

TEST_F(PgCollectorsBTest, LocksReportABlockedSessionWithItsBlocker) {
  const std::string db = "chat_locks";
  createChatSchema(*pg_, db);
  PgSession session(monitorSession(*pg_, db));
  collectors::LocksCollector collector(session, 20);

  PgClient holder = pg_->connect(db);
  holder.exec("BEGIN");
  holder.exec("UPDATE messages SET body = 'edited' WHERE id = 42");
  const int holder_pid = holder.backendPid();
  BackgroundStatement waiter(*pg_, db, "UPDATE messages SET body = 'mine' WHERE id = 42");

  SampleBatch out;
  std::optional<BlockedSession> seen;
  const bool found = pollUntil(
      [&] {
        out.clear();
        const Status s = collector.collect(context(), out);
        EXPECT_TRUE(s.ok()) << s.toString();
        for (const BlockedSession& b : collector.latestBlocked()) {
          if (waiter.pid() != 0 && b.pid == waiter.pid()) seen = b;
        }
        return seen.has_value() && !seen->blocking_pids.empty();
      },
      10s);
  ASSERT_TRUE(found) << "the waiting UPDATE was not reported as blocked";
  EXPECT_EQ(seen->blocking_pids, std::vector<int>{holder_pid});
  EXPECT_EQ(seen->datname, db);
  EXPECT_NE(seen->query.find("UPDATE messages SET body = 'mine'"), std::string::npos)
      << seen->query;
  EXPECT_GE(seen->wait_seconds, 0);
  EXPECT_EQ(seen->lock_mode, "sharelock");  // waits for the holder's transaction id
  EXPECT_GE(valueOf(out, "dbpulse_pg_lock_blocked_sessions").value_or(0), 1);
  EXPECT_GE(valueOf(out, "dbpulse_pg_lock_root_blockers").value_or(0), 1);
  EXPECT_GE(valueOf(out, "dbpulse_pg_lock_chain_max_depth").value_or(0), 1);
  EXPECT_GE(valueOf(out, "pg_locks_count", {{"datname", db}, {"mode", "rowexclusivelock"}})
                .value_or(0),
            2);  // the holder's and the waiter's table locks
  EXPECT_TRUE(valueOf(out, "pg_stat_database_deadlocks", {{"datname", db}}).has_value());

  holder.exec("ROLLBACK");
  EXPECT_NO_THROW(waiter.get());
  out.clear();
  ASSERT_TRUE(collector.collect(context(), out).ok());
  EXPECT_EQ(valueOf(out, "dbpulse_pg_lock_blocked_sessions"), 0);
  EXPECT_TRUE(collector.latestBlocked().empty());
}

TEST_F(PgCollectorsBTest, LocksCountDeadlocks) {
  const std::string db = "chat_deadlocks";
  createChatSchema(*pg_, db);
  PgSession session(monitorSession(*pg_, db));
  collectors::LocksCollector collector(session, 20);
  SampleBatch before;
  ASSERT_TRUE(collector.collect(context(), before).ok());
  const double deadlocks_before =
      valueOf(before, "pg_stat_database_deadlocks", {{"datname", db}}).value_or(-1);
  ASSERT_GE(deadlocks_before, 0);

  // Two sessions lock rows 1 and 2 in opposite orders: the server breaks the cycle.
  PgClient a = pg_->connect(db);
  a.exec("SET deadlock_timeout = '100ms'");
  a.exec("BEGIN");
  a.exec("UPDATE users SET name = 'a' WHERE id = 1");
  BackgroundStatement b(*pg_, db,
                        "SET deadlock_timeout = '100ms'; BEGIN; "
                        "UPDATE users SET name = 'b' WHERE id = 2; "
                        "UPDATE users SET name = 'b' WHERE id = 1; COMMIT");
  ASSERT_TRUE(pollUntil(
      [&] {
        return pg_->queryValue("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                               "'Lock' AND datname = '" + db + "'") == "1";
      },
      10s));
  bool a_failed = false;
  try {
    a.exec("UPDATE users SET name = 'a' WHERE id = 2");
  } catch (const HarnessError&) {
    a_failed = true;  // this session was chosen as the victim
  }
  a.exec("ROLLBACK");
  bool b_failed = false;
  try {
    b.get();
  } catch (const HarnessError&) {
    b_failed = true;
  }
  ASSERT_TRUE(a_failed || b_failed) << "no deadlock was detected";

  // Statistics reach pg_stat_database when the victim's backend flushes them (at most
  // about a second later).
  SampleBatch after;
  EXPECT_TRUE(pollUntil(
      [&] {
        after.clear();
        EXPECT_TRUE(collector.collect(context(), after).ok());
        return valueOf(after, "pg_stat_database_deadlocks", {{"datname", db}}).value_or(0) >
               deadlocks_before;
      },
      10s));
}

}  // namespace
}  // namespace dbpulse::testing
