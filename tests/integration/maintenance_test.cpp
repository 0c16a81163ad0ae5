// Guarded maintenance on a real PostgreSQL 15, through the real binary: a manual optimize
// vacuums a table full of dead tuples, skips a table someone holds locked (SKIP_LOCKED,
// no wait), records everything (admin API, metrics, history file across a restart); a dry
// run touches nothing; the window triggers a run by itself; a follower refuses.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr auto kWait = 20s;

class MaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requirePostgres()) return;
    pg_ = &sharedPostgres();
    pg_->createDatabase(kDb);
    pg_->exec(
        "DROP TABLE IF EXISTS messages, rooms; "
        "CREATE TABLE messages (id bigserial PRIMARY KEY, body text NOT NULL); "
        "INSERT INTO messages (body) SELECT 'm' || g FROM generate_series(1, 20000) g; "
        "CREATE TABLE rooms (id int PRIMARY KEY, name text); "
        "INSERT INTO rooms SELECT g, 'r' || g FROM generate_series(1, 100) g; "
        "DELETE FROM messages WHERE id % 2 = 0",
        kDb);
    // The statistics reach pg_stat_user_tables shortly after the transaction.
    ASSERT_TRUE(pollUntil([&] { return deadTuples("messages") >= 10000; }, kWait));
  }

  double deadTuples(const std::string& table) {
    return std::stod(
        pg_->queryValue(
               "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = '" + table + "'", kDb)
            .value_or("-1"));
  }
  std::string lastVacuum(const std::string& table) {
    return pg_
        ->queryValue(
            "SELECT coalesce(last_vacuum::text, 'never') FROM pg_stat_user_tables WHERE "
            "relname = '" +
                table + "'",
            kDb)
        .value_or("?");
  }

  std::string config(const DbpulseProcess& agent, const std::string& maintenance,
                     const std::string& user = "postgres") const {
    return "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
           agent.stateDir().string() + "\"\nlog_format = \"text\"\n[postgres]\ndsn = \"" +
           pg_->dsn(kDb, user) + "\"\n[maintenance]\n" + maintenance +
           "[collectors.redis]\nenabled = false\n[collectors.statements]\nenabled = false\n"
           "[collectors.indexes]\nenabled = false\n[collectors.size]\nenabled = false\n";
  }

  // The finished run with this id from GET /admin/maintenance.
  std::optional<json> finishedRun(const DbpulseProcess& agent, const std::string& id) {
    HttpResponse r = agent.get("/admin/maintenance");
    if (r.status != 200) return std::nullopt;
    const json body = json::parse(r.body, nullptr, false);
    if (body.is_discarded()) return std::nullopt;
    for (const auto& run : body["history"]) {
      if (run["id"] == id) return run;
    }
    return std::nullopt;
  }

  json optimize(const DbpulseProcess& agent, const json& request, int expect = 202) {
    HttpResponse r = httpPost(agent.baseUrl() + "/admin/database/optimize", request.dump());
    EXPECT_EQ(r.status, expect) << request.dump() << " -> " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  static constexpr const char* kDb = "maint";
  PgServer* pg_ = nullptr;
};

TEST_F(MaintenanceTest, OptimizeVacuumsSkipsLockedRecordsAndDryRunTouchesNothing) {
  DbpulseProcess agent;
  agent.start(config(agent, "window = \"0 3 1 1 *\"\nwindow_duration = \"1m\"\n"));
  ASSERT_TRUE(agent.waitHealthy(kWait));

  // Dry run first: planned and recorded, nothing executed.
  json accepted = optimize(agent, {{"tables", {"messages"}}, {"dry_run", true}});
  std::optional<json> run;
  ASSERT_TRUE(
      pollUntil([&] { return (run = finishedRun(agent, accepted["run_id"])).has_value(); }, kWait));
  ASSERT_EQ((*run)["tables"].size(), 1u) << run->dump(2);
  EXPECT_EQ((*run)["tables"][0]["result"], "dry_run");
  EXPECT_EQ(lastVacuum("messages"), "never");

  // A real run of the table with the dead tuples.
  accepted = optimize(agent, {{"tables", {"public.messages"}}});
  ASSERT_TRUE(
      pollUntil([&] { return (run = finishedRun(agent, accepted["run_id"])).has_value(); }, kWait));
  ASSERT_EQ((*run)["tables"].size(), 1u) << run->dump(2);
  EXPECT_EQ((*run)["tables"][0]["statement"], "VACUUM (ANALYZE, SKIP_LOCKED) public.messages");
  EXPECT_EQ((*run)["tables"][0]["result"], "ok") << run->dump(2);
  EXPECT_GE((*run)["tables"][0]["dead_tuples"].get<double>(), 10000);
  EXPECT_TRUE(pollUntil([&] { return lastVacuum("messages") != "never"; }, kWait));
  EXPECT_TRUE(pollUntil([&] { return deadTuples("messages") == 0; }, kWait));
  // Short-lived: no maintenance session stays open, idle, after the run.
  EXPECT_TRUE(pollUntil(
      [&] {
        return pg_->queryValue(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                   "'dbpulse-maintenance'",
                   kDb) == "0";
      },
      kWait));

  // Someone holds rooms locked: skipped at once, not waited for.
  PgClient holder(pg_->dsn(kDb));
  holder.exec("BEGIN");
  holder.exec("LOCK TABLE rooms IN ACCESS EXCLUSIVE MODE");
  const auto t0 = std::chrono::steady_clock::now();
  accepted = optimize(agent, {{"tables", {"rooms"}}});
  ASSERT_TRUE(
      pollUntil([&] { return (run = finishedRun(agent, accepted["run_id"])).has_value(); }, kWait));
  EXPECT_EQ((*run)["tables"][0]["result"], "skipped_locked") << run->dump(2);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s) << "SKIP_LOCKED must not wait for the lock";
  holder.exec("ROLLBACK");

  // Bad requests.
  json err = optimize(agent, {{"tables", {"no_such_table"}}}, 400);
  EXPECT_EQ(err["code"], "unknown_tables");
  EXPECT_NE(err["error"].get<std::string>().find("public.no_such_table"), std::string::npos);
  EXPECT_EQ(optimize(agent, {{"tables", "messages"}}, 400)["code"], "invalid_request");
  EXPECT_EQ(optimize(agent, {{"full", true}}, 400)["code"], "invalid_request");

  const std::string text = agent.metrics();
  EXPECT_EQ(sampleValue(text, "dbpulse_maintenance_runs_total",
                        {{"operation", "vacuum"}, {"result", "ok"}}),
            1.0);
  EXPECT_EQ(sampleValue(text, "dbpulse_maintenance_runs_total",
                        {{"operation", "vacuum"}, {"result", "skipped_locked"}}),
            1.0);

  // The history is on disk and comes back after a restart.
  const auto history = agent.stateDir() / "maintenance_history.json";
  EXPECT_TRUE(std::filesystem::exists(history));
  const std::string id = accepted["run_id"];
  ASSERT_TRUE(agent.signal(SIGTERM));
  ASSERT_TRUE(agent.process().waitExit(kWait).has_value());
  agent.start(config(agent, "window = \"0 3 1 1 *\"\nwindow_duration = \"1m\"\n"));
  ASSERT_TRUE(agent.waitHealthy(kWait));
  EXPECT_TRUE(finishedRun(agent, id).has_value()) << agent.get("/admin/maintenance").body;

  // A corrupt history is set aside (kept for a post-mortem), and the agent starts afresh.
  ASSERT_TRUE(agent.signal(SIGTERM));
  ASSERT_TRUE(agent.process().waitExit(kWait).has_value());
  writeFile(history, "{\"runs\": [{\"id\": 7}]}");
  agent.start(config(agent, "window = \"0 3 1 1 *\"\nwindow_duration = \"1m\"\n"));
  ASSERT_TRUE(agent.waitHealthy(kWait));
  EXPECT_FALSE(finishedRun(agent, id).has_value());
  EXPECT_EQ(readFile(std::filesystem::path(history.string() + ".corrupt")),
            "{\"runs\": [{\"id\": 7}]}");
}

// Review defect 6: outcomes were read from the English notice text, so with a translated
// lc_messages a table skipped for its lock or its owner was recorded "ok". The role here
// speaks German; the SQLSTATE (55P03) and the severity of the warnings are not translated.
TEST_F(MaintenanceTest, SkipsAreRecognisedWhateverLanguageTheServerSpeaks) {
  if (pg_ == nullptr) return;
  if (pg_->major() != 15) {
    // The npm-packaged servers of the other majors are built without NLS: they speak
    // only English, which the other tests already cover.
    GTEST_SKIP() << "PostgreSQL " << pg_->major() << " from npm has no translations";
  }
  pg_->exec(
      "DO $$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'maint_de') THEN "
      "DROP OWNED BY maint_de CASCADE; DROP ROLE maint_de; END IF; END$$",
      kDb);
  pg_->exec("CREATE ROLE maint_de LOGIN; ALTER ROLE maint_de SET lc_messages = 'de_DE.UTF-8'");
  pg_->exec(
      "GRANT CREATE ON SCHEMA public TO maint_de; SET ROLE maint_de; "
      "CREATE TABLE owned_free (id int); CREATE TABLE owned_locked (id int); RESET ROLE",
      kDb);
  std::string german;
  try {
    PgClient probe(pg_->dsn(kDb, "maint_de"));
    probe.exec("SELECT 1/0");
  } catch (const std::exception& e) {
    german = e.what();
  }
  ASSERT_NE(german.find("Division durch Null"), std::string::npos)
      << "the server must answer in German for this test to mean anything (the de_DE.UTF-8 "
         "locale comes from packaging/deps.sh): "
      << german;

  DbpulseProcess agent;
  agent.start(config(agent, "window = \"0 3 1 1 *\"\nwindow_duration = \"1m\"\n", "maint_de"));
  ASSERT_TRUE(agent.waitHealthy(kWait));
  PgClient holder(pg_->dsn(kDb));
  holder.exec("BEGIN");
  holder.exec("LOCK TABLE owned_locked IN ACCESS EXCLUSIVE MODE");
  const json accepted = optimize(agent, {{"tables", {"owned_free", "owned_locked", "messages"}}});
  std::optional<json> run;
  ASSERT_TRUE(
      pollUntil([&] { return (run = finishedRun(agent, accepted["run_id"])).has_value(); }, kWait));
  holder.exec("ROLLBACK");
  std::map<std::string, json> by_table;
  for (const auto& t : (*run)["tables"]) by_table[t["table"].get<std::string>()] = t;
  ASSERT_EQ(by_table.size(), 3u) << run->dump(2);
  EXPECT_EQ(by_table["public.owned_free"]["result"], "ok") << run->dump(2);
  EXPECT_EQ(by_table["public.owned_locked"]["result"], "skipped_locked") << run->dump(2);
  EXPECT_EQ(by_table["public.messages"]["result"], "skipped_privilege") << run->dump(2);
  EXPECT_NE(by_table["public.messages"]["error"].get<std::string>().find("messages"),
            std::string::npos)
      << "the server's own (German) reason is kept";
  EXPECT_EQ(lastVacuum("messages"), "never");
}

// A manual run has no window to close: a database that stays busy skips the table after
// window_duration instead of waiting until shutdown.
TEST_F(MaintenanceTest, ManualRunOnABusyDatabaseGivesUpAfterWindowDuration) {
  std::vector<std::thread> sleepers;
  std::vector<int> pids;
  for (int i = 0; i < 2; ++i) {
    auto client = std::make_shared<PgClient>(pg_->dsn(kDb));
    pids.push_back(client->backendPid());
    sleepers.emplace_back([client] {
      try {
        client->exec("SELECT pg_sleep(60)");
      } catch (const std::exception&) {  // cancelled below
      }
    });
  }
  ASSERT_TRUE(pollUntil(
      [&] {
        return pg_->queryValue(
                   "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                   "AND query LIKE 'SELECT pg_sleep%'",
                   kDb) == "2";
      },
      kWait));
  DbpulseProcess agent;
  agent.start(
      config(agent, "window = \"0 3 1 1 *\"\nwindow_duration = \"1s\"\nmax_active_sessions = 1\n"));
  ASSERT_TRUE(agent.waitHealthy(kWait));
  const json accepted = optimize(agent, {{"tables", {"messages"}}});
  std::optional<json> run;
  const bool finished =
      pollUntil([&] { return (run = finishedRun(agent, accepted["run_id"])).has_value(); }, 30s);
  for (int pid : pids) {
    pg_->exec("SELECT pg_cancel_backend(" + std::to_string(pid) + ")", kDb);
  }
  for (auto& t : sleepers) t.join();
  ASSERT_TRUE(finished) << agent.get("/admin/maintenance").body;
  ASSERT_EQ((*run)["tables"].size(), 1u) << run->dump(2);
  EXPECT_EQ((*run)["tables"][0]["result"], "skipped_busy") << run->dump(2);
  EXPECT_NE((*run)["tables"][0]["error"].get<std::string>().find("still busy"), std::string::npos);
  EXPECT_EQ(lastVacuum("messages"), "never");
}

TEST_F(MaintenanceTest, WindowStartsARunByItselfOnTheLeaderOnly) {
  DbpulseProcess leader, follower;
  const std::string always = "window = \"* * * * *\"\nwindow_duration = \"1h\"\n";
  leader.start(config(leader, always));
  ASSERT_TRUE(leader.waitHealthy(kWait));
  std::optional<json> window_run;
  ASSERT_TRUE(pollUntil(
      [&] {
        const json body = json::parse(leader.get("/admin/maintenance").body, nullptr, false);
        if (body.is_discarded()) return false;
        for (const auto& r : body["history"]) {
          if (r["trigger"] == "window") window_run = r;
        }
        return window_run.has_value();
      },
      kWait))
      << leader.get("/admin/maintenance").body;
  bool vacuumed = false;
  for (const auto& t : (*window_run)["tables"]) {
    vacuumed = vacuumed || (t["table"] == "public.messages" && t["result"] == "ok");
  }
  EXPECT_TRUE(vacuumed) << window_run->dump(2);

  follower.start(config(follower, always));
  ASSERT_TRUE(follower.waitHealthy(kWait));
  EXPECT_EQ(optimize(follower, {{"tables", {"messages"}}}, 503)["code"], "not_leader");
  const json status = json::parse(follower.get("/admin/maintenance").body);
  EXPECT_EQ(status["leader"], false);
  EXPECT_TRUE(status["history"].empty()) << "a follower runs no window";
}

}  // namespace
}  // namespace dbpulse::testing
