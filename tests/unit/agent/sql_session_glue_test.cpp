// Maintenance and leader election over a FakeSqlSession: the code around their statements
// (busy check, outcome classification, the election round) without a server.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/cron.h"
#include "agent/leader_election.h"
#include "agent/maintenance.h"
#include "fakes/fake_clock.h"
#include "fakes/fake_sql_session.h"

namespace dbpulse {
namespace {

using collectors::PgRows;
using Row = std::vector<std::optional<std::string>>;

PgRows oneValue(const std::string& column, const std::string& v) {
  PgRows r;
  r.columns = {column};
  r.rows.push_back(Row{v});
  return r;
}

// One table that needs a VACUUM (5,000 dead of 6,000 tuples).
PgRows planRows() {
  PgRows r;
  r.columns = {"qualified", "name", "live", "dead", "modified"};
  r.rows.push_back(Row{"public.messages", "public.messages", "1000", "5000", "0"});
  return r;
}

class MaintenanceGlueTest : public ::testing::Test {
 protected:
  MaintenanceOptions options() {
    MaintenanceOptions o;
    o.enabled = false;  // only manual runs
    o.window = *CronSchedule::parse("0 2 * * *");
    o.session_factory = [this](const collectors::PgSessionOptions&) { return db.caller(); };
    return o;
  }

  // Starts a manual run and waits (bounded) until it is in the history; its tables.
  nlohmann::json runOnce(MaintenanceEngine& engine) {
    engine.start();
    auto id = engine.requestRun({}, false);
    EXPECT_TRUE(id.ok()) << id.status().toString();
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      const auto j = nlohmann::json::parse(engine.statusJson());
      if (!j["history"].empty()) return j["history"][0]["tables"];
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ADD_FAILURE() << "the run did not finish";
    return nlohmann::json::array();
  }

  fakes::FakeSqlSession db;
  fakes::FakeClock clock;
  SampleStore store{clock};
};

TEST_F(MaintenanceGlueTest, FailedBusyCheckSkipsTheTableAndSaysWhy) {
  db.answer("FROM pg_stat_user_tables", planRows());
  db.answer("FROM pg_stat_activity",
            Status(StatusCode::kDeadlineExceeded, "canceling statement due to statement timeout"));
  MaintenanceEngine engine(options(), store, clock, [] { return true; });
  const auto tables = runOnce(engine);
  engine.stop();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0]["result"], "skipped_busy");
  const std::string error = tables[0]["error"];
  EXPECT_NE(error.find("busy check failed"), std::string::npos) << error;
  EXPECT_NE(error.find("statement timeout"), std::string::npos) << error;
  EXPECT_EQ(db.count("VACUUM"), 0u);
}

TEST_F(MaintenanceGlueTest, ManualRunGivesUpOnABusyDatabaseAfterWindowDuration) {
  db.answer("FROM pg_stat_user_tables", planRows());
  db.answer("FROM pg_stat_activity", oneValue("count", "25"));  // > max_active_sessions (20)
  auto o = options();
  o.window_duration = Duration(0);
  MaintenanceEngine engine(o, store, clock, [] { return true; });
  const auto tables = runOnce(engine);
  engine.stop();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0]["result"], "skipped_busy");
  EXPECT_NE(std::string(tables[0]["error"]).find("still busy"), std::string::npos);
  EXPECT_EQ(db.count("VACUUM"), 0u);
}

TEST_F(MaintenanceGlueTest, SkipLockedIsRecognisedBySqlstateNotByText) {
  db.answer("FROM pg_stat_user_tables", planRows());
  db.answer("FROM pg_stat_activity", oneValue("count", "0"));
  // A server with lc_messages = 'fr_FR': only severity and SQLSTATE are not translated.
  db.notice("VACUUM", {"WARNING", "55P03",
                       "ignore le vacuum de « messages » --- verrou non "
                       "disponible"});
  MaintenanceEngine engine(options(), store, clock, [] { return true; });
  const auto tables = runOnce(engine);
  engine.stop();
  ASSERT_EQ(tables.size(), 1u);
  EXPECT_EQ(tables[0]["result"], "skipped_locked");
  EXPECT_EQ(db.count("VACUUM (ANALYZE, SKIP_LOCKED) public.messages"), 1u);
  // The table's statement_timeout is bound as a parameter, then the planning one restored.
  std::vector<std::string> timeouts;
  for (const auto& s : db.statements()) {
    if (s.sql.find("statement_timeout") == std::string::npos) continue;
    EXPECT_EQ(s.kind, "params") << s.sql;
    ASSERT_EQ(s.params.size(), 1u);
    timeouts.push_back(s.params[0].value_or(""));
  }
  EXPECT_EQ(timeouts, (std::vector<std::string>{"1800000", "5000"}));
}

class LeaderGlueTest : public ::testing::Test {
 protected:
  std::optional<double> published() {
    auto points = store.history("dbpulse_leader", {}, 0);
    if (points.empty()) return std::nullopt;
    return points.back().value;
  }

  std::shared_ptr<fakes::FakeSqlSession> db = std::make_shared<fakes::FakeSqlSession>();
  fakes::FakeClock clock;
  SampleStore store{clock};
};

TEST_F(LeaderGlueTest, RoundTakesTheLockWithTheKeyAsAParameter) {
  db->answer("pg_try_advisory_lock", oneValue("leader", "t"));
  LeaderElectorOptions o;
  o.shared_session = db;
  std::vector<std::pair<bool, bool>> rounds;
  LeaderElector e(o, store,
                  [&](bool leader, bool changed) { rounds.emplace_back(leader, changed); });
  e.round();
  EXPECT_TRUE(e.isLeader());
  EXPECT_EQ(published(), 1.0);
  ASSERT_EQ(db->statements().size(), 1u);
  EXPECT_EQ(db->statements()[0].kind, "params");
  EXPECT_EQ(db->statements()[0].params, (collectors::SqlParams{std::to_string(kLeaderLockKey)}));
  e.round();
  EXPECT_EQ(rounds, (std::vector<std::pair<bool, bool>>{{true, true}, {true, false}}));
}

TEST_F(LeaderGlueTest, AFailedRoundMakesAFollowerAtOnce) {
  db->answer("pg_try_advisory_lock",
             std::vector<Result<PgRows>>{oneValue("leader", "t"),
                                         Status(StatusCode::kUnavailable, "connection lost")});
  LeaderElectorOptions o;
  o.shared_session = db;
  LeaderElector e(o, store);
  e.round();
  ASSERT_TRUE(e.isLeader());
  e.round();
  EXPECT_FALSE(e.isLeader()) << "leadership is claimed only while PostgreSQL confirms it";
  EXPECT_EQ(published(), 0.0);
}

TEST_F(LeaderGlueTest, AnotherHolderMeansFollowing) {
  db->answer("pg_try_advisory_lock", oneValue("leader", "f"));
  LeaderElectorOptions o;
  o.shared_session = db;
  LeaderElector e(o, store);
  e.round();
  EXPECT_FALSE(e.isLeader());
  EXPECT_EQ(published(), 0.0);
  e.stop();
  EXPECT_EQ(db->disconnects(), 1) << "stop() closes the session, releasing any lock";
}

}  // namespace
}  // namespace dbpulse
