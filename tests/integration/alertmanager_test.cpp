// The Alertmanager notifier against a real Alertmanager (package prometheus-alertmanager):
// delivery, resolution, an outage with a simulated kill -9 of dbpulse, every URL of an HA
// pair getting every alert.

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "agent/core/sample_store.h"
#include "exporters/alertmanager/alertmanager_notifier.h"
#include "integration/harness/alertmanager_server.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using exporters::AlertmanagerNotifier;
using exporters::AlertmanagerNotifierOptions;
using exporters::formatRfc3339Millis;
using Json = nlohmann::json;
namespace fs = std::filesystem;

// Whole milliseconds: what the API v2 carries.
WallTime nowMillis() {
  return WallTime(std::chrono::milliseconds(toMillis(std::chrono::system_clock::now())));
}

AlertNotification firingAlert(const std::string& name, WallTime starts_at) {
  AlertNotification a;
  a.labels = Labels{{"alertname", name}, {"instance", "chat-0"}, {"severity", "warning"}};
  a.annotations = Labels{{"summary", name + " is firing"}};
  a.starts_at = starts_at;
  a.ends_at = nowMillis() + 4min;
  a.generator_url = "http://chat-0:9470/admin/rules";
  return a;
}

// The alert named `name` as Alertmanager lists it, or nullopt.
std::optional<Json> listedAlert(const AlertmanagerServer& am, const std::string& name) {
  const std::string body = am.alertsJson();
  if (body.empty()) return std::nullopt;
  for (const Json& a : Json::parse(body)) {
    if (a["labels"].value("alertname", "") == name) return a;
  }
  return std::nullopt;
}

AlertmanagerNotifierOptions notifierOptions(std::vector<std::string> urls, const fs::path& dir,
                                            SampleStore* store = nullptr) {
  AlertmanagerNotifierOptions o;
  o.urls = std::move(urls);
  o.state_dir = dir.string();
  // Short retries keep the test fast; the production defaults are 1 s .. 60 s.
  o.initial_backoff = 100ms;
  o.max_backoff = 500ms;
  o.metrics_store = store;
  return o;
}

double metric(const SampleStore& store, const std::string& name, const std::string& url) {
  auto snap = store.snapshot();
  const SnapshotFamily* f = snap->family(name);
  if (f == nullptr) return -1;
  for (const auto& s : f->series) {
    if (s.labels.get("url") == url) return s.value;
  }
  return -1;
}

TEST(AlertmanagerTest, AlertArrivesWithItsLabelsAndStartsAtAndResolves) {
  if (!requireAlertmanager()) return;
  AlertmanagerServer am;
  TempDir state("dbpulse-am-state-");
  SystemClock clock;
  SampleStore store(clock);
  AlertmanagerNotifier notifier(notifierOptions({am.url()}, state.path(), &store), clock);

  const WallTime starts_at = nowMillis() - 90s;
  AlertNotification firing = firingAlert("DbpulseAmDelivery", starts_at);
  notifier.send({firing});

  std::optional<Json> listed;
  ASSERT_TRUE(
      pollUntil([&] { return (listed = listedAlert(am, "DbpulseAmDelivery")).has_value(); }, 10s))
      << am.alertsJson();
  EXPECT_EQ((*listed)["startsAt"], formatRfc3339Millis(starts_at));
  EXPECT_EQ((*listed)["endsAt"], formatRfc3339Millis(firing.ends_at));
  EXPECT_EQ((*listed)["labels"], Json::parse(R"({"alertname":"DbpulseAmDelivery",
      "instance":"chat-0","severity":"warning"})"));
  EXPECT_EQ((*listed)["annotations"]["summary"], "DbpulseAmDelivery is firing");
  EXPECT_EQ((*listed)["generatorURL"], "http://chat-0:9470/admin/rules");
  EXPECT_EQ((*listed)["status"]["state"], "active");
  EXPECT_TRUE(
      pollUntil([&] { return metric(store, "dbpulse_alertmanager_up", am.url()) == 1; }, 5s));
  EXPECT_GT(metric(store, "dbpulse_alertmanager_last_success_timestamp_seconds", am.url()), 0);

  AlertNotification resolved = firing;
  resolved.resolved = true;
  resolved.ends_at = nowMillis();
  notifier.send({resolved});
  EXPECT_TRUE(pollUntil([&] { return !listedAlert(am, "DbpulseAmDelivery").has_value(); }, 10s))
      << "a resolved alert is no longer listed: " << am.alertsJson();
  EXPECT_TRUE(pollUntil([&] { return notifier.stats().urls[0].outbox == 0; }, 5s));
}

TEST(AlertmanagerTest, OutageAndKillNineLoseNothingAndKeepStartsAt) {
  if (!requireAlertmanager()) return;
  AlertmanagerServer am;
  am.stop();  // down from the start: connections are refused
  TempDir state("dbpulse-am-state-");
  TempDir after_kill("dbpulse-am-killed-");
  SystemClock clock;
  const WallTime starts_at = nowMillis() - 10min;
  const fs::path state_file = state / AlertmanagerNotifier::kStateFile;
  {
    AlertmanagerNotifier notifier(notifierOptions({am.url()}, state.path()), clock);
    notifier.send({firingAlert("DbpulseAmOutage", starts_at)});
    ASSERT_TRUE(pollUntil([&] { return notifier.stats().failed >= 2; }, 10s))
        << "retries while Alertmanager is down";
    EXPECT_EQ(notifier.stats().urls[0].outbox, 1u);
    EXPECT_FALSE(notifier.stats().urls[0].up);
    // kill -9 now: what is on disk is all a restarted dbpulse gets. The copy is taken while the
    // notifier runs, before its destructor's clean flush.
    ASSERT_TRUE(pollUntil(
        [&] { return readFile(state_file).find("DbpulseAmOutage") != std::string::npos; }, 5s));
    fs::copy_file(state_file, after_kill / AlertmanagerNotifier::kStateFile);
  }
  am.start();
  AlertmanagerNotifier restarted(notifierOptions({am.url()}, after_kill.path()), clock);
  EXPECT_EQ(restarted.stats().urls[0].outbox, 1u) << "loaded from the file";
  std::optional<Json> listed;
  ASSERT_TRUE(
      pollUntil([&] { return (listed = listedAlert(am, "DbpulseAmOutage")).has_value(); }, 10s))
      << am.alertsJson();
  EXPECT_EQ((*listed)["startsAt"], formatRfc3339Millis(starts_at)) << "the original startsAt";
  EXPECT_TRUE(pollUntil([&] { return restarted.stats().urls[0].outbox == 0; }, 5s));
}

TEST(AlertmanagerTest, EveryAlertmanagerOfAnHaPairGetsEveryAlert) {
  if (!requireAlertmanager()) return;
  AlertmanagerServer am1;
  AlertmanagerServer am2;
  am2.stop();
  TempDir state("dbpulse-am-state-");
  SystemClock clock;
  AlertmanagerNotifier notifier(notifierOptions({am1.url(), am2.url()}, state.path()), clock);
  const WallTime starts_at = nowMillis() - 1min;
  notifier.send({firingAlert("DbpulseAmHa1", starts_at), firingAlert("DbpulseAmHa2", starts_at)});
  ASSERT_TRUE(pollUntil(
      [&] {
        return listedAlert(am1, "DbpulseAmHa1").has_value() &&
               listedAlert(am1, "DbpulseAmHa2").has_value();
      },
      10s))
      << am1.alertsJson();
  EXPECT_EQ(notifier.stats().urls[1].outbox, 2u) << "the stopped one keeps its own outbox";
  am2.start();
  EXPECT_TRUE(pollUntil(
      [&] {
        return listedAlert(am2, "DbpulseAmHa1").has_value() &&
               listedAlert(am2, "DbpulseAmHa2").has_value();
      },
      10s))
      << am2.alertsJson();
}

// The wiring in the real binary: [alertmanager] urls builds the notifier, an idle
// Alertmanager is probed (dbpulse_alertmanager_up), a reload swaps the URL list, SIGTERM
// writes the outbox file.
TEST(AlertmanagerAgentTest, DbpulseProbesConfiguredAlertmanagersAndFollowsReload) {
  if (!requireAlertmanager()) return;
  AlertmanagerServer am1;
  AlertmanagerServer am2;
  DbpulseProcess agent;
  auto config = [&](const std::string& url) {
    return "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
           agent.stateDir().string() + "\"\n[alertmanager]\nurls = [\"" + url + "\"]\n";
  };
  agent.start(config(am1.url()));
  ASSERT_TRUE(agent.waitHealthy(15s));
  ASSERT_TRUE(agent.waitForMetrics(
      [&](const std::string& text) {
        return sampleValue(text, "dbpulse_alertmanager_up", {{"url", am1.url()}}) == 1.0 &&
               sampleValue(text, "dbpulse_alertmanager_notifications_total",
                           {{"result", "sent"}}) == 0.0;
      },
      10s, "dbpulse_alertmanager_up{url=am1} 1"));

  agent.writeConfig(config(am2.url()));
  ASSERT_TRUE(agent.signal(SIGHUP));
  ASSERT_TRUE(agent.waitForMetrics(
      [&](const std::string& text) {
        return sampleValue(text, "dbpulse_alertmanager_up", {{"url", am2.url()}}) == 1.0 &&
               !sampleValue(text, "dbpulse_alertmanager_up", {{"url", am1.url()}}).has_value();
      },
      10s, "after reload: dbpulse_alertmanager_up{url=am2} 1 and no series for am1"));

  ASSERT_EQ(agent.terminate(10s), std::optional<int>(0));
  const std::string saved = readFile(agent.stateDir() / AlertmanagerNotifier::kStateFile);
  EXPECT_NE(saved.find(am2.url()), std::string::npos) << saved;
  EXPECT_EQ(saved.find(am1.url()), std::string::npos) << saved;
}

}  // namespace
}  // namespace dbpulse::testing
