// End to end: the real dbpulse binary evaluates a rule, the alert goes pending, fires, reaches a
// real Alertmanager and resolves; then, with Alertmanager down, an alert fires, dbpulse is
// SIGKILLed and restarted, Alertmanager comes back, and the alert arrives with its original
// startsAt.
//
// The rule watches dbpulse_process_up{process="companion"}, which the test controls: the
// "companion" is a `sleep` process named by a pid file; killing it makes the series 0.

#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "exporters/alertmanager/alertmanager_notifier.h"
#include "integration/harness/alertmanager_server.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

constexpr std::string_view kAlertName = "DbpulseE2eCompanionDown";

// The collectors that need PostgreSQL or Redis are switched off: this test is about rules
// and notifications, and the process collector is all it needs.
constexpr std::string_view kQuietCollectors[] = {"connections", "statements", "indexes", "cache",
                                                 "stats",       "tables",     "size",    "locks",
                                                 "replication", "redis"};

class AlertmanagerE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requireAlertmanager()) return;
    am_ = std::make_unique<AlertmanagerServer>();
    writeFile(agent_.dir() / "e2e_rules.yml", std::string(R"(groups:
  - name: e2e
    interval: 250ms
    rules:
      - alert: )") + std::string(kAlertName) + R"(
        expr: dbpulse_process_up{process="companion"} == 0
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: "the {{ $labels.process }} process is down"
)");
    startCompanion();
  }

  std::string config() const {
    std::string toml = "[agent]\nlisten = \"" + agent_.listenAddress() + "\"\nstate_dir = \"" +
                       agent_.stateDir().string() + "\"\ninstance = \"e2e-0\"\n" +
                       "[rules]\nfiles = [\"" + (agent_.dir() / "e2e_rules.yml").string() +
                       "\"]\nevaluation_interval = \"250ms\"\n" + "[alertmanager]\nurls = [\"" +
                       am_->url() + "\"]\nresend_interval = \"1s\"\n" +
                       "[companion]\npid_file = \"" + pidFile().string() + "\"\n" +
                       "[collectors.process]\ninterval = \"250ms\"\n";
    for (std::string_view name : kQuietCollectors) {
      toml += "[collectors." + std::string(name) + "]\nenabled = false\n";
    }
    return toml;
  }

  std::filesystem::path pidFile() const { return agent_.dir() / "companion.pid"; }

  void startCompanion() {
    ProcessOptions options;
    options.argv = {"sleep", "600"};
    companion_ = std::make_unique<ChildProcess>(options);
    writeFile(pidFile(), std::to_string(companion_->pid()) + "\n");
  }
  void killCompanion() { companion_.reset(); }  // SIGTERM, reaped: its pid names nothing

  // Our alert as dbpulse's GET /admin/alerts shows it, or nullopt.
  std::optional<Json> agentAlert() const {
    const HttpResponse r = agent_.get("/admin/alerts");
    if (r.status != 200) return std::nullopt;
    const Json doc = Json::parse(r.body);
    for (const Json& a : doc["alerts"]) {
      if (a["labels"].value("alertname", "") == kAlertName) return a;
    }
    return std::nullopt;
  }
  std::string agentAlertState() const {
    auto a = agentAlert();
    return a ? a->value("state", "") : "";
  }

  // Our alert as Alertmanager lists it (active ones only), or nullopt.
  std::optional<Json> amAlert() const {
    const std::string body = am_->alertsJson();
    if (body.empty()) return std::nullopt;
    for (const Json& a : Json::parse(body)) {
      if (a["labels"].value("alertname", "") == kAlertName) return a;
    }
    return std::nullopt;
  }

  ::testing::AssertionResult waitFor(const std::function<bool()>& cond,
                                     std::chrono::milliseconds timeout, std::string_view what) {
    if (pollUntil(cond, timeout)) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "timed out waiting for: " << what
           << "\n/admin/alerts: " << agent_.get("/admin/alerts").body
           << "\nAlertmanager: " << am_->alertsJson() << "\ndbpulse log:\n"
           << agent_.logTail();
  }

  DbpulseProcess agent_;
  std::unique_ptr<AlertmanagerServer> am_;
  std::unique_ptr<ChildProcess> companion_;
};

TEST_F(AlertmanagerE2ETest, RuleFiresArrivesAndResolves) {
  if (!am_) return;
  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(15s));
  ASSERT_TRUE(agent_.waitForMetrics(
      [](const std::string& text) {
        return sampleValue(text, "dbpulse_process_up", {{"process", "companion"}}) == 1.0;
      },
      10s, "dbpulse_process_up{process=companion} 1"));
  EXPECT_FALSE(agentAlert().has_value()) << "inactive while the companion runs";

  killCompanion();
  ASSERT_TRUE(waitFor([&] { return agentAlertState() == "pending"; }, 10s, "pending"));
  EXPECT_FALSE(amAlert().has_value()) << "a pending alert is not sent";
  ASSERT_TRUE(waitFor([&] { return agentAlertState() == "firing"; }, 10s, "firing"));
  const std::optional<Json> fired = agentAlert();
  ASSERT_TRUE(fired.has_value()) << agent_.get("/admin/alerts").body;
  const std::string starts_at = fired->value("startsAt", "");
  ASSERT_FALSE(starts_at.empty());

  std::optional<Json> listed;
  ASSERT_TRUE(
      waitFor([&] { return (listed = amAlert()).has_value(); }, 10s, "the alert in Alertmanager"));
  EXPECT_EQ((*listed)["startsAt"], starts_at);
  EXPECT_EQ((*listed)["labels"]["severity"], "critical");
  EXPECT_EQ((*listed)["labels"]["instance"], "e2e-0");
  EXPECT_EQ((*listed)["annotations"]["summary"], "the companion process is down");
  EXPECT_NE((*listed)["generatorURL"].get<std::string>().find(std::to_string(agent_.port())),
            std::string::npos)
      << (*listed)["generatorURL"];
  EXPECT_TRUE(agent_.waitForMetrics(
      [](const std::string& text) {
        const auto sent =
            sampleValue(text, "dbpulse_alertmanager_notifications_total", {{"result", "sent"}});
        return sent && *sent >= 1;
      },
      5s, "dbpulse_alertmanager_notifications_total{result=sent} >= 1"));

  startCompanion();
  ASSERT_TRUE(waitFor([&] { return !amAlert().has_value(); }, 15s,
                      "the alert resolved in Alertmanager (no longer listed)"));
}

TEST_F(AlertmanagerE2ETest, AlertFiredDuringAnOutageSurvivesSigkillWithItsStartsAt) {
  if (!am_) return;
  am_->stop();
  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(15s));
  killCompanion();
  ASSERT_TRUE(waitFor([&] { return agentAlertState() == "firing"; }, 15s, "firing"));
  const std::string starts_at = agentAlert()->value("startsAt", "");
  ASSERT_FALSE(starts_at.empty());

  // Both halves of the state are on disk: the rule's alert state and the undelivered
  // notification. Then kill -9.
  const auto outbox = agent_.stateDir() / exporters::AlertmanagerNotifier::kStateFile;
  ASSERT_TRUE(waitFor([&] { return readFile(outbox).find(kAlertName) != std::string::npos; }, 10s,
                      "the notification in " + outbox.string()));
  ASSERT_TRUE(agent_.waitForMetrics(
      [](const std::string& text) {
        const auto failed =
            sampleValue(text, "dbpulse_alertmanager_notifications_total", {{"result", "failed"}});
        return failed && *failed >= 1;
      },
      10s, "a failed delivery while Alertmanager is down"));
  ASSERT_TRUE(agent_.signal(SIGKILL));
  ASSERT_TRUE(agent_.process().waitExit(5s).has_value());

  agent_.start(config());
  ASSERT_TRUE(agent_.waitHealthy(15s));
  am_->start();
  std::optional<Json> listed;
  ASSERT_TRUE(waitFor([&] { return (listed = amAlert()).has_value(); }, 15s,
                      "the alert in Alertmanager after the restarts"));
  EXPECT_EQ((*listed)["startsAt"], starts_at) << "the original startsAt";
  EXPECT_EQ(agentAlert()->value("startsAt", ""), starts_at) << "dbpulse's own view agrees";
}

}  // namespace
}  // namespace dbpulse::testing
