// The indexes, locks, pgbouncer, replication (and stats, for deadlocks) collectors against a real
// PostgreSQL (every major, tests/CMakeLists.txt) and a real pgbouncer, each on a small chat
// database built by the test. The collectors run in-process through a PgSession as a role that has
// only pg_monitor, the least privilege the README documents.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "collectors/clients/postgres/pg_session.h"
#include "collectors/postgres/indexes_collector.h"
#include "collectors/postgres/locks_collector.h"
#include "collectors/postgres/pgbouncer_collector.h"
#include "collectors/postgres/replication_collector.h"
#include "collectors/postgres/stats_collector.h"
#include "integration/harness/harness.h"
#include "integration/harness/pg_standby.h"
#include "integration/harness/pgbouncer_server.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using collectors::BlockedSession;
using collectors::CollectContext;
using collectors::IndexFinding;
using collectors::PgSession;
using collectors::PgSessionOptions;

// A login role with nothing but pg_monitor (cluster-wide; created once per server).
constexpr const char* kMonitorRole = "dbpulse_monitor_b";

void ensureMonitorRole(PgServer& pg) {
  pg.exec(std::string(R"SQL(
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ')SQL") +
          kMonitorRole + R"SQL(') THEN
    CREATE ROLE )SQL" +
          kMonitorRole +
          R"SQL( LOGIN;
    GRANT pg_monitor TO )SQL" +
          kMonitorRole +
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
  BackgroundStatement(PgServer& pg, const std::string& db, std::string sql)
      : BackgroundStatement(pg.dsn(db), std::move(sql)) {}
  BackgroundStatement(std::string dsn, std::string sql) {
    future_ = std::async(std::launch::async, [this, dsn = std::move(dsn), sql = std::move(sql)] {
      PgClient client(dsn);
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

// Collects until `waiter` is reported blocked by someone (the last batch in `out`); nullopt
// when that does not happen within 10 s.
std::optional<BlockedSession> pollBlocked(collectors::LocksCollector& collector,
                                          const BackgroundStatement& waiter, SampleBatch& out) {
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
      10s, 50ms);
  return found ? seen : std::nullopt;
}

class PgCollectorsBTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres()) return;
    pg_ = &sharedPostgres();
    ensureMonitorRole(*pg_);
  }
  PgServer* pg_ = nullptr;
};

// ---- indexes ----

std::optional<IndexFinding> findingFor(const std::vector<IndexFinding>& findings,
                                       const std::string& index) {
  for (const IndexFinding& f : findings) {
    if (f.index == index) return f;
  }
  return std::nullopt;
}

std::string describe(const std::vector<IndexFinding>& findings) {
  std::string out;
  for (const IndexFinding& f : findings)
    out += "\n  " + f.index + ": " + f.reason + " (" + f.detail + ")";
  return out.empty() ? " (none)" : out;
}

TEST_F(PgCollectorsBTest, IndexesDetectUnusedDuplicateAndInvalidIndexes) {
  const std::string db = "chat_indexes";
  createChatSchema(*pg_, db);
  pg_->exec(R"SQL(
DROP INDEX IF EXISTS messages_body_idx, messages_conv_idx, messages_conv_sent_idx,
                     users_email_uniq, messages_sender_idx;
CREATE INDEX messages_body_idx ON messages (body);                      -- never used
CREATE INDEX messages_conv_idx ON messages (conversation_id);           -- a prefix of:
CREATE INDEX messages_conv_sent_idx ON messages (conversation_id, sent_at);
CREATE INDEX messages_sender_idx ON messages (sender_id);               -- used below
INSERT INTO users VALUES (9001, 'twin', 'twin@example.com'), (9002, 'twin', 'twin@example.com')
  ON CONFLICT DO NOTHING;
ANALYZE;
)SQL",
            db);
  // A unique index built concurrently over duplicate data fails and stays behind, invalid.
  EXPECT_THROW(pg_->exec("CREATE UNIQUE INDEX CONCURRENTLY users_email_uniq ON users (email)", db),
               HarnessError);
  ASSERT_EQ(pg_->queryValue("SELECT indisvalid::text FROM pg_index WHERE indexrelid = "
                            "'users_email_uniq'::regclass",
                            db),
            "false");
  pg_->exec("SET enable_seqscan = off; SELECT count(*) FROM messages WHERE sender_id = 7", db);

  PgSession session(monitorSession(*pg_, db));
  collectors::IndexesCollector collector(session, {50, 1s});
  SampleBatch out;
  std::vector<IndexFinding> findings;
  // The statistics window must first reach the 1 s minimum age (the server may be young),
  // and the scan above must reach the statistics (flushed within about a second).
  const bool ready = pollUntil(
      [&] {
        out.clear();
        const Status s = collector.collect(context(), out);
        EXPECT_TRUE(s.ok()) << s.toString();
        findings = collector.latestFindings();
        return findingFor(findings, "messages_body_idx").has_value() &&
               !findingFor(findings, "messages_sender_idx").has_value();
      },
      15s);
  ASSERT_TRUE(ready) << "findings:" << describe(findings);

  const auto unused = findingFor(findings, "messages_body_idx");
  EXPECT_EQ(unused->reason, "unused");
  EXPECT_EQ(unused->table, "messages");
  EXPECT_EQ(unused->schemaname, "public");
  EXPECT_EQ(unused->statement, "DROP INDEX CONCURRENTLY public.messages_body_idx;");
  EXPECT_GT(unused->size_bytes, 0);

  const auto duplicate = findingFor(findings, "messages_conv_idx");
  ASSERT_TRUE(duplicate) << describe(findings);
  EXPECT_EQ(duplicate->reason, "duplicate");
  EXPECT_EQ(duplicate->detail, "covered by public.messages_conv_sent_idx");

  const auto invalid = findingFor(findings, "users_email_uniq");
  ASSERT_TRUE(invalid) << describe(findings);
  EXPECT_EQ(invalid->reason, "invalid");
  EXPECT_EQ(invalid->table, "users");

  // Constraint indexes are never suggested, however unused.
  EXPECT_FALSE(findingFor(findings, "messages_pkey")) << describe(findings);
  EXPECT_FALSE(findingFor(findings, "conversations_pkey")) << describe(findings);

  const Labels chat{{"datname", db}};
  EXPECT_EQ(valueOf(out, "dbpulse_pg_indexes_invalid", chat), 1);
  EXPECT_EQ(valueOf(out, "dbpulse_pg_indexes_duplicate", chat), 1);
  EXPECT_GE(valueOf(out, "dbpulse_pg_indexes_unused", chat).value_or(0), 1);
  EXPECT_EQ(valueOf(out, "dbpulse_pg_indexes", chat), 8);  // 3 pkeys + 5 created
  EXPECT_GT(valueOf(out, "pg_stat_user_indexes_idx_scan",
                    {{"datname", db},
                     {"schemaname", "public"},
                     {"relname", "messages"},
                     {"indexrelname", "messages_sender_idx"}})
                .value_or(0),
            0);
  // Every table is among the top 50 by rows read sequentially.
  EXPECT_TRUE(valueOf(out, "pg_stat_user_tables_seq_tup_read",
                      {{"datname", db}, {"schemaname", "public"}, {"relname", "messages"}})
                  .has_value());

  // The suggested statements run as given and the findings go away.
  for (const auto& f : {*unused, *duplicate, *invalid}) pg_->exec(f.statement, db);
  out.clear();
  ASSERT_TRUE(collector.collect(context(), out).ok());
  findings = collector.latestFindings();
  EXPECT_FALSE(findingFor(findings, "messages_body_idx")) << describe(findings);
  EXPECT_FALSE(findingFor(findings, "messages_conv_idx")) << describe(findings);
  EXPECT_FALSE(findingFor(findings, "users_email_uniq")) << describe(findings);
  EXPECT_EQ(valueOf(out, "dbpulse_pg_indexes_invalid", chat), 0);
}

// PG 15 added unique indexes whose NULLs do not differ (pg_index.indnullsnotdistinct): such
// an index guarantees more than a plain unique one on the same column, so neither is the
// other's duplicate; two plain ones are. Before 15 the collector reads no such column.
TEST_F(PgCollectorsBTest, IndexesNullsNotDistinctUniqueIsNoDuplicateOfAPlainOne) {
  const std::string db = "chat_indexes_nnd";
  createChatSchema(*pg_, db);
  pg_->exec(
      "DROP INDEX IF EXISTS users_email_a, users_email_b, users_name_a, users_name_b; "
      "CREATE UNIQUE INDEX users_email_a ON users (email); "
      "CREATE UNIQUE INDEX users_email_b ON users (email)",
      db);
  const bool nnd = pg_->major() >= 15;
  if (nnd) {
    pg_->exec(
        "CREATE UNIQUE INDEX users_name_a ON users (name); "
        "CREATE UNIQUE INDEX users_name_b ON users (name) NULLS NOT DISTINCT",
        db);
  }
  PgSession session(monitorSession(*pg_, db));
  collectors::IndexesCollector collector(session, {50, 1s});
  std::vector<IndexFinding> findings;
  const bool ready = pollUntil(
      [&] {
        SampleBatch out;
        const Status s = collector.collect(context(), out);
        EXPECT_TRUE(s.ok()) << "PostgreSQL " << pg_->major() << ": " << s.toString();
        findings = collector.latestFindings();
        return findingFor(findings, "users_email_b").has_value() ||
               findingFor(findings, "users_email_a").has_value();
      },
      15s);
  ASSERT_TRUE(ready) << "the plain twin was never reported:" << describe(findings);
  if (!nnd) return;
  for (const char* index : {"users_name_a", "users_name_b"}) {
    const auto f = findingFor(findings, index);
    EXPECT_TRUE(!f || f->reason != "duplicate") << index << ": " << describe(findings);
  }
}

TEST_F(PgCollectorsBTest, IndexesCreatedWhileWatchedAreUnusedOnlyAfterTheMinimumAge) {
  const std::string db = "chat_index_age";
  createChatSchema(*pg_, db);
  pg_->exec("DROP INDEX IF EXISTS messages_late_idx", db);
  PgSession session(monitorSession(*pg_, db));
  collectors::IndexesCollector collector(session, {50, 2s});
  SampleBatch out;
  ASSERT_TRUE(collector.collect(context(), out).ok());  // the baseline: no such index yet

  pg_->exec("CREATE INDEX messages_late_idx ON messages (sent_at)", db);
  const auto created = std::chrono::steady_clock::now();
  // The statistics window may be long, but this index was seen appearing just now.
  out.clear();
  ASSERT_TRUE(collector.collect(context(), out).ok());
  EXPECT_FALSE(findingFor(collector.latestFindings(), "messages_late_idx"));
  EXPECT_TRUE(pollUntil(
      [&] {
        out.clear();
        EXPECT_TRUE(collector.collect(context(), out).ok());
        return findingFor(collector.latestFindings(), "messages_late_idx").has_value();
      },
      10s));
  EXPECT_GE(std::chrono::steady_clock::now() - created, 2s);
}

TEST_F(PgCollectorsBTest, IndexesDefaultMinimumAgeReportsNothingOnAYoungServer) {
  const std::string db = "chat_index_default";
  createChatSchema(*pg_, db);
  pg_->exec("CREATE INDEX IF NOT EXISTS messages_body_idx ON messages (body)", db);
  PgSession session(monitorSession(*pg_, db));
  collectors::IndexesCollector collector(session, {});
  SampleBatch out;
  ASSERT_TRUE(collector.collect(context(), out).ok());
  // Statistics a few seconds old say nothing about an index being unused for 7 days.
  EXPECT_EQ(valueOf(out, "dbpulse_pg_indexes_unused", {{"datname", db}}), 0)
      << describe(collector.latestFindings());
  EXPECT_LT(valueOf(out, "dbpulse_pg_index_stats_window_seconds", {{"datname", db}}).value_or(1e9),
            7 * 86400);
}

// ---- replication ----

TEST_F(PgCollectorsBTest, ReplicationOnAStandaloneServerReportsNothing) {
  PgSession session(monitorSession(*pg_, "postgres"));
  collectors::ReplicationCollector collector(session);
  SampleBatch out;
  const Status s = collector.collect(context(), out);
  EXPECT_TRUE(s.ok()) << s.toString();
  EXPECT_TRUE(out.empty()) << out.samples().size() << " samples, first: "
                           << (out.empty() ? "" : out.samples().front().name);
}

TEST_F(PgCollectorsBTest, ReplicationSlotRetentionGrowsAsWalIsWritten) {
  const std::string db = "chat_replication";
  createChatSchema(*pg_, db);
  const std::string slot = "dbpulse_test_slot_b";
  pg_->exec(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
      "WHERE slot_name = '" +
      slot + "'");
  // A physical slot that reserves WAL now, with no consumer: what a dead replica leaves.
  pg_->exec("SELECT pg_create_physical_replication_slot('" + slot + "', true)");
  struct DropSlot {
    PgServer* pg;
    std::string slot;
    ~DropSlot() {
      try {
        pg->exec("SELECT pg_drop_replication_slot('" + slot + "')");
      } catch (const std::exception&) {
      }
    }
  } drop_slot{pg_, slot};

  PgSession session(monitorSession(*pg_, db));
  collectors::ReplicationCollector collector(session);
  const Labels labels{{"slot_name", slot}, {"slot_type", "physical"}};
  SampleBatch before;
  ASSERT_TRUE(collector.collect(context(), before).ok());
  const std::optional<double> retained_before =
      valueOf(before, "dbpulse_pg_replication_slot_retained_bytes", labels);
  ASSERT_TRUE(retained_before.has_value());
  EXPECT_GE(*retained_before, 0);
  EXPECT_EQ(valueOf(before, "dbpulse_pg_replication_slot_active", labels), 0);
  // pg_replication_slots.inactive_since is PG 17+: the series exists from 17 on only.
  EXPECT_EQ(valueOf(before, "dbpulse_pg_replication_slot_inactive_seconds", labels).has_value(),
            pg_->major() >= 17)
      << "PostgreSQL " << pg_->major();
  EXPECT_EQ(valueOf(before, "dbpulse_pg_replication_slot_lost", labels), 0);
  EXPECT_EQ(valueOf(before, "dbpulse_pg_replication_is_standby"), 0);
  EXPECT_EQ(valueOf(before, "dbpulse_pg_replication_replicas"), 0);

  pg_->exec(
      "INSERT INTO messages SELECT 100000 + g, 1, 1, repeat('x', 200), now() "
      "FROM generate_series(1, 2000) g",
      db);
  // The harness runs with synchronous_commit=off, so pg_current_wal_lsn() (the write
  // position) reaches the inserted rows only once the WAL writer has written them.
  double retained_after = 0;
  const bool grew = pollUntil(
      [&] {
        SampleBatch after;
        if (!collector.collect(context(), after).ok()) return false;
        retained_after =
            valueOf(after, "dbpulse_pg_replication_slot_retained_bytes", labels).value_or(0);
        return retained_after > *retained_before + 400'000;  // 2,000 rows of 200+ bytes
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(grew) << "before " << *retained_before << ", after " << retained_after;
}

TEST_F(PgCollectorsBTest, ReplicationReportsAStreamingStandbyFromBothSides) {
  PgServer primary;  // its own, so no other test sees a replica on the shared server
  // From here: initdb alone takes seconds on a busy machine, whatever the major.
  const auto started = std::chrono::steady_clock::now();
  ensureMonitorRole(primary);
  primary.exec("CREATE ROLE dbpulse_plain_b LOGIN");  // no pg_monitor
  primary.exec("SELECT pg_create_physical_replication_slot('standby_b')");
  PgStandby standby(primary, {.application_name = "standby_b", .slot_name = "standby_b"});

  PgSessionOptions on_primary;
  on_primary.dsn = primary.dsn("postgres", kMonitorRole);
  PgSession primary_session(on_primary);
  collectors::ReplicationCollector primary_collector(primary_session);
  const Labels replica{{"application_name", "standby_b"}, {"client_addr", "127.0.0.1"}};
  const Labels slot{{"slot_name", "standby_b"}, {"slot_type", "physical"}};
  SampleBatch out;
  ASSERT_TRUE(pollUntil(
      [&] {
        out.clear();
        const Status s = primary_collector.collect(context(), out);
        EXPECT_TRUE(s.ok()) << s.toString();
        // replay_lsn stays NULL until the standby's first status report.
        return valueOf(out, "dbpulse_pg_replication_replica_streaming", replica) == 1.0 &&
               valueOf(out, "dbpulse_pg_replication_slot_active", slot) == 1.0 &&
               valueOf(out, "dbpulse_pg_replication_replay_lag_bytes", replica).has_value();
      },
      10s))
      << "the standby never showed up as streaming on its slot";
  EXPECT_EQ(valueOf(out, "dbpulse_pg_replication_replicas"), 1);
  EXPECT_EQ(valueOf(out, "dbpulse_pg_replication_is_standby"), 0);
  EXPECT_GE(valueOf(out, "dbpulse_pg_replication_replay_lag_seconds", replica).value_or(-1), 0);
  EXPECT_GE(valueOf(out, "dbpulse_pg_replication_replay_lag_bytes", replica).value_or(-1), 0);

  // Writes on the primary reach the standby; its own collector reports its replay lag.
  primary.exec("CREATE TABLE replicated AS SELECT g FROM generate_series(1, 1000) g");
  PgSessionOptions on_standby;
  on_standby.dsn = standby.dsn("postgres", kMonitorRole);
  PgSession standby_session(on_standby);
  collectors::ReplicationCollector standby_collector(standby_session);
  SampleBatch standby_out;
  ASSERT_TRUE(pollUntil(
      [&] {
        standby_out.clear();
        const Status s = standby_collector.collect(context(), standby_out);
        EXPECT_TRUE(s.ok()) << s.toString();
        return valueOf(standby_out, "dbpulse_pg_replication_standby_replay_lag_seconds")
            .has_value();
      },
      10s));
  EXPECT_EQ(valueOf(standby_out, "dbpulse_pg_replication_is_standby"), 1);
  EXPECT_GE(valueOf(standby_out, "dbpulse_pg_replication_standby_replay_lag_seconds").value_or(-1),
            0);
  EXPECT_GE(
      valueOf(standby_out, "dbpulse_pg_replication_standby_receive_replay_lag_bytes").value_or(-1),
      0);
  EXPECT_FALSE(valueOf(standby_out, "dbpulse_pg_replication_replicas"));

  // A role without pg_monitor cannot see the replica's positions: switched off, named.
  PgSessionOptions plain;
  plain.dsn = primary.dsn("postgres", "dbpulse_plain_b");
  PgSession plain_session(plain);
  collectors::ReplicationCollector plain_collector(plain_session);
  SampleBatch plain_out;
  const Status denied = plain_collector.collect(context(), plain_out);
  EXPECT_EQ(denied.code(), StatusCode::kFailedPrecondition) << denied.toString();
  EXPECT_NE(denied.message().find("privilege_missing"), std::string::npos) << denied.message();
  EXPECT_NE(denied.message().find("pg_read_all_stats"), std::string::npos) << denied.message();

  EXPECT_LT(std::chrono::steady_clock::now() - started, 15s);
}

// ---- pgbouncer ----

TEST_F(PgCollectorsBTest, PgbouncerReportsAClientWaitingForTheOnlyServerConnection) {
  if (!requireBinary(kPgbouncerBinary, "pgbouncer")) return;
  const std::string db = "chat_pool";
  createChatSchema(*pg_, db);
  PgbouncerOptions options;
  options.default_pool_size = 1;
  options.stats_users = {kMonitorRole};
  PgbouncerServer bouncer(*pg_, options);

  PgSessionOptions console;
  console.dsn = bouncer.dsn("pgbouncer", kMonitorRole);
  console.admin_console = true;
  PgSession session(console);
  collectors::PgbouncerCollector collector(session);

  // Session pooling with one server connection: the first client holds it, the second waits.
  auto first = std::make_unique<PgClient>(bouncer.dsn(db));
  first->exec("SELECT count(*) FROM messages");
  BackgroundStatement second(bouncer.dsn(db), "SELECT count(*) FROM users");

  const Labels pool{{"database", db}, {"user", "postgres"}};
  SampleBatch out;
  ASSERT_TRUE(pollUntil(
      [&] {
        out.clear();
        const Status s = collector.collect(context(), out);
        EXPECT_TRUE(s.ok()) << s.toString();
        return valueOf(out, "pgbouncer_pools_client_waiting_connections", pool) == 1.0 &&
               valueOf(out, "pgbouncer_pools_client_maxwait_seconds", pool).value_or(0) > 0;
      },
      10s))
      << "no waiting client seen; log:\n"
      << bouncer.logTail();
  EXPECT_EQ(valueOf(out, "pgbouncer_up"), 1);
  EXPECT_EQ(valueOf(out, "pgbouncer_pools_client_active_connections", pool), 1);
  EXPECT_EQ(valueOf(out, "pgbouncer_pools_server_active_connections", pool), 1);
  EXPECT_EQ(valueOf(out, "pgbouncer_pools_server_idle_connections", pool), 0);
  EXPECT_GE(valueOf(out, "pgbouncer_stats_queries_pooled_total", {{"database", db}}).value_or(0),
            1);
  EXPECT_TRUE(valueOf(out, "pgbouncer_stats_client_wait_seconds_total", {{"database", db}}));
  EXPECT_FALSE(second.finished());

  first.reset();  // the server connection goes to the waiting client
  EXPECT_NO_THROW(second.get());
  ASSERT_TRUE(pollUntil(
      [&] {
        out.clear();
        EXPECT_TRUE(collector.collect(context(), out).ok());
        return valueOf(out, "pgbouncer_pools_client_waiting_connections", pool).value_or(1) == 0;
      },
      10s));
  EXPECT_GT(
      valueOf(out, "pgbouncer_stats_client_wait_seconds_total", {{"database", db}}).value_or(0), 0);
}

TEST_F(PgCollectorsBTest, PgbouncerConsoleRefusalNamesTheSetting) {
  if (!requireBinary(kPgbouncerBinary, "pgbouncer")) return;
  PgbouncerOptions options;
  options.users = {"postgres", "outsider_b"};  // may log in, but not to the console
  PgbouncerServer bouncer(*pg_, options);
  PgSessionOptions console;
  console.dsn = bouncer.dsn("pgbouncer", "outsider_b");
  console.admin_console = true;
  PgSession session(console);
  collectors::PgbouncerCollector collector(session);
  SampleBatch out;
  const Status s = collector.collect(context(), out);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_EQ(s.message().rfind("privilege_missing:", 0), 0u) << s.message();
  EXPECT_NE(s.message().find("stats_users"), std::string::npos) << s.message();
  EXPECT_EQ(valueOf(out, "pgbouncer_up"), 0);
}

TEST_F(PgCollectorsBTest, PgbouncerDownIsUnavailableWithUpZero) {
  PgSessionOptions console;
  console.dsn = "host=127.0.0.1 port=" + std::to_string(freeLoopbackPort()) +
                " dbname=pgbouncer user=postgres";
  console.admin_console = true;
  PgSession session(console);
  collectors::PgbouncerCollector collector(session);
  SampleBatch out;
  const Status s = collector.collect(context(), out);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.toString();
  EXPECT_EQ(valueOf(out, "pgbouncer_up"), 0);
}

TEST_F(PgCollectorsBTest, PgbouncerThatStopsAnsweringTimesOutAndRecovers) {
  if (!requireBinary(kPgbouncerBinary, "pgbouncer")) return;
  PgbouncerServer bouncer(*pg_);
  PgSessionOptions console;
  console.dsn = bouncer.dsn("pgbouncer", "postgres");
  console.admin_console = true;
  console.statement_timeout = 500ms;  // the console's answer is awaited at most this long
  PgSession session(console);
  collectors::PgbouncerCollector collector(session);
  SampleBatch out;
  ASSERT_TRUE(collector.collect(context(), out).ok());

  ASSERT_TRUE(bouncer.signal(SIGSTOP));  // connected, then silent: a stuck pooler
  struct Resume {
    PgbouncerServer& b;
    ~Resume() { b.signal(SIGCONT); }
  } resume{bouncer};
  out.clear();
  const auto asked = std::chrono::steady_clock::now();
  const Status stuck = collector.collect(context(), out);
  EXPECT_EQ(stuck.code(), StatusCode::kDeadlineExceeded) << stuck.toString();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 3s);
  EXPECT_EQ(valueOf(out, "pgbouncer_up"), 0);

  ASSERT_TRUE(bouncer.signal(SIGCONT));
  EXPECT_TRUE(pollUntil(
      [&] {
        out.clear();
        return collector.collect(context(), out).ok() && valueOf(out, "pgbouncer_up") == 1.0;
      },
      10s));
}

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
  // Sleeps first: pg_locks.waitstart (PG 14+) times the wait from when the lock wait began,
  // before 14 the collector times it from the start of the query string, 2 s earlier.
  BackgroundStatement waiter(*pg_, db,
                             "SELECT pg_sleep(2); UPDATE messages SET body = 'mine' WHERE id = 42");

  SampleBatch out;
  const std::optional<BlockedSession> seen = pollBlocked(collector, waiter, out);
  ASSERT_TRUE(seen) << "the waiting UPDATE was not reported as blocked";
  EXPECT_EQ(seen->blocking_pids, std::vector<int>{holder_pid});
  EXPECT_EQ(seen->datname, db);
  EXPECT_NE(seen->query.find("UPDATE messages SET body = 'mine'"), std::string::npos)
      << seen->query;
  if (pg_->major() >= 14) {
    EXPECT_GE(seen->wait_seconds, 0);
    EXPECT_LT(seen->wait_seconds, 1.5) << "timed from pg_locks.waitstart";
  } else {
    EXPECT_GE(seen->wait_seconds, 1.9) << "timed from query_start (no waitstart before 14)";
  }
  EXPECT_EQ(seen->lock_mode, "sharelock");  // waits for the holder's transaction id
  EXPECT_GE(valueOf(out, "dbpulse_pg_lock_blocked_sessions").value_or(0), 1);
  EXPECT_GE(valueOf(out, "dbpulse_pg_lock_root_blockers").value_or(0), 1);
  EXPECT_GE(valueOf(out, "dbpulse_pg_lock_chain_max_depth").value_or(0), 1);
  EXPECT_GE(
      valueOf(out, "pg_locks_count", {{"datname", db}, {"mode", "rowexclusivelock"}}).value_or(0),
      2);  // the holder's and the waiter's table locks

  holder.exec("ROLLBACK");
  EXPECT_NO_THROW(waiter.get());
  out.clear();
  ASSERT_TRUE(collector.collect(context(), out).ok());
  EXPECT_EQ(valueOf(out, "dbpulse_pg_lock_blocked_sessions"), 0);
  EXPECT_TRUE(collector.latestBlocked().empty());
}

// pg_stat_database_deadlocks is the stats collector's (postgres_exporter's database
// collector), read here as the pg_monitor-only role.
TEST_F(PgCollectorsBTest, StatsCountDeadlocks) {
  const std::string db = "chat_deadlocks";
  createChatSchema(*pg_, db);
  PgSession session(monitorSession(*pg_, db));
  collectors::StatsCollector collector(session, 20);
  const Labels this_db{
      {"datid",
       pg_->queryValue("SELECT oid::text FROM pg_database WHERE datname = '" + db + "'").value()},
      {"datname", db}};
  SampleBatch before;
  ASSERT_TRUE(collector.collect(context(), before).ok());
  const double deadlocks_before =
      valueOf(before, "pg_stat_database_deadlocks", this_db).value_or(-1);
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
        return pg_->queryValue(
                   "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = "
                   "'Lock' AND datname = '" +
                   db + "'") == "1";
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
        return valueOf(after, "pg_stat_database_deadlocks", this_db).value_or(0) > deadlocks_before;
      },
      10s));
}

// ---- the real agent ----

// The dbpulse binary with these four collectors against a chat database that has an
// invalid index, a blocked session, a replication slot and a pgbouncer with a waiting
// client, as a role with only pg_monitor; the scrape must pass `promtool check metrics`.
TEST_F(PgCollectorsBTest, AgentExportsTheseCollectorsAndPromtoolAcceptsTheScrape) {
  if (!requireBinary(kPgbouncerBinary, "pgbouncer") || !requirePromtool()) return;
  const std::string db = "chat_agent_b";
  createChatSchema(*pg_, db);
  pg_->exec("DROP INDEX IF EXISTS users_email_uniq", db);
  pg_->exec(
      "INSERT INTO users VALUES (9001, 'twin', 'twin@example.com'), "
      "(9002, 'twin', 'twin@example.com') ON CONFLICT DO NOTHING",
      db);
  EXPECT_THROW(pg_->exec("CREATE UNIQUE INDEX CONCURRENTLY users_email_uniq ON users (email)", db),
               HarnessError);
  const std::string slot = "dbpulse_agent_slot_b";
  pg_->exec(
      "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
      "WHERE slot_name = '" +
      slot + "'");
  pg_->exec("SELECT pg_create_physical_replication_slot('" + slot + "', true)");
  struct DropSlot {
    PgServer* pg;
    std::string slot;
    ~DropSlot() {
      try {
        pg->exec("SELECT pg_drop_replication_slot('" + slot + "')");
      } catch (const std::exception&) {
      }
    }
  } drop_slot{pg_, slot};

  PgClient holder = pg_->connect(db);
  holder.exec("BEGIN");
  holder.exec("UPDATE messages SET body = 'edited' WHERE id = 7");
  BackgroundStatement waiter(*pg_, db, "UPDATE messages SET body = 'mine' WHERE id = 7");

  PgbouncerOptions pool_options;
  pool_options.stats_users = {kMonitorRole};
  PgbouncerServer bouncer(*pg_, pool_options);
  auto pooled = std::make_unique<PgClient>(bouncer.dsn(db));
  pooled->exec("SELECT 1");
  BackgroundStatement queued(bouncer.dsn(db), "SELECT 2");

  DbpulseProcess agent;
  std::string toml = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                     agent.stateDir().string() +
                     "\"\nlog_format = \"text\"\n\n[postgres]\ndsn = \"" +
                     pg_->dsn(db, kMonitorRole) + "\"\n\n[pgbouncer]\ndsn = \"" +
                     bouncer.dsn("pgbouncer", kMonitorRole) + "\"\n";
  for (const char* name : {"indexes", "locks", "replication", "pgbouncer"}) {
    toml += std::string("\n[collectors.") + name +
            "]\nenabled = true\ninterval = \"500ms\"\ntimeout = \"400ms\"\n";
    if (std::string(name) == "indexes") toml += "threshold = \"1s\"\n";
  }
  for (const char* name : {"statements", "cache", "stats", "tables", "size"}) {
    toml += std::string("\n[collectors.") + name + "]\nenabled = false\n";
  }
  agent.start(toml);
  ASSERT_TRUE(agent.waitHealthy(15s));

  const LabelMap chat{{"datname", db}};
  std::string scrape;
  ASSERT_TRUE(agent.waitForMetrics(
      [&](const std::string& text) {
        for (const char* c : {"indexes", "locks", "replication", "pgbouncer"}) {
          if (sampleValue(text, "dbpulse_collector_success", {{"collector", c}}) != 1.0) {
            return false;
          }
        }
        return sampleValue(text, "dbpulse_pg_indexes_invalid", chat) == 1.0 &&
               sampleValue(text, "dbpulse_pg_lock_blocked_sessions").value_or(0) >= 1 &&
               sampleValue(text, "pg_locks_count", {{"datname", db}, {"mode", "rowexclusivelock"}})
                       .value_or(0) >= 1 &&
               sampleValue(text, "dbpulse_pg_replication_slot_retained_bytes",
                           {{"slot_name", slot}}) &&
               sampleValue(text, "pgbouncer_up") == 1.0 &&
               sampleValue(text, "pgbouncer_pools_client_waiting_connections",
                           {{"database", db}}) == 1.0;
      },
      20s, "the four collectors' series", &scrape));

  // The peers' names break some of promtool's naming rules (counters without _total):
  // dashboards need them as they are; every other finding fails.
  const auto lint = lintProblemsBesidesPeerNames(scrape);
  ASSERT_TRUE(lint.has_value()) << "promtool check metrics did not finish";
  EXPECT_EQ(*lint, "") << "promtool check metrics found problems:\n"
                       << *lint << "\n--- scrape ---\n"
                       << scrape;

  holder.exec("ROLLBACK");
  pooled.reset();
  EXPECT_NO_THROW(waiter.get());
  EXPECT_NO_THROW(queued.get());
}

}  // namespace
}  // namespace dbpulse::testing
