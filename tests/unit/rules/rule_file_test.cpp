#include "rules/rule_file.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace dbpulse::rules {
namespace {

TEST(RuleFileTest, ParsesGroupsAndRules) {
  const char* yaml = R"(groups:
  - name: postgres
    interval: 30s
    limit: 10
    rules:
      - record: job:pg_up:sum
        expr: sum by (job) (pg_up)
        labels:
          source: dbpulse
      - alert: PostgresDown
        expr: pg_up == 0
        for: 1m
        keep_firing_for: 5m
        labels:
          severity: critical
          team: "{{ $labels.team }}"
        annotations:
          summary: "PostgreSQL {{ $labels.instance }} is down"
          description: value {{ $value }}
  - name: empty
    rules: []
)";
  RuleSet set = parseRuleFile(yaml, "pg.yml");
  ASSERT_TRUE(set.ok()) << set.errors[0].toString();
  ASSERT_EQ(set.groups.size(), 2u);
  const RuleGroup& g = set.groups[0];
  EXPECT_EQ(g.name, "postgres");
  EXPECT_EQ(g.file, "pg.yml");
  EXPECT_EQ(g.key(), "pg.yml#postgres");
  EXPECT_EQ(g.interval_ms, 30'000);
  EXPECT_EQ(g.limit, 10);
  ASSERT_EQ(g.rules.size(), 2u);
  EXPECT_EQ(g.rules[0].kind, Rule::Kind::kRecording);
  EXPECT_EQ(g.rules[0].name, "job:pg_up:sum");
  ASSERT_NE(g.rules[0].expr, nullptr);
  const Rule& a = g.rules[1];
  EXPECT_EQ(a.kind, Rule::Kind::kAlerting);
  EXPECT_EQ(a.name, "PostgresDown");
  EXPECT_EQ(a.expr_text, "pg_up == 0");
  EXPECT_EQ(a.for_ms, 60'000);
  EXPECT_EQ(a.keep_firing_for_ms, 300'000);
  EXPECT_EQ(a.line, 10);
  ASSERT_EQ(a.labels.size(), 2u);
  EXPECT_EQ(a.labels[0].name, "severity");
  EXPECT_EQ(a.labels[1].name, "team");
  EXPECT_FALSE(a.labels[1].tmpl.isConstant());
  ASSERT_EQ(a.annotations.size(), 2u);
  EXPECT_EQ(a.annotations[0].name, "description");
  EXPECT_EQ(set.groups[1].interval_ms, 0);
  EXPECT_TRUE(set.groups[1].rules.empty());
}

TEST(RuleFileTest, EmptyFileHasNoGroups) {
  EXPECT_TRUE(parseRuleFile("", "e.yml").ok());
  EXPECT_TRUE(parseRuleFile("groups:\n", "e.yml").ok());
  EXPECT_TRUE(parseRuleFile("# only a comment\n", "e.yml").ok());
}

struct ErrorCase {
  const char* yaml;
  const char* error;  // the whole first error, "FILE:LINE:COL: message" (prefix)
};

class RuleFileRejectsTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RuleFileRejectsTest, NamesFileGroupRuleAndConstruct) {
  const auto& c = GetParam();
  RuleSet set = parseRuleFile(c.yaml, "r.yml");
  ASSERT_FALSE(set.ok()) << c.yaml;
  const std::string got = set.errors[0].toString();
  EXPECT_EQ(got.substr(0, std::string(c.error).size()), c.error) << c.yaml << "\n -> " << got;
}

INSTANTIATE_TEST_SUITE_P(
    RuleFile, RuleFileRejectsTest,
    ::testing::Values(
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: topk(m)\n",
                  "r.yml:5:11: group \"g\", alert \"A\": expr: 1:1: parse error: wrong number of "
                  "arguments for aggregate expression provided, expected 2, got 1"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: |\n      sum(\n        "
                  "label_replace(m, \"a\", \"b\", \"c\"))\n",
                  "r.yml:5:11: group \"g\", alert \"A\": expr: 2:3: parse error: expected 5 "
                  "argument(s) in call to \"label_replace\", got 4"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: |\n      up\n"
                  "        or m{job=~'(a)\\\\1'}\n",
                  "r.yml:5:11: group \"g\", alert \"A\": expr: 2:13: parse error: invalid regular "
                  "expression \"(a)\\1\": invalid escape sequence: \\1"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    fore: 5m\n",
                  "r.yml:6:5: group \"g\", alert \"A\": field fore not found in a rule (known: "
                  "record, alert, expr, for, keep_firing_for, labels, annotations)"},
        ErrorCase{"groups:\n- name: g\n  interval: 1m\n  evaluation: 1m\n  rules: []\n",
                  "r.yml:4:3: group \"g\": field evaluation not found in a group"},
        ErrorCase{"group:\n- name: g\n", "r.yml:1:1: field group not found in the rule file"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    record: b\n    expr: up\n",
                  "r.yml:4:5: group \"g\", rule 1: only one of 'record' and 'alert' must be set"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - expr: up\n",
                  "r.yml:4:5: group \"g\", rule 1: one of 'record' or 'alert' must be set"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    for: 1m\n",
                  "r.yml:4:5: group \"g\", alert \"A\": field 'expr' must be set in rule"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    for: 5x\n",
                  "r.yml:6:10: group \"g\", alert \"A\": for: not a valid duration string: \"5x\""},
        ErrorCase{"groups:\n- name: g\n  interval: soon\n  rules: []\n",
                  "r.yml:3:13: group \"g\": interval: not a valid duration string"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n",
                  "r.yml:6:10: group \"g\", record \"r\": invalid field 'for' in recording rule"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    annotations:\n"
                  "      a: b\n",
                  "r.yml:7:7: group \"g\", record \"r\": invalid field 'annotations' in recording "
                  "rule"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - record: bad-name\n    expr: up\n",
                  "r.yml:4:13: group \"g\", record \"bad-name\": invalid recording rule name"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n"
                  "      bad-label: x\n",
                  "r.yml:7:7: group \"g\", alert \"A\": invalid label name: bad-label"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    labels:\n"
                  "      __name__: x\n",
                  "r.yml:7:7: group \"g\", alert \"A\": invalid label name: __name__"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    annotations:\n"
                  "      summary: '{{ nope \"up\" }}'\n",
                  "r.yml:7:16: group \"g\", alert \"A\": annotation \"summary\": template: 4: "
                  "function \"nope\" not defined"},
        ErrorCase{"groups:\n- name: g\n  rules: []\n- name: g\n  rules: []\n",
                  "r.yml:4:9: groupname: \"g\" is repeated in the same file"},
        ErrorCase{"groups:\n- rules: []\n", "r.yml:2:3: Groupname must not be empty"},
        ErrorCase{"groups:\n- name: g\n  limit: -1\n  rules: []\n",
                  "r.yml:3:10: group \"g\": limit must be a non-negative integer"},
        ErrorCase{"groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    expr: down\n",
                  "r.yml:6:5: group \"g\", alert \"A\": mapping key \"expr\" already defined"},
        ErrorCase{"groups:\n- name: g\n  rules: {a: b}\n",
                  "r.yml:3:10: group \"g\": rules must be a list"},
        ErrorCase{"groups: [\n", "r.yml:2:1: end of sequence flow not found"},
        ErrorCase{"- just a list\n", "r.yml:1:1: a rule file must be a map"}));

TEST(RuleFileTest, ReportsEveryProblemNotJustTheFirst) {
  RuleSet set = parseRuleFile(
      "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: topk(x)\n  - alert: B\n"
      "    expr: up\n    for: forever\n",
      "r.yml");
  ASSERT_EQ(set.errors.size(), 2u);
  EXPECT_NE(set.errors[0].message.find("wrong number of arguments"), std::string::npos);
  EXPECT_NE(set.errors[1].message.find("alert \"B\": for:"), std::string::npos);
}

class RuleFilesOnDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dbpulse-rule-files-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ / "rules");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }
  std::filesystem::path dir_;
};

TEST_F(RuleFilesOnDiskTest, ExpandsGlobsRelativeToBaseDirInOrder) {
  write("rules/b.yml", "groups:\n- name: b\n  rules: []\n");
  write("rules/a.yml", "groups:\n- name: a\n  rules: []\n");
  write("extra.yml", "groups:\n- name: extra\n  rules: []\n");
  RuleSet set = loadRuleFiles(
      {"rules/*.yml", (dir_ / "extra.yml").string(), "rules/a.yml", "none/*.yml"}, dir_.string());
  ASSERT_TRUE(set.ok()) << set.errors[0].toString();
  ASSERT_EQ(set.groups.size(), 3u);
  EXPECT_EQ(set.groups[0].name, "a");
  EXPECT_EQ(set.groups[1].name, "b");
  EXPECT_EQ(set.groups[2].name, "extra");
  EXPECT_EQ(set.groups[0].file, (dir_ / "rules/a.yml").string());
  EXPECT_EQ(set.files.size(), 3u);
}

TEST_F(RuleFilesOnDiskTest, MissingPlainPathIsAnError) {
  RuleSet set = loadRuleFiles({"rules/typo.yml"}, dir_.string());
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_NE(set.errors[0].toString().find("rule file not found"), std::string::npos);
}

TEST_F(RuleFilesOnDiskTest, ErrorsNameTheFile) {
  write("rules/bad.yml", "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up(\n");
  RuleSet set = loadRuleFiles({"rules/*.yml"}, dir_.string());
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.errors[0].file, (dir_ / "rules/bad.yml").string());
  EXPECT_EQ(set.errors[0].line, 5);
}

TEST(RuleFileTest, RefusesDeepNestingWithAPosition) {
  std::string deep_yaml = "groups: " + std::string(40, '[') + "\n";
  RuleSet set = parseRuleFile(deep_yaml, "d.yml");
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_EQ(set.errors[0].toString(), "d.yml:1:41: nested too deeply");

  std::string expr = std::string(60, '(') + "up" + std::string(60, ')');
  set = parseRuleFile("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: " + expr + "\n",
                      "d.yml");
  ASSERT_EQ(set.errors.size(), 1u);
  EXPECT_NE(set.errors[0].message.find("nested too deeply"), std::string::npos);
}

// Rule files must parse on small thread stacks (CivetWeb, the HTTP server until 2026-12, gave
// its handler threads about 100 KiB); the agent runs reloads on a full-size stack anyway.
TEST(RuleFileTest, LoadsOnASmallStack) {
  struct Job {
    std::string dir;
    size_t groups = 0;
    size_t errors = 0;
  } job;
  job.dir = (std::filesystem::path(DBPULSE_SOURCE_DIR) / "rules/default").string();
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  // ASan's redzones make every frame several times larger: scale the stack with them.
#if defined(__SANITIZE_ADDRESS__)
  pthread_attr_setstacksize(&attr, 16 * 96 * 1024);
#else
  pthread_attr_setstacksize(&attr, 96 * 1024);
#endif
  pthread_t thread;
  auto body = [](void* arg) -> void* {
    auto* j = static_cast<Job*>(arg);
    RuleSet set = loadRuleFiles({"*.yml"}, j->dir);
    std::string nested = std::string(47, '(') + "up" + std::string(47, ')');
    RuleSet deep = parseRuleFile("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: " + nested +
                                     "\n" + "    annotations: {a: \"{{ (((($value)))) }}\"}\n",
                                 "deep.yml");
    j->groups = set.groups.size() + deep.groups.size();
    j->errors = set.errors.size() + deep.errors.size();
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, body, &job), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_EQ(job.errors, 0u);
  EXPECT_GE(job.groups, 1u);
}

// Every shipped rule (rules/default/*.yml) stays inside the subset the engine evaluates.
TEST(RuleFileTest, ShippedRulePackLoads) {
  const auto pack = std::filesystem::path(DBPULSE_SOURCE_DIR) / "rules/default";
  ASSERT_TRUE(std::filesystem::exists(pack)) << "no rule pack at " << pack;
  RuleSet set = loadRuleFiles({"*.yml"}, pack.string());
  for (const auto& e : set.errors) ADD_FAILURE() << e.toString();
  EXPECT_FALSE(set.groups.empty());
}

}  // namespace
}  // namespace dbpulse::rules
