#include "rules/rule_engine.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "agent/core/sample.h"

namespace dbpulse::rules {
namespace {

using std::chrono::hours;

constexpr int64_t kT0 = 1'700'000'000'000;

class TestClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(now_ms_)); }
  void set(int64_t ms) { now_ms_ = ms; }

 private:
  int64_t now_ms_ = kT0;
};

int64_t toMs(WallTime t) { return toMillis(t); }

// A group from YAML, a store with controllable series, and a loop that evaluates the group
// at given times while carrying its state, as the RuleManager does.
class RuleEngineTest : public ::testing::Test {
 protected:
  RuleEngineTest() : store_(clock_, SampleStoreOptions{200}) {
    options_.default_interval_ms = 15'000;
    options_.resend_interval_ms = 60'000;
    options_.instance = "chat-0";
    options_.generator_url = "http://agent:9470";
  }

  void load(const std::string& rules_yaml) {
    RuleSet set = parseRuleFile("groups:\n- name: g\n  rules:\n" + rules_yaml, "test.yml");
    ASSERT_TRUE(set.ok()) << set.errors[0].toString();
    group_ = std::move(set.groups[0]);
  }

  // Sets name{labels} = value at `seconds` (written with a long staleness).
  void set(const std::string& name, Labels labels, double seconds, double value) {
    clock_.set(at(seconds));
    SampleBatch b;
    b.add(name, labels, value);
    store_.write("test:" + name + keyOf(labels), b, hours(1));
  }
  // Removes name{labels} from the store (the series is gone).
  void drop(const std::string& name, Labels labels) {
    store_.dropSource("test:" + name + keyOf(labels));
  }

  static std::string keyOf(const Labels& l) {
    std::string k;
    l.appendKey(k);
    return k;
  }
  static int64_t at(double seconds) { return kT0 + static_cast<int64_t>(seconds * 1000); }

  GroupResult evalAt(double seconds) {
    clock_.set(at(seconds));
    GroupResult r = evaluateGroup(group_, state_, store_, at(seconds), options_);
    state_ = r.state;
    for (const auto& n : r.notifications) sent_.push_back(n);
    return r;
  }

  std::vector<const Alert*> alerts(size_t rule = 0) const {
    std::vector<const Alert*> out;
    for (const auto& [k, a] : state_.rules.at(rule).alerts) out.push_back(&a);
    return out;
  }

  // ALERTS series in the store right now: alertstate by alertname.
  std::map<std::string, std::string> alertsSeries() {
    std::map<std::string, std::string> out;
    store_.visit("ALERTS", 0, [&](const Labels& l, const Point*, size_t) {
      out[std::string(l.get("alertname")) + std::string(l.get("job"))] = l.get("alertstate");
    });
    return out;
  }

  TestClock clock_;
  SampleStore store_;
  EngineOptions options_;
  RuleGroup group_;
  GroupState state_;
  std::vector<AlertNotification> sent_;
};

TEST_F(RuleEngineTest, PendingThenFiringThenResolved) {
  load("  - alert: Down\n    expr: up == 0\n    for: 1m\n    labels:\n      severity: page\n");
  set("up", {{"job", "db"}}, 0, 0);
  evalAt(0);
  ASSERT_EQ(alerts().size(), 1u);
  EXPECT_EQ(alerts()[0]->state, AlertState::kPending);
  EXPECT_EQ(alerts()[0]->labels,
            (Labels{{"alertname", "Down"}, {"job", "db"}, {"severity", "page"}}));
  EXPECT_EQ(alertsSeries(), (std::map<std::string, std::string>{{"Downdb", "pending"}}));
  EXPECT_TRUE(sent_.empty()) << "pending alerts are not sent";

  evalAt(45);
  EXPECT_EQ(alerts()[0]->state, AlertState::kPending);
  evalAt(60);  // for: 1m has elapsed
  EXPECT_EQ(alerts()[0]->state, AlertState::kFiring);
  EXPECT_EQ(alerts()[0]->fired_at_ms, at(60));
  EXPECT_EQ(alerts()[0]->active_at_ms, at(0));
  EXPECT_EQ(alertsSeries(), (std::map<std::string, std::string>{{"Downdb", "firing"}}));
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_FALSE(sent_[0].resolved);
  EXPECT_EQ(toMs(sent_[0].starts_at), at(60));
  EXPECT_EQ(toMs(sent_[0].ends_at), at(60) + 4 * 60'000);  // 4 x max(15s, 1m)
  EXPECT_EQ(sent_[0].labels.get("instance"), "chat-0");
  EXPECT_EQ(sent_[0].generator_url, "http://agent:9470/admin/rules#g");

  set("up", {{"job", "db"}}, 70, 1);
  auto r = evalAt(75);
  EXPECT_TRUE(r.alerts_changed);
  EXPECT_EQ(alerts()[0]->state, AlertState::kInactive);
  EXPECT_TRUE(alertsSeries().empty()) << "no ALERTS series for inactive alerts";
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_TRUE(sent_[1].resolved);
  EXPECT_EQ(toMs(sent_[1].starts_at), at(60));
  EXPECT_EQ(toMs(sent_[1].ends_at), at(75));
}

TEST_F(RuleEngineTest, ForZeroFiresAtOnce) {
  load("  - alert: Now\n    expr: up == 0\n");
  set("up", {}, 0, 0);
  evalAt(0);
  ASSERT_EQ(alerts().size(), 1u);
  EXPECT_EQ(alerts()[0]->state, AlertState::kFiring);
  EXPECT_EQ(sent_.size(), 1u);
}

TEST_F(RuleEngineTest, PendingAlertThatGoesAwayIsDropped) {
  load("  - alert: Down\n    expr: up == 0\n    for: 5m\n");
  set("up", {}, 0, 0);
  evalAt(0);
  set("up", {}, 10, 1);
  evalAt(15);
  EXPECT_TRUE(alerts().empty());
  EXPECT_TRUE(sent_.empty());
}

TEST_F(RuleEngineTest, FiringAlertIsResentEveryResendIntervalAndResolutionFor15Minutes) {
  load("  - alert: Down\n    expr: up == 0\n");
  set("up", {}, 0, 0);
  for (int t = 0; t <= 150; t += 15) evalAt(t);
  // Sent at 0, then when last_sent + 60s < now: 75, 150.
  ASSERT_EQ(sent_.size(), 3u);
  for (const auto& n : sent_) EXPECT_EQ(toMs(n.starts_at), at(0));
  EXPECT_EQ(toMs(sent_[1].ends_at), at(75) + 240'000);
  set("up", {}, 160, 1);
  sent_.clear();
  for (int t = 165; t <= 165 + 16 * 60; t += 15) evalAt(t);
  // Resolved at 165: sent then and re-sent every 75 s while kept (15 minutes).
  ASSERT_GE(sent_.size(), 12u);
  for (const auto& n : sent_) {
    EXPECT_TRUE(n.resolved);
    EXPECT_EQ(toMs(n.ends_at), at(165));
  }
  EXPECT_TRUE(alerts().empty()) << "deleted once kept 15 minutes";
}

TEST_F(RuleEngineTest, KeepFiringForHoldsAlertAfterConditionClears) {
  load("  - alert: Waiting\n    expr: waiting > 0\n    keep_firing_for: 1m\n");
  set("waiting", {}, 0, 3);
  evalAt(0);
  EXPECT_EQ(alerts()[0]->state, AlertState::kFiring);
  set("waiting", {}, 10, 0);
  evalAt(15);
  EXPECT_EQ(alerts()[0]->state, AlertState::kFiring);
  EXPECT_EQ(alerts()[0]->keep_firing_since_ms, at(15));
  evalAt(60);
  EXPECT_EQ(alerts()[0]->state, AlertState::kFiring);
  evalAt(75);  // 60 s after keep_firing_since
  EXPECT_EQ(alerts()[0]->state, AlertState::kInactive);
  EXPECT_EQ(alerts()[0]->resolved_at_ms, at(75));
}

TEST_F(RuleEngineTest, KeepFiringForResetsWhenConditionReturns) {
  load("  - alert: Waiting\n    expr: waiting > 0\n    keep_firing_for: 1m\n");
  set("waiting", {}, 0, 3);
  evalAt(0);
  set("waiting", {}, 10, 0);
  evalAt(15);
  set("waiting", {}, 20, 2);
  evalAt(30);
  EXPECT_EQ(alerts()[0]->keep_firing_since_ms, 0);
  EXPECT_EQ(alerts()[0]->fired_at_ms, at(0));
}

TEST_F(RuleEngineTest, ResolvedAlertThatReturnsStartsOverAsPending) {
  load("  - alert: Down\n    expr: up == 0\n    for: 30s\n");
  set("up", {}, 0, 0);
  evalAt(0);
  evalAt(30);
  EXPECT_EQ(alerts()[0]->state, AlertState::kFiring);
  set("up", {}, 40, 1);
  evalAt(45);
  EXPECT_EQ(alerts()[0]->state, AlertState::kInactive);
  set("up", {}, 50, 0);
  evalAt(60);
  EXPECT_EQ(alerts()[0]->state, AlertState::kPending);
  EXPECT_EQ(alerts()[0]->active_at_ms, at(60));
  EXPECT_EQ(alerts()[0]->resolved_at_ms, 0);
}

TEST_F(RuleEngineTest, TemplatesSeeLabelsAndValue) {
  load(R"(  - alert: Ratio
    expr: ratio > 0.9
    labels:
      where: "{{ $labels.db }}-x"
      dropped: "{{ $labels.missing_label_is_empty }}"
    annotations:
      summary: "{{ $labels.db }} at {{ $value | humanizePercentage }}"
      raw: "{{ $value }}"
)");
  set("ratio", {{"db", "chat"}}, 0, 0.955);
  evalAt(0);
  ASSERT_EQ(alerts().size(), 1u);
  const Alert& a = *alerts()[0];
  EXPECT_EQ(a.labels.get("where"), "chat-x");
  // A missing label expands to "" (missingkey=zero), and an empty label is no label.
  EXPECT_EQ(a.labels.get("dropped"), "");
  EXPECT_EQ(a.labels.size(), 3u);  // alertname, db, where
  EXPECT_EQ(a.annotations.get("summary"), "chat at 95.5%");
  EXPECT_EQ(a.annotations.get("raw"), "0.955");
  // The value and annotations follow the latest evaluation.
  set("ratio", {{"db", "chat"}}, 10, 0.97);
  evalAt(15);
  EXPECT_EQ(alerts()[0]->annotations.get("summary"), "chat at 97%");
  EXPECT_EQ(alerts()[0]->value, 0.97);
}

TEST_F(RuleEngineTest, RecordingRuleFeedsLaterRulesOfTheGroup) {
  load(R"(  - record: job:errors:sum
    expr: sum by (job) (errors)
    labels:
      recorded: "yes"
  - alert: ManyErrors
    expr: job:errors:sum > 5
)");
  set("errors", {{"job", "api"}, {"i", "1"}}, 0, 4);
  set("errors", {{"job", "api"}, {"i", "2"}}, 0, 3);
  evalAt(0);
  std::vector<std::pair<Labels, double>> recorded;
  store_.visit("job:errors:sum", 0, [&](const Labels& l, const Point* p, size_t n) {
    recorded.emplace_back(l, p[n - 1].value);
  });
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].first, (Labels{{"job", "api"}, {"recorded", "yes"}}));
  EXPECT_EQ(recorded[0].second, 7);
  ASSERT_EQ(alerts(1).size(), 1u);
  EXPECT_EQ(alerts(1)[0]->labels,
            (Labels{{"alertname", "ManyErrors"}, {"job", "api"}, {"recorded", "yes"}}));
  // A series no longer produced disappears from the store at once.
  drop("errors", {{"job", "api"}, {"i", "1"}});
  drop("errors", {{"job", "api"}, {"i", "2"}});
  evalAt(15);
  size_t left = 0;
  store_.visit("job:errors:sum", 0, [&](const Labels&, const Point*, size_t) { ++left; });
  EXPECT_EQ(left, 0u);
}

// The clock moves on while a group is evaluated. What a recording rule writes is stamped
// at the evaluation time, as in Prometheus, so the alert after it sees it at its first
// evaluation: the state of an alert restored as firing survives a restart.
TEST_F(RuleEngineTest, RecordedSeriesAreStampedAtTheEvaluationTime) {
  load(R"(  - record: job:errors:sum
    expr: sum by (job) (errors)
  - alert: ManyErrors
    expr: job:errors:sum > 5
    for: 1m
)");
  set("errors", {{"job", "api"}}, 0, 9);
  Alert restored;
  restored.labels = Labels{{"alertname", "ManyErrors"}, {"job", "api"}};
  restored.state = AlertState::kFiring;
  restored.active_at_ms = at(-600);
  restored.fired_at_ms = at(-540);
  state_.rules.resize(2);
  state_.rules[1].alerts[keyOf(restored.labels)] = restored;

  clock_.set(at(10) + 1);  // the store's clock, 1 ms past the evaluation time
  GroupResult r = evaluateGroup(group_, state_, store_, at(10), options_);
  state_ = r.state;
  int64_t recorded_at = 0;
  store_.visit("job:errors:sum", 0,
               [&](const Labels&, const Point* p, size_t n) { recorded_at = p[n - 1].t_ms; });
  EXPECT_EQ(recorded_at, at(10));
  ASSERT_EQ(alerts(1).size(), 1u);
  EXPECT_EQ(alerts(1)[0]->state, AlertState::kFiring);
  EXPECT_EQ(alerts(1)[0]->active_at_ms, at(-600));
}

TEST_F(RuleEngineTest, FailingRuleIsCountedAndOthersGoOn) {
  load(R"(  - alert: Broken
    expr: a / on(job) b
  - alert: Fine
    expr: vector(1)
)");
  set("a", {{"job", "x"}, {"i", "1"}}, 0, 1);
  set("b", {{"job", "x"}, {"k", "1"}}, 0, 1);
  set("b", {{"job", "x"}, {"k", "2"}}, 0, 1);
  auto r = evalAt(0);
  EXPECT_EQ(r.state.rules[0].health, RuleHealth::kError);
  EXPECT_NE(r.state.rules[0].last_error.find("many-to-many"), std::string::npos);
  EXPECT_EQ(r.state.rule_failures, 1u);
  EXPECT_EQ(r.state.rules[1].health, RuleHealth::kOk);
  EXPECT_EQ(alerts(1).size(), 1u);
  EXPECT_EQ(r.state.evaluations, 1u);
}

TEST_F(RuleEngineTest, LabelsThatCollapseSeriesAreAnError) {
  load("  - alert: A\n    expr: m > 0\n    labels:\n      i: same\n");
  set("m", {{"i", "1"}}, 0, 1);
  set("m", {{"i", "2"}}, 0, 1);
  auto r = evalAt(0);
  EXPECT_EQ(r.state.rules[0].health, RuleHealth::kError);
  EXPECT_NE(r.state.rules[0].last_error.find("same labelset after applying alert labels"),
            std::string::npos);
}

TEST_F(RuleEngineTest, GroupLimitFailsTheRule) {
  RuleSet set_ = parseRuleFile(
      "groups:\n- name: g\n  limit: 1\n  rules:\n  - alert: A\n    expr: m > 0\n", "t.yml");
  ASSERT_TRUE(set_.ok());
  group_ = set_.groups[0];
  set("m", {{"i", "1"}}, 0, 1);
  set("m", {{"i", "2"}}, 0, 1);
  auto r = evalAt(0);
  EXPECT_EQ(r.state.rules[0].last_error, "exceeded limit of 1 with 2 alerts");
  EXPECT_TRUE(alerts().empty());
}

TEST_F(RuleEngineTest, AlertsForStateCarriesActiveAt) {
  load("  - alert: Down\n    expr: up == 0\n    for: 1m\n");
  set("up", {{"job", "db"}}, 0, 0);
  evalAt(0);
  evalAt(15);
  double for_state = 0;
  store_.visit("ALERTS_FOR_STATE", 0, [&](const Labels& l, const Point* p, size_t n) {
    EXPECT_EQ(l, (Labels{{"alertname", "Down"}, {"job", "db"}}));
    for_state = p[n - 1].value;
  });
  EXPECT_EQ(for_state, static_cast<double>(kT0 / 1000));
}

TEST_F(RuleEngineTest, ScalarResultIsOneAlertWithoutLabels) {
  load("  - alert: Scalar\n    expr: time() > bool 0\n");
  evalAt(0);
  ASSERT_EQ(alerts().size(), 1u);
  EXPECT_EQ(alerts()[0]->labels, (Labels{{"alertname", "Scalar"}}));
  EXPECT_EQ(alerts()[0]->value, 1);
}

TEST(StepAlertingRuleTest, IsAPureFunctionOfResultAndTime) {
  RuleSet set = parseRuleFile(
      "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n    for: 10s\n", "t.yml");
  ASSERT_TRUE(set.ok());
  const Rule& rule = set.groups[0].rules[0];
  EngineOptions options;
  RuleState state;
  Vector result{Element{Labels{{"__name__", "x"}, {"k", "v"}}, 2}};
  ASSERT_TRUE(stepAlertingRule(rule, result, 1000, 0, options, state).ok());
  ASSERT_EQ(state.alerts.size(), 1u);
  const Alert& a = state.alerts.begin()->second;
  EXPECT_EQ(a.labels, (Labels{{"alertname", "A"}, {"k", "v"}}));
  EXPECT_EQ(a.state, AlertState::kPending);
  ASSERT_TRUE(stepAlertingRule(rule, result, 11'000, 0, options, state).ok());
  EXPECT_EQ(state.alerts.begin()->second.state, AlertState::kFiring);
  ASSERT_TRUE(stepAlertingRule(rule, {}, 12'000, 0, options, state).ok());
  EXPECT_EQ(state.alerts.begin()->second.state, AlertState::kInactive);
  ASSERT_TRUE(stepAlertingRule(rule, {}, 12'000 + kResolvedRetentionMs, 0, options, state).ok());
  EXPECT_EQ(state.alerts.size(), 1u) << "kept for exactly the retention";
  ASSERT_TRUE(stepAlertingRule(rule, {}, 12'001 + kResolvedRetentionMs, 0, options, state).ok());
  EXPECT_TRUE(state.alerts.empty());
}

TEST(RuleIdTest, StableAcrossReordering) {
  RuleSet set = parseRuleFile(
      "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: x\n  - record: r\n    expr: x\n"
      "  - alert: A\n    expr: y\n",
      "t.yml");
  ASSERT_TRUE(set.ok());
  const RuleGroup& g = set.groups[0];
  EXPECT_EQ(ruleId(g, 0), "alert:A#0");
  EXPECT_EQ(ruleId(g, 1), "record:r#0");
  EXPECT_EQ(ruleId(g, 2), "alert:A#1");
  EXPECT_EQ(ruleSource(g, 1), "rule:t.yml#g/record:r#0");
}

}  // namespace
}  // namespace dbpulse::rules
