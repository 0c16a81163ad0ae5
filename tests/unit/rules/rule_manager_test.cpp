#include "rules/rule_manager.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/sample.h"

namespace dbpulse::rules {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

class TestClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(now_ms_.load())); }
  void set(int64_t ms) { now_ms_ = ms; }

 private:
  std::atomic<int64_t> now_ms_{kT0};
};

class RecordingSink final : public AlertSink {
 public:
  void send(const std::vector<AlertNotification>& alerts) override {
    for (const auto& a : alerts) sent.push_back(a);
  }
  std::vector<AlertNotification> sent;
};

class RuleManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dbpulse-rule-manager-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "rules");
    options_.files = {"rules/*.yml"};
    options_.base_dir = dir_.string();
    options_.state_dir = (dir_ / "state").string();
    options_.engine.default_interval_ms = 15'000;
    options_.engine.instance = "chat-0";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void writeRules(const std::string& yaml, const std::string& name = "a.yml") {
    std::ofstream(dir_ / "rules" / name) << yaml;
  }

  void setUp(double seconds, double value) {
    clock_.set(kT0 + static_cast<int64_t>(seconds * 1000));
    SampleBatch b;
    b.add("up", {{"job", "db"}}, value);
    store_.write("test", b, std::chrono::hours(1));
  }

  void loadAndApply(RuleManager& m) {
    RuleSet set = RuleManager::load(options_);
    ASSERT_TRUE(set.ok()) << set.errors[0].toString();
    m.apply(std::move(set), options_);
  }

  void evalAt(RuleManager& m, double seconds) {
    clock_.set(kT0 + static_cast<int64_t>(seconds * 1000));
    m.evaluate(false);
  }

  std::optional<double> storeValue(const std::string& name, const Labels& labels) {
    std::optional<double> out;
    store_.visit(name, 0, [&](const Labels& l, const Point* p, size_t n) {
      if (l == labels && n > 0) out = p[n - 1].value;
    });
    return out;
  }

  std::filesystem::path dir_;
  TestClock clock_;
  SampleStore store_{clock_};
  RuleManagerOptions options_;
};

const char* kDownRule = R"(groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    for: 30s
    annotations:
      summary: "{{ $labels.job }} down"
)";

TEST_F(RuleManagerTest, EvaluatesNotifiesAndReportsState) {
  writeRules(kDownRule);
  RecordingSink sink;
  RuleManager m(store_, clock_, &sink);
  loadAndApply(m);
  setUp(0, 0);
  evalAt(m, 0);
  evalAt(m, 10);  // not due yet (15 s interval): nothing changes
  evalAt(m, 30);
  ASSERT_EQ(sink.sent.size(), 1u);
  EXPECT_EQ(sink.sent[0].labels.get("alertname"), "Down");
  EXPECT_EQ(sink.sent[0].labels.get("instance"), "chat-0");
  EXPECT_EQ(sink.sent[0].annotations.get("summary"), "db down");

  auto alerts = nlohmann::json::parse(m.alertsJson());
  ASSERT_EQ(alerts["alerts"].size(), 1u);
  EXPECT_EQ(alerts["alerts"][0]["state"], "firing");
  EXPECT_EQ(alerts["alerts"][0]["labels"]["job"], "db");
  EXPECT_EQ(alerts["alerts"][0]["value"], "0");
  EXPECT_EQ(alerts["alerts"][0]["activeAt"], "2023-11-14T22:13:20.000Z");

  auto rules = nlohmann::json::parse(m.rulesJson());
  ASSERT_EQ(rules["groups"].size(), 1u);
  const auto& g = rules["groups"][0];
  EXPECT_EQ(g["name"], "g");
  EXPECT_EQ(g["interval"], 15);
  EXPECT_EQ(g["evaluations"], 2);
  EXPECT_EQ(g["rules"][0]["health"], "ok");
  EXPECT_EQ(g["rules"][0]["state"], "firing");
  EXPECT_EQ(g["rules"][0]["query"], "up == 0");
  EXPECT_EQ(rules["lastReload"]["success"], true);

  EXPECT_EQ(storeValue("ALERTS", {{"alertname", "Down"}, {"alertstate", "firing"}, {"job", "db"}}),
            1.0);
  EXPECT_EQ(storeValue("dbpulse_rules_loaded", {}), 1.0);
  EXPECT_EQ(storeValue("dbpulse_rule_evaluations_total", {{"rule_group", "g"}}), 2.0);
  EXPECT_EQ(storeValue("dbpulse_alerts", {{"state", "firing"}}), 1.0);
}

TEST_F(RuleManagerTest, FailingRuleIsCountedPerGroup) {
  writeRules(R"(groups:
- name: broken
  rules:
  - alert: Bad
    expr: up / on() group_left {__name__=~"up|up2"}
)");
  SampleBatch b;
  b.add("up2", {{"job", "db"}}, 1);
  store_.write("x", b, std::chrono::hours(1));
  setUp(0, 1);
  RuleManager m(store_, clock_);
  loadAndApply(m);
  evalAt(m, 0);
  evalAt(m, 15);
  EXPECT_EQ(storeValue("dbpulse_rule_evaluation_failures_total", {{"rule_group", "broken"}}), 2.0);
  auto rules = nlohmann::json::parse(m.rulesJson());
  EXPECT_EQ(rules["groups"][0]["rules"][0]["health"], "err");
  EXPECT_NE(rules["groups"][0]["rules"][0]["lastError"].get<std::string>().find("many-to-many"),
            std::string::npos);
}

TEST_F(RuleManagerTest, RestartKeepsStartsAt) {
  writeRules(kDownRule);
  setUp(0, 0);
  {
    RecordingSink sink;
    RuleManager m(store_, clock_, &sink);
    loadAndApply(m);
    evalAt(m, 0);
    evalAt(m, 30);  // fires at 30
    ASSERT_EQ(sink.sent.size(), 1u);
    ASSERT_TRUE(std::filesystem::exists(m.stateFile()));
  }
  // A new process: the state file brings back the alert with its startsAt.
  RecordingSink sink;
  RuleManager m(store_, clock_, &sink);
  loadAndApply(m);
  m.restoreState();
  evalAt(m, 120);
  auto alerts = nlohmann::json::parse(m.alertsJson());
  ASSERT_EQ(alerts["alerts"].size(), 1u);
  EXPECT_EQ(alerts["alerts"][0]["state"], "firing");
  EXPECT_EQ(alerts["alerts"][0]["startsAt"], "2023-11-14T22:13:50.000Z");
  ASSERT_EQ(sink.sent.size(), 1u);  // resend due (last sent at 30 s)
  EXPECT_EQ(toMillis(sink.sent[0].starts_at), kT0 + 30'000);
}

// A kill -9 can come right after Alertmanager (or an operator on /admin/alerts) saw an
// alert fire: by then the state file must say so, or the restart begins it as pending again
// and a new startsAt follows.
TEST_F(RuleManagerTest, StateFileHoldsAnAlertBeforeItIsSent) {
  class StateCheckingSink final : public AlertSink {
   public:
    explicit StateCheckingSink(std::function<std::string()> state) : state_(std::move(state)) {}
    void send(const std::vector<AlertNotification>& alerts) override {
      for (const auto& a : alerts) seen.emplace_back(a.labels.get("alertname"), state_());
    }
    std::vector<std::pair<std::string, std::string>> seen;  // alertname, state file then

   private:
    std::function<std::string()> state_;
  };
  writeRules(kDownRule);
  setUp(0, 0);
  RuleManager* manager = nullptr;
  StateCheckingSink sink([&] {
    std::ifstream in(manager->stateFile());
    return std::string(std::istreambuf_iterator<char>(in), {});
  });
  RuleManager m(store_, clock_, &sink);
  manager = &m;
  loadAndApply(m);
  evalAt(m, 0);
  evalAt(m, 30);  // fires
  ASSERT_EQ(sink.seen.size(), 1u);
  const auto state = nlohmann::json::parse(sink.seen[0].second, nullptr, false);
  ASSERT_FALSE(state.is_discarded()) << sink.seen[0].second;
  const auto& groups = state["groups"];
  ASSERT_EQ(groups.size(), 1u);
  const auto& rules = groups.begin().value();
  ASSERT_EQ(rules.size(), 1u);
  const auto& alerts = rules.begin().value();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0]["state"], "firing");
  EXPECT_EQ(alerts[0]["fired_at_ms"], kT0 + 30'000);
}

TEST_F(RuleManagerTest, CorruptStateFileIsReplacedNotFatal) {
  writeRules(kDownRule);
  std::filesystem::create_directories(dir_ / "state" / "rules");
  std::ofstream(dir_ / "state" / "rules" / "alert_state.json") << "{ not json";
  RuleManager m(store_, clock_);
  loadAndApply(m);
  m.restoreState();
  setUp(0, 0);
  evalAt(m, 0);
  std::ifstream in(m.stateFile());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto doc = nlohmann::json::parse(text);  // throws if still corrupt
  EXPECT_EQ(doc["version"], 1);
  EXPECT_EQ(doc["groups"].size(), 1u);
  // The corrupt file is kept beside it for a post-mortem, not overwritten.
  std::ifstream kept(m.stateFile() + ".corrupt");
  std::string old_text((std::istreambuf_iterator<char>(kept)), std::istreambuf_iterator<char>());
  EXPECT_EQ(old_text, "{ not json");
}

TEST_F(RuleManagerTest, ReloadKeepsStateOfRulesThatStayAndDropsSeriesOfRemovedOnes) {
  writeRules(kDownRule);
  writeRules("groups:\n- name: other\n  rules:\n  - alert: Always\n    expr: vector(1)\n", "b.yml");
  setUp(0, 0);
  RuleManager m(store_, clock_);
  loadAndApply(m);
  evalAt(m, 0);
  evalAt(m, 30);
  EXPECT_TRUE(storeValue("ALERTS", {{"alertname", "Always"}, {"alertstate", "firing"}}));
  std::filesystem::remove(dir_ / "rules" / "b.yml");
  loadAndApply(m);
  EXPECT_FALSE(storeValue("ALERTS", {{"alertname", "Always"}, {"alertstate", "firing"}}));
  evalAt(m, 31);  // apply() makes every group due at once
  auto alerts = nlohmann::json::parse(m.alertsJson());
  ASSERT_EQ(alerts["alerts"].size(), 1u);
  EXPECT_EQ(alerts["alerts"][0]["rule"], "Down");
  EXPECT_EQ(alerts["alerts"][0]["startsAt"], "2023-11-14T22:13:50.000Z");
}

TEST_F(RuleManagerTest, RejectedReloadIsReported) {
  writeRules(kDownRule);
  RuleManager m(store_, clock_);
  loadAndApply(m);
  writeRules("groups:\n- name: g\n  rules:\n  - alert: X\n    expr: topk(up)\n");
  RuleSet bad = RuleManager::load(options_);
  ASSERT_FALSE(bad.ok());
  m.recordReloadFailure(bad.errors);
  auto rules = nlohmann::json::parse(m.rulesJson());
  EXPECT_EQ(rules["lastReload"]["success"], false);
  EXPECT_NE(rules["lastReload"]["errors"][0].get<std::string>().find("wrong number of arguments"),
            std::string::npos);
  EXPECT_EQ(rules["groups"][0]["rules"][0]["name"], "Down") << "old rules keep running";
  EXPECT_EQ(storeValue("dbpulse_rules_last_reload_success", {}), 0.0);
}

TEST_F(RuleManagerTest, WarnsWhenARangeExceedsTheHistory) {
  writeRules("groups:\n- name: g\n  rules:\n  - alert: Leak\n    expr: deriv(m[1h]) > 0\n");
  options_.history_ms = 15 * 60'000;
  RuleManager m(store_, clock_);
  loadAndApply(m);
  auto rules = nlohmann::json::parse(m.rulesJson());
  ASSERT_EQ(rules["groups"][0]["warnings"].size(), 1u);
  EXPECT_NE(rules["groups"][0]["warnings"][0].get<std::string>().find("looks back 1h"),
            std::string::npos);
}

TEST_F(RuleManagerTest, ThreadEvaluatesOnItsIntervalAndStopsPromptly) {
  writeRules(
      "groups:\n- name: fast\n  interval: 50ms\n  rules:\n  - record: one\n"
      "    expr: vector(1)\n");
  SystemClock clock;
  SampleStore store(clock);
  RuleManager m(store, clock);
  RuleSet set = RuleManager::load(options_);
  ASSERT_TRUE(set.ok());
  m.apply(std::move(set), options_);
  m.start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int64_t evaluations = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    evaluations = nlohmann::json::parse(m.rulesJson())["groups"][0]["evaluations"];
    if (evaluations >= 4) break;
    std::this_thread::yield();
  }
  EXPECT_GE(evaluations, 4);
  const auto t0 = std::chrono::steady_clock::now();
  m.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
}

TEST_F(RuleManagerTest, FirstEvaluationWaitsForTheStartGate) {
  writeRules(
      "groups:\n- name: g\n  interval: 50ms\n  rules:\n  - record: one\n"
      "    expr: vector(1)\n");
  SystemClock clock;
  SampleStore store(clock);
  RuleManager m(store, clock);
  m.apply(RuleManager::load(options_), options_);
  std::atomic<int> asked{0};
  std::atomic<bool> ready{false};
  m.setStartGate(
      [&] {
        ++asked;
        return ready.load();
      },
      std::chrono::seconds(30));
  m.start();
  auto evaluations = [&] {
    return nlohmann::json::parse(m.rulesJson())["groups"][0]["evaluations"].get<int>();
  };
  auto waitFor = [](const std::function<bool()>& cond) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return cond();
  };
  ASSERT_TRUE(waitFor([&] { return asked >= 3; }));
  EXPECT_EQ(evaluations(), 0) << "no evaluation while the gate is closed";
  ready = true;
  EXPECT_TRUE(waitFor([&] { return evaluations() >= 1; }));
  m.stop();
}

}  // namespace
}  // namespace dbpulse::rules
