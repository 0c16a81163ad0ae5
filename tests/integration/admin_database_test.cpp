// The admin API's database routes and their guard, through the real binary.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

std::string collectorsConfig() {
  std::string c;
  for (const char* name : {"connections", "statements", "locks", "size"}) {
    c += std::string("[collectors.") + name + "]\ninterval = \"500ms\"\ntimeout = \"400ms\"\n";
  }
  for (const char* name :
       {"indexes", "cache", "stats", "tables", "replication", "redis", "companion"}) {
    c += std::string("[collectors.") + name + "]\nenabled = false\n";
  }
  return c;
}

TEST(AdminDatabaseTest, MetricsShowTopStatementWithTextAndSizeShowsTables) {
  if (!requirePostgres()) return;
  PgServer& pg = sharedPostgres();
  pg.createDatabase("admin_chat");
  pg.exec("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", "admin_chat");
  pg.exec(
      "DROP TABLE IF EXISTS big_messages; CREATE TABLE big_messages AS "
      "SELECT g AS id, md5(g::text) AS body FROM generate_series(1, 20000) g",
      "admin_chat");

  DbpulseProcess agent;
  agent.start("[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
              agent.stateDir().string() + "\"\nlog_format = \"text\"\n[postgres]\ndsn = \"" +
              pg.dsn("admin_chat") + "\"\n" + collectorsConfig());
  ASSERT_TRUE(agent.waitReady(20s));

  // A statement that the next statements run sees move (ranked by time since its last run).
  for (int i = 0; i < 5; ++i) {
    pg.exec("SELECT count(*) FROM big_messages WHERE body LIKE '%ab%'", "admin_chat");
  }

  json metrics;
  ASSERT_TRUE(pollUntil(
      [&] {
        auto r = agent.get("/admin/database/metrics");
        if (r.status != 200) return false;
        metrics = json::parse(r.body);
        for (const auto& st : metrics["top_statements"]) {
          if (st["query"].get<std::string>().find("big_messages") != std::string::npos) {
            return true;
          }
        }
        return false;
      },
      20s))
      << metrics.dump(2);
  EXPECT_EQ(metrics["pg_up"], 1.0);
  EXPECT_GE(metrics["connections"]["client_connections"].get<double>(), 1.0);
  EXPECT_TRUE(metrics["connections"]["by_database_and_state"].contains("admin_chat"));
  EXPECT_TRUE(metrics["blocked_sessions"].is_array());

  json size;
  ASSERT_TRUE(pollUntil(
      [&] {
        auto r = agent.get("/admin/database/size");
        if (r.status != 200) return false;
        size = json::parse(r.body);
        for (const auto& t : size["tables"]) {
          if (t["table"] == "big_messages") return t["total_bytes"].get<double>() > 1'000'000;
        }
        return false;
      },
      20s))
      << size.dump(2);
  EXPECT_EQ(size["database"], "admin_chat");
}

TEST(AdminDatabaseTest, TokenIsRequiredWhenConfigured) {
  DbpulseProcess agent;
  const auto token_file = agent.dir() / "admin.token";
  std::ofstream(token_file) << "s3cret-token\n";
  agent.start(
      "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
      agent.stateDir().string() + "\"\nadmin_token_file = \"" + token_file.string() +
      "\"\n[collectors.connections]\nenabled = false\n[collectors.redis]\nenabled = false\n");
  ASSERT_TRUE(agent.waitHealthy(15s));

  auto anonymous = agent.get("/admin/database/size");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(json::parse(anonymous.body)["code"], "unauthorized");
  EXPECT_EQ(anonymous.body.find("s3cret"), std::string::npos);

  auto wrong = httpRequest("GET", agent.baseUrl() + "/admin/database/size", "",
                           {{"Authorization", "Bearer s3cret-tokeN"}});
  EXPECT_EQ(wrong.status, 401);
  auto right = httpRequest("GET", agent.baseUrl() + "/admin/database/size", "",
                           {{"Authorization", "Bearer s3cret-token"}});
  EXPECT_EQ(right.status, 200) << right.body;
}

TEST(AdminDatabaseTest, WithoutTokenAdminAnswersOnlyOnLoopbackListen) {
  DbpulseProcess agent;
  agent.start(
      "[agent]\nlisten = \"0.0.0.0:" + std::to_string(agent.port()) + "\"\nstate_dir = \"" +
      agent.stateDir().string() +
      "\"\n[collectors.connections]\nenabled = false\n[collectors.redis]\nenabled = false\n");
  ASSERT_TRUE(agent.waitHealthy(15s));
  auto r = agent.get("/admin/database/metrics");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(json::parse(r.body)["code"], "forbidden");
  EXPECT_EQ(agent.get("/metrics").status, 200) << "only /admin/* is guarded";
}

}  // namespace
}  // namespace dbpulse::testing
