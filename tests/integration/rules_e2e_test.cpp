// The rule engine inside the real binary: rule files next to the config, an alert driven by
// the chat server's (stubbed) metrics going pending -> firing -> resolved as seen on
// GET /admin/alerts, GET /admin/rules and /metrics (ALERTS, recorded series, self-metrics);
// bad rule files rejected by check-config and by reload while the old rules keep running;
// an alert's startsAt kept across a restart.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <nlohmann/json.hpp>
#include <string>

#include "integration/chat_server_stub.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 15s;

const char* kRules = R"(groups:
  - name: chat
    interval: 250ms
    rules:
      - record: chat:connections:max
        expr: max(websocket_active_connections)
      - alert: TooManyConnections
        expr: chat:connections:max > 100
        for: 1s
        labels:
          severity: warning
        annotations:
          summary: "{{ $value }} websocket connections"
)";

class RulesE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    serveConnections(10);
    ChatServerStub::Response health;
    health.body = "{}";
    chat_.set("/health", health);
    std::filesystem::create_directories(agent_.dir() / "rules");
    writeRules(kRules);
  }

  void serveConnections(int n) {
    ChatServerStub::Response r;
    r.body = "# TYPE websocket_active_connections gauge\nwebsocket_active_connections " +
             std::to_string(n) + "\n";
    chat_.set("/metrics", r);
  }

  void writeRules(const std::string& yaml) { writeFile(agent_.dir() / "rules" / "chat.yml", yaml); }

  std::string config() const {
    return "[agent]\nlisten = \"" + agent_.listenAddress() + "\"\nstate_dir = \"" +
           agent_.stateDir().string() + "\"\nlog_format = \"text\"\ninstance = \"chat-0\"\n" +
           "[companion]\nmetrics_url = \"" + chat_.url("/metrics") + "\"\nhealth_url = \"" +
           chat_.url("/health") + "\"\n[collectors.companion]\ninterval = \"500ms\"\n" +
           // Series go stale 2 x interval + timeout after the last run (1.4 s): a run
           // delayed on a loaded machine must not end an alert.
           "timeout = \"400ms\"\n" + disabledCollectors() +
           "[rules]\nfiles = [\"rules/*.yml\"]\nevaluation_interval = \"1s\"\n";
  }

  static std::string disabledCollectors() {
    std::string c;
    for (const char* name : {"connections", "statements", "indexes", "cache", "stats", "tables",
                             "size", "locks", "pgbouncer", "replication", "redis"}) {
      c += std::string("[collectors.") + name + "]\nenabled = false\n";
    }
    return c;
  }

  nlohmann::json getJson(const std::string& path) {
    HttpResponse r = agent_.get(path);
    if (r.status != 200) return nullptr;
    return nlohmann::json::parse(r.body, nullptr, false);
  }

  // The state of the first alert named TooManyConnections, or "" when there is none.
  std::string alertState(nlohmann::json* alert = nullptr) {
    nlohmann::json j = getJson("/admin/alerts");
    if (j.is_null() || j.is_discarded()) return "";
    for (const auto& a : j["alerts"]) {
      if (a["labels"]["alertname"] == "TooManyConnections") {
        if (alert) *alert = a;
        return a["state"];
      }
    }
    return "";
  }

  bool waitAlertState(const std::string& state, nlohmann::json* alert = nullptr) {
    return pollUntil([&] { return alertState(alert) == state; }, kWait);
  }

  ChatServerStub chat_;
  DbpulseProcess agent_;
};

TEST_F(RulesE2ETest, AlertGoesPendingFiringResolvedOnAdminApiAndMetrics) {
  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(kWait));

  // The recording rule's series is on /metrics (the chat series themselves are not).
  ASSERT_TRUE(agent_.waitForMetrics(
      [](const std::string& t) { return sampleValue(t, "chat:connections:max") == 10.0; }, kWait,
      "chat:connections:max 10"));

  serveConnections(150);
  nlohmann::json alert;
  ASSERT_TRUE(waitAlertState("pending", &alert)) << agent_.logTail();
  EXPECT_EQ(alert["labels"]["severity"], "warning");
  EXPECT_EQ(alert["annotations"]["summary"], "150 websocket connections");
  ASSERT_TRUE(agent_.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "ALERTS",
                           {{"alertname", "TooManyConnections"}, {"alertstate", "firing"}}) == 1.0;
      },
      kWait, "ALERTS{alertstate=\"firing\"} 1"));
  ASSERT_TRUE(waitAlertState("firing", &alert));
  EXPECT_TRUE(alert.contains("startsAt"));

  // The status page: loopback without a token is an admin caller, so it sees the summary.
  HttpResponse page = agent_.get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("1 firing, 0 pending, 2 rules loaded"), std::string::npos) << page.body;
  EXPECT_NE(page.body.find("<td>TooManyConnections</td><td class=\"firing\">firing</td>"),
            std::string::npos)
      << page.body;
  EXPECT_NE(page.body.find("150 websocket connections"), std::string::npos) << page.body;

  nlohmann::json rules = getJson("/admin/rules");
  ASSERT_FALSE(rules.is_null());
  const auto& group = rules["groups"][0];
  EXPECT_EQ(group["name"], "chat");
  EXPECT_EQ(group["interval"], 0.25);
  EXPECT_EQ(group["rules"][1]["state"], "firing");
  EXPECT_EQ(group["rules"][1]["health"], "ok");

  serveConnections(20);
  ASSERT_TRUE(waitAlertState("inactive", &alert));
  EXPECT_TRUE(alert.contains("resolvedAt"));
  ASSERT_TRUE(agent_.waitForMetrics(
      [](const std::string& t) {
        return findSamples(t, "ALERTS").empty() && sampleValue(t, "dbpulse_rules_loaded") == 2.0 &&
               sampleValue(t, "dbpulse_rule_evaluation_failures_total", {{"rule_group", "chat"}}) ==
                   0.0 &&
               sampleValue(t, "dbpulse_rule_group_last_duration_seconds",
                           {{"rule_group", "chat"}}) >= 0.0;
      },
      kWait, "no ALERTS series once resolved; rule self-metrics"));
}

TEST_F(RulesE2ETest, BadRuleFileIsRejectedAndOldRulesKeepRunning) {
  const std::string bad =
      "groups:\n  - name: chat\n    rules:\n      - alert: Broken\n"
      "        expr: topk(websocket_active_connections)\n";
  // check-config names the rule file, position, group, rule and construct.
  writeRules(bad);
  agent_.writeConfig(config());
  CommandResult check = runDbpulse({"check-config", agent_.configPath().string()});
  EXPECT_EQ(check.exit_code, 2) << check.describe();
  EXPECT_NE(check.err.find("rules/chat.yml:5:15: group \"chat\", alert \"Broken\": expr: 1:1: "
                           "parse error: wrong number of arguments for aggregate expression "
                           "provided, expected 2, got 1"),
            std::string::npos)
      << check.describe();

  writeRules(kRules);
  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(kWait));
  serveConnections(150);
  ASSERT_TRUE(waitAlertState("firing"));

  writeRules(bad);
  HttpResponse reload = httpPost(agent_.baseUrl() + "/admin/reload", "");
  EXPECT_EQ(reload.status, 400) << reload.body;
  EXPECT_NE(reload.body.find("wrong number of arguments for aggregate expression"),
            std::string::npos)
      << reload.body;
  nlohmann::json rules = getJson("/admin/rules");
  EXPECT_EQ(rules["lastReload"]["success"], false);
  EXPECT_EQ(rules["groups"][0]["rules"][1]["name"], "TooManyConnections");
  // SIGHUP takes the same path.
  ASSERT_TRUE(agent_.signal(SIGHUP));
  // Done once it has been rejected as well (the rule file is rewritten below).
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_TRUE(pollUntil(
      [&] {
        const std::string log = agent_.logTail(1 << 20);
        return log.find("SIGHUP: reloading") != std::string::npos &&
               count(log, "keeping the running configuration") >= 2;
      },
      kWait));
  EXPECT_EQ(alertState(), "firing") << "the old rules keep running";

  writeRules(std::string(kRules) + "      - alert: Always\n        expr: vector(1)\n");
  reload = httpPost(agent_.baseUrl() + "/admin/reload", "");
  EXPECT_EQ(reload.status, 200) << reload.body;
  rules = getJson("/admin/rules");
  EXPECT_EQ(rules["lastReload"]["success"], true);
  EXPECT_EQ(rules["groups"][0]["rules"].size(), 3u);
  EXPECT_EQ(alertState(), "firing") << "a reload keeps the state of rules that stay";
}

TEST_F(RulesE2ETest, RestartKeepsStartsAt) {
  serveConnections(150);
  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(kWait));
  nlohmann::json before;
  ASSERT_TRUE(waitAlertState("firing", &before));
  ASSERT_TRUE(agent_.signal(SIGKILL));
  ASSERT_TRUE(agent_.process().waitExit(kWait).has_value());

  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(kWait));
  // Past the first evaluations of the restarted agent, not just the restored state.
  ASSERT_TRUE(pollUntil(
      [&] {
        nlohmann::json r = getJson("/admin/rules");
        return !r.is_null() && !r.is_discarded() && r["groups"][0]["evaluations"] >= 2;
      },
      kWait));
  nlohmann::json after;
  ASSERT_TRUE(waitAlertState("firing", &after)) << agent_.logTail();
  EXPECT_EQ(after["startsAt"], before["startsAt"]) << agent_.logTail();
  EXPECT_EQ(after["activeAt"], before["activeAt"]);
}

TEST_F(RulesE2ETest, StatusPageShowsAlertDetailsOnlyToAdminCallers) {
  const auto token_file = agent_.dir() / "admin.token";
  writeFile(token_file, "page-token\n");
  serveConnections(150);
  std::string toml = config();
  toml.insert(toml.find("[companion]"), "admin_token_file = \"" + token_file.string() + "\"\n");
  agent_.start(toml);
  ASSERT_TRUE(agent_.waitHealthy(kWait));
  HttpResponse page;
  ASSERT_TRUE(pollUntil(
      [&] {
        page = agent_.get("/");
        return page.body.find("1 firing") != std::string::npos;
      },
      kWait))
      << page.body;
  EXPECT_NE(page.body.find("<td>TooManyConnections</td>"), std::string::npos) << page.body;
  EXPECT_EQ(page.body.find("websocket connections"), std::string::npos)
      << "no summary without the token: " << page.body;
  HttpResponse admin =
      httpRequest("GET", agent_.baseUrl() + "/", "", {{"Authorization", "Bearer page-token"}});
  EXPECT_NE(admin.body.find("150 websocket connections"), std::string::npos) << admin.body;
}

}  // namespace
}  // namespace dbpulse::testing
