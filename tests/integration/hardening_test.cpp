// Attacks on a running agent that once succeeded (issue: hardening), each replayed against
// the real binary: a reload must not widen who may use the admin API, and a hostile file
// named by the config must not hang a reload or the shutdown after it.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 15s;

std::string baseConfig(const DbpulseProcess& agent, const std::string& listen) {
  return "[agent]\nlisten = \"" + listen + "\"\nstate_dir = \"" + agent.stateDir().string() +
         "\"\nlog_format = \"text\"\n";
}

// Started on 0.0.0.0 without a token, the admin API is closed (403). A reload whose config
// says 127.0.0.1 cannot move the socket, so it must not open the API either (it did: the
// check read the new address while the socket stayed on every interface).
TEST(HardeningTest, ReloadToALoopbackListenDoesNotOpenTheAdminApi) {
  DbpulseProcess agent;
  const std::string port = std::to_string(agent.port());
  agent.start(baseConfig(agent, "0.0.0.0:" + port));
  ASSERT_TRUE(agent.waitHealthy(kWait));
  ASSERT_EQ(agent.get("/admin/rules").status, 403) << agent.get("/admin/rules").body;

  agent.writeConfig(baseConfig(agent, "127.0.0.1:" + port));
  ASSERT_TRUE(agent.signal(SIGHUP));
  ASSERT_TRUE(pollUntil(
      [&] { return agent.logTail().find("configuration applied") != std::string::npos; }, kWait))
      << agent.logTail();
  for (const char* path : {"/admin/rules", "/admin/alerts", "/admin/maintenance"}) {
    const HttpResponse r = agent.get(path);
    EXPECT_EQ(r.status, 403) << path << ": " << r.body;
  }
  const HttpResponse post =
      httpPost(agent.baseUrl() + "/admin/database/analyze-query", "{\"query\": \"SELECT 1\"}");
  EXPECT_EQ(post.status, 403) << post.body;
}

// A FIFO that a rule glob matches: the reload is rejected at once (it used to block on
// open() for good, and SIGTERM was then ignored), the agent keeps serving and stops cleanly.
TEST(HardeningTest, FifoMatchedByTheRuleGlobFailsTheReloadAndShutdownStillWorks) {
  DbpulseProcess agent;
  const std::filesystem::path rules = agent.dir() / "rules";
  std::filesystem::create_directories(rules);
  writeFile(rules / "ok.yml",
            "groups:\n- name: g\n  rules:\n  - alert: AlwaysFine\n    expr: vector(0) > 1\n");
  agent.start(baseConfig(agent, agent.listenAddress()) +
              "[rules]\nfiles = [\"rules/*.yml\"]\nevaluation_interval = \"1s\"\n");
  ASSERT_TRUE(agent.waitReady(kWait));

  ASSERT_EQ(::mkfifo((rules / "evil.yml").c_str(), 0600), 0);
  ASSERT_TRUE(agent.signal(SIGHUP));
  ASSERT_TRUE(pollUntil(
      [&] { return agent.logTail().find("not a regular file") != std::string::npos; }, kWait))
      << agent.logTail();
  EXPECT_EQ(agent.get("/health").status, 200);
  const HttpResponse reload = httpPost(agent.baseUrl() + "/admin/reload", "");
  EXPECT_EQ(reload.status, 400) << reload.body;
  EXPECT_NE(reload.body.find("evil.yml"), std::string::npos) << reload.body;
  EXPECT_EQ(agent.terminate(10s), std::optional<int>(0)) << agent.logTail();
}

// Without an election the agent does all the work and says so: dbpulse_leader 1 (the
// README's promise; the series was missing, and the agent dashboard's leader panel empty).
TEST(HardeningTest, LeaderGaugeIsOneWhenElectionIsOff) {
  DbpulseProcess agent;
  agent.start(baseConfig(agent, agent.listenAddress()) + "leader_election = false\n");
  ASSERT_TRUE(agent.waitHealthy(kWait));
  EXPECT_TRUE(agent.waitForMetrics(
      [](const std::string& t) { return sampleValue(t, "dbpulse_leader") == 1.0; }, kWait,
      "dbpulse_leader 1"));
}

}  // namespace
}  // namespace dbpulse::testing
