// The config's rule-related parts: [agent] history and rule files validated with the config.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "agent/config.h"

namespace dbpulse {
namespace {

class ConfigRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dbpulse-config-rules-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "rules");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }

  LoadResult load(const std::string& toml) {
    write("dbpulse.toml", toml);
    return loadConfigFile((dir_ / "dbpulse.toml").string(), {});
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigRulesTest, HistoryDefaultsTo15MinutesAndParses) {
  auto r = load("");
  ASSERT_TRUE(r.config) << r.errors[0].toString();
  EXPECT_EQ(r.config->agent.history, Duration(15 * 60'000));
  r = load("[agent]\nhistory = \"1h\"\n");
  ASSERT_TRUE(r.config) << r.errors[0].toString();
  EXPECT_EQ(r.config->agent.history, Duration(3'600'000));
  r = load("[agent]\nhistory = \"0s\"\n");
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.errors[0].toString().find("agent.history"), std::string::npos);
}

TEST_F(ConfigRulesTest, RuleFilesAreResolvedAgainstTheConfigDirectoryAndValidated) {
  write("rules/ok.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n");
  auto r = load("[rules]\nfiles = [\"rules/*.yml\"]\n");
  ASSERT_TRUE(r.config) << r.errors[0].toString();

  write("rules/bad.yml", "groups:\n- name: g\n  rules:\n  - alert: B\n    expr: topk(up)\n");
  r = load("[rules]\nfiles = [\"rules/*.yml\"]\n");
  ASSERT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].toString(),
            (dir_ / "rules/bad.yml").string() +
                ":5:11: group \"g\", alert \"B\": expr: 1:1: parse error: wrong number of "
                "arguments for aggregate expression provided, expected 2, got 1");
}

TEST_F(ConfigRulesTest, MissingRuleFileNamedLiterallyIsAnError) {
  auto r = load("[rules]\nfiles = [\"rules/nope.yml\"]\n");
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.errors[0].toString().find("rule file not found"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse
