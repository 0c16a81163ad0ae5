// The shipped rule pack (rules/default/*.yml) against dbpulse's own rule engine:
// - every expression is inside the PromQL subset the engine implements;
// - every test file of tests/rules/*_test.yml, which `promtool test rules` passes (see
//   run_promtool.sh), passes through dbpulse's engine too: same input series, same
//   evaluation steps, same expected alerts with labels and annotations.

#include <glob.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "rules/evaluator.h"
#include "rules/promql_parser.h"
#include "rules/rule_engine.h"
#include "rules/rule_file.h"
#include "tests/rules/promtool_runner.h"
#include "tests/rules/promtool_test_file.h"

namespace dbpulse::rules {
namespace {

using testing::ActualAlert;
using testing::ActualSample;
using testing::EngineUnderTest;
using testing::FakeClock;
using testing::TestGroup;

const std::string kSourceDir = DBPULSE_SOURCE_DIR;

std::vector<std::string> globFiles(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  return out;
}

Labels withoutName(const Labels& labels) {
  Labels out;
  for (const auto& l : labels.items()) {
    if (l.name != kMetricNameLabel) out.set(l.name, l.value);
  }
  return out;
}

// dbpulse's engine behind the runner's interface: rule files loaded by loadRuleFiles(),
// every group stepped by evaluateGroup() at each evaluation time (as promtool evaluates
// every group at every step, whatever the group's own interval), firing alerts read from
// the groups' states, queries answered by evaluate().
class DbpulseEngine final : public EngineUnderTest {
 public:
  DbpulseEngine(SampleStore& store, const TestGroup& group, int64_t evaluation_interval_ms)
      : store_(store) {
    options_.default_interval_ms = evaluation_interval_ms;
    options_.external_labels = group.external_labels;
    options_.generator_url = group.external_url;
  }

  Status load(const std::vector<std::string>& rule_files,
              const std::vector<std::string>& group_eval_order) override {
    rules_ = loadRuleFiles(rule_files, "");
    if (!rules_.ok()) {
      std::string text;
      for (const auto& e : rules_.errors) text += "\n  " + e.toString();
      return invalidArgument("rule files do not load:" + text);
    }
    if (!group_eval_order.empty()) {
      std::stable_sort(rules_.groups.begin(), rules_.groups.end(),
                       [&](const RuleGroup& a, const RuleGroup& b) {
                         auto pos = [&](const std::string& n) {
                           return std::find(group_eval_order.begin(), group_eval_order.end(), n) -
                                  group_eval_order.begin();
                         };
                         return pos(a.name) < pos(b.name);
                       });
    }
    states_.assign(rules_.groups.size(), GroupState{});
    return okStatus();
  }

  bool definesAlert(std::string_view alertname) const override {
    for (const auto& g : rules_.groups) {
      for (const auto& r : g.rules) {
        if (r.kind == Rule::Kind::kAlerting && r.name == alertname) return true;
      }
    }
    return false;
  }

  Status evaluate(int64_t t_ms) override {
    for (size_t i = 0; i < rules_.groups.size(); ++i) {
      const RuleGroup& group = rules_.groups[i];
      GroupResult result = evaluateGroup(group, states_[i], store_, t_ms, options_);
      states_[i] = std::move(result.state);
      // promtool fails a test on any rule evaluation error; so does this runner.
      for (size_t r = 0; r < group.rules.size() && r < states_[i].rules.size(); ++r) {
        if (states_[i].rules[r].health == RuleHealth::kError) {
          return internalError(group.file + ": " + group.name + "/" + group.rules[r].name + ": " +
                               states_[i].rules[r].last_error);
        }
      }
    }
    return okStatus();
  }

  std::vector<ActualAlert> firingAlerts(std::string_view alertname) const override {
    std::vector<ActualAlert> out;
    for (size_t i = 0; i < rules_.groups.size(); ++i) {
      const RuleGroup& group = rules_.groups[i];
      for (size_t r = 0; r < group.rules.size() && r < states_[i].rules.size(); ++r) {
        if (group.rules[r].name != alertname) continue;
        for (const auto& [key, alert] : states_[i].rules[r].alerts) {
          if (alert.state != AlertState::kFiring) continue;
          ActualAlert a;
          a.labels = alert.labels;
          for (const auto& l : alert.annotations.items()) a.annotations[l.name] = l.value;
          out.push_back(std::move(a));
        }
      }
    }
    return out;
  }

  Result<std::vector<ActualSample>> query(std::string_view expr_text, int64_t t_ms) override {
    auto expr = parseExpr(expr_text);
    if (!expr.ok()) return expr.status();
    auto result = rules::evaluate(**expr, store_, t_ms, options_.eval);
    if (!result.ok()) return result.status();
    std::vector<ActualSample> out;
    if (result->type == ValueType::kScalar) {
      out.push_back({"", Labels{}, result->scalar});
      return out;
    }
    for (const auto& e : result->vector) {
      out.push_back({std::string(e.labels.get(kMetricNameLabel)), withoutName(e.labels), e.value});
    }
    return out;
  }

 private:
  SampleStore& store_;
  EngineOptions options_;
  RuleSet rules_;
  std::vector<GroupState> states_;
};

TEST(RulePackEngineTest, EveryExpressionParsesInDbpulsesSubset) {
  const auto files = globFiles(kSourceDir + "/rules/default/*.yml");
  ASSERT_GE(files.size(), 5u);
  size_t rules = 0;
  for (const auto& path : files) {
    const YAML::Node root = YAML::LoadFile(path);
    for (const auto& group : root["groups"]) {
      const std::string group_name = group["name"].as<std::string>();
      if (group["interval"]) {
        EXPECT_TRUE(parsePromDuration(group["interval"].as<std::string>()).ok())
            << path << ": group " << group_name;
      }
      for (const auto& rule : group["rules"]) {
        const std::string name =
            rule["alert"] ? rule["alert"].as<std::string>() : rule["record"].as<std::string>();
        const std::string where = path + ": " + group_name + "/" + name;
        auto expr = parseExpr(rule["expr"].as<std::string>());
        ASSERT_TRUE(expr.ok()) << where << ": " << expr.status().toString();
        EXPECT_EQ((*expr)->type, ValueType::kInstantVector) << where;
        for (const char* key : {"for", "keep_firing_for"}) {
          if (rule[key]) {
            EXPECT_TRUE(parsePromDuration(rule[key].as<std::string>()).ok()) << where << " " << key;
          }
        }
        ++rules;
      }
    }
  }
  EXPECT_GE(rules, 30u);
}

TEST(RulePackEngineTest, TheRulePackLoadsInDbpulsesEngine) {
  RuleSet set = loadRuleFiles({kSourceDir + "/rules/default/*.yml"}, "");
  for (const auto& e : set.errors) ADD_FAILURE() << e.toString();
  EXPECT_GE(set.groups.size(), 6u);
}

class PromtoolTestFileTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PromtoolTestFileTest, PassesThroughDbpulsesEngine) {
  auto file = testing::loadTestFile(GetParam());
  ASSERT_TRUE(file.ok()) << file.status().toString();
  const int64_t interval = file->evaluation_interval_ms;
  const auto failures = testing::runTestFile(
      *file, [&](SampleStore& store, const FakeClock&, const TestGroup& group) {
        return std::make_unique<DbpulseEngine>(store, group, interval);
      });
  for (const auto& f : failures) ADD_FAILURE() << f;
}

std::string testName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(info.param.rfind('/') + 1);
  name = name.substr(0, name.find('.'));
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(RulePack, PromtoolTestFileTest,
                         ::testing::ValuesIn(globFiles(kSourceDir + "/tests/rules/*_test.yml")),
                         testName);

}  // namespace
}  // namespace dbpulse::rules
