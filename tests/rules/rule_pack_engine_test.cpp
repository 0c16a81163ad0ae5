// The shipped rule pack (rules/default/*.yml) against dbpulse's own rule engine: every
// expression is inside the PromQL subset the engine implements, and every `for`,
// `keep_firing_for` and `interval` is a duration it reads.

#include <glob.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "rules/promql_parser.h"

namespace dbpulse::rules {
namespace {

const std::string kSourceDir = DBPULSE_SOURCE_DIR;

std::vector<std::string> rulePackFiles() {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob((kSourceDir + "/rules/default/*.yml").c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  return out;
}

TEST(RulePackEngineTest, EveryExpressionParsesInDbpulsesSubset) {
  const auto files = rulePackFiles();
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

}  // namespace
}  // namespace dbpulse::rules
