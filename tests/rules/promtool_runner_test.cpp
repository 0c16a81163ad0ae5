// Tests of the promtool test-file reader and runner (tests/rules/promtool_*.h), and a check
// that the shipped rule pack is covered: every alert in rules/default/*.yml has a firing
// and a non-firing case in tests/rules/*_test.yml.

#include "tests/rules/promtool_runner.h"

#include <glob.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/rules/promtool_test_file.h"

namespace dbpulse::rules::testing {
namespace {

using Kind = SeriesValue::Kind;

std::vector<std::string> globFiles(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  return out;
}

// A value list written as promtool prints it: numbers, "_" and "stale".
std::string render(const std::vector<SeriesValue>& values) {
  std::string out;
  for (const auto& v : values) {
    if (!out.empty()) out += ' ';
    if (v.kind == Kind::kOmitted) {
      out += '_';
    } else if (v.kind == Kind::kStale) {
      out += "stale";
    } else {
      std::ostringstream s;
      s << v.value;
      out += s.str();
    }
  }
  return out;
}

// ---- expanding notation ----

struct ExpandCase {
  const char* text;
  const char* expanded;
};

TEST(ExpandSeriesValuesTest, ExpandsPromtoolNotation) {
  const ExpandCase cases[] = {
      {"1 2 3", "1 2 3"},
      {"0+10x3", "0 10 20 30"},
      {"-2+4x3", "-2 2 6 10"},  // the documentation's examples
      {" 1-2x4", "1 -1 -3 -5 -7"},
      {" 1x4", "1 1 1 1 1"},
      {" 1 _x3 stale", "1 _ _ _ stale"},
      {"_", "_"},
      {"5 _ 7", "5 _ 7"},
      {"0x4", "0 0 0 0 0"},  // not hexadecimal
      {"1e3+1e2x2", "1000 1100 1200"},
      {"1.5e-1", "0.15"},
      {"0+57x2 0+30x1", "0 57 114 0 30"},  // a counter reset
      {"", ""},
  };
  for (const auto& c : cases) {
    auto got = expandSeriesValues(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status().toString();
    EXPECT_EQ(render(*got), c.expanded) << c.text;
  }
}

TEST(ExpandSeriesValuesTest, ReadsInfinitiesAndNaN) {
  auto got = expandSeriesValues("Inf -Inf +Inf NaN nan");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 5u);
  EXPECT_EQ((*got)[0].value, std::numeric_limits<double>::infinity());
  EXPECT_EQ((*got)[1].value, -std::numeric_limits<double>::infinity());
  EXPECT_EQ((*got)[2].value, std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan((*got)[3].value));
  EXPECT_TRUE(std::isnan((*got)[4].value));
}

TEST(ExpandSeriesValuesTest, AddsStepsByRepeatedAdditionLikePromtool) {
  // 0.1 + 0.1 + 0.1 != 0.3 in binary floating point; promtool adds, so must we.
  auto got = expandSeriesValues("0+0.1x3");
  ASSERT_TRUE(got.ok());
  double v = 0;
  for (int i = 0; i < 3; ++i) v += 0.1;
  EXPECT_EQ((*got)[3].value, v);
  EXPECT_NE((*got)[3].value, 0.3);
}

TEST(ExpandSeriesValuesTest, RejectsMalformedItemsNamingThem) {
  for (const char* bad : {"abc", "1+x3", "1+2", "1x", "_x", "_3", "stalex2", "1+2x-1", "1x3y",
                          "1,2", "0+1x99999999", "0x1f"}) {
    auto got = expandSeriesValues(std::string("1 ") + bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_NE(got.status().message().find(bad), std::string::npos) << got.status().message();
  }
}

// ---- series names ----

TEST(ParseSeriesIdTest, ReadsNameAndLabels) {
  auto id = parseSeriesId(R"(http_requests_total{method="GET", status_code="500",})");
  ASSERT_TRUE(id.ok()) << id.status().toString();
  EXPECT_EQ(id->name, "http_requests_total");
  EXPECT_EQ(id->labels, (Labels{{"method", "GET"}, {"status_code", "500"}}));

  auto plain = parseSeriesId("pg_up");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->name, "pg_up");
  EXPECT_TRUE(plain->labels.empty());

  auto colon = parseSeriesId("job:rate5m{ l = 'v' }");
  ASSERT_TRUE(colon.ok()) << colon.status().toString();
  EXPECT_EQ(colon->name, "job:rate5m");
  EXPECT_EQ(colon->labels.get("l"), "v");
}

TEST(ParseSeriesIdTest, TakesTheNameFromDunderNameAndDropsEmptyLabels) {
  auto id = parseSeriesId(R"({__name__="up", job="chat", empty=""})");
  ASSERT_TRUE(id.ok()) << id.status().toString();
  EXPECT_EQ(id->name, "up");
  EXPECT_EQ(id->labels, (Labels{{"job", "chat"}}));
}

TEST(ParseSeriesIdTest, UnescapesValues) {
  auto id = parseSeriesId(R"(x{a="say \"hi\"\n", b="back\\slash"})");
  ASSERT_TRUE(id.ok()) << id.status().toString();
  EXPECT_EQ(id->labels.get("a"), "say \"hi\"\n");
  EXPECT_EQ(id->labels.get("b"), "back\\slash");
  EXPECT_EQ(formatSeriesId(*id), R"(x{a="say \"hi\"\n", b="back\\slash"})");
}

TEST(ParseSeriesIdTest, RejectsMalformedNames) {
  for (const char* bad : {R"(x{a=b})", R"(x{a="b")", R"(x{a="1",a="2"})", "x y", R"(x{="v"})",
                          R"(x{a="\q"})", "", R"(up{__name__="down"})", "{}"}) {
    EXPECT_FALSE(parseSeriesId(bad).ok()) << bad;
  }
}

// ---- test files ----

TEST(ParseTestFileTest, ReadsTheFormatWithPromtoolDefaults) {
  const char* yaml = R"(
rule_files: []
tests:
  - input_series:
      - series: 'up{job="a"}'
        values: '1 0x2'
    alert_rule_test:
      - eval_time: 24h16m
        alertname: Down
        exp_alerts:
          - exp_labels: {severity: critical, job: a}
            exp_annotations:
              summary: "job a is down"
      - eval_time: 0
        alertname: Down
        exp_alerts:
    promql_expr_test:
      - expr: up
        eval_time: 90s
        exp_samples:
          - labels: 'up{job="a"}'
            value: 0
  - interval: 15s
    name: second
)";
  auto file = parseTestFile(yaml, "");
  ASSERT_TRUE(file.ok()) << file.status().toString();
  EXPECT_EQ(file->evaluation_interval_ms, 60'000);
  ASSERT_EQ(file->tests.size(), 2u);
  const TestGroup& g = file->tests[0];
  EXPECT_EQ(g.interval_ms, 60'000);  // defaults to evaluation_interval
  ASSERT_EQ(g.input_series.size(), 1u);
  EXPECT_EQ(g.input_series[0].id.name, "up");
  EXPECT_EQ(render(g.input_series[0].values), "1 0 0 0");
  ASSERT_EQ(g.alert_rule_tests.size(), 2u);
  EXPECT_EQ(g.alert_rule_tests[0].eval_time_ms, (24 * 60 + 16) * 60'000);
  ASSERT_EQ(g.alert_rule_tests[0].exp_alerts.size(), 1u);
  EXPECT_EQ(g.alert_rule_tests[0].exp_alerts[0].labels,
            (Labels{{"job", "a"}, {"severity", "critical"}}));
  EXPECT_EQ(g.alert_rule_tests[0].exp_alerts[0].annotations.at("summary"), "job a is down");
  EXPECT_EQ(g.alert_rule_tests[1].eval_time_ms, 0);
  EXPECT_TRUE(g.alert_rule_tests[1].exp_alerts.empty());
  ASSERT_EQ(g.promql_expr_tests.size(), 1u);
  EXPECT_EQ(g.promql_expr_tests[0].eval_time_ms, 90'000);
  EXPECT_EQ(g.promql_expr_tests[0].exp_samples[0].series.labels.get("job"), "a");
  EXPECT_EQ(file->tests[1].interval_ms, 15'000);
  EXPECT_EQ(file->tests[1].name, "second");
}

TEST(ParseTestFileTest, RejectsUnknownKeysLikePromtool) {
  auto file = parseTestFile("tests:\n  - intervall: 1m\n", "");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("intervall"), std::string::npos);
  EXPECT_NE(file.status().message().find("line 2"), std::string::npos);
}

TEST(ParseTestFileTest, ReportsBadValuesWithTheirLine) {
  auto file = parseTestFile(
      "tests:\n  - input_series:\n      - series: 'up'\n        values: '1 2 x'\n", "");
  ASSERT_FALSE(file.ok());
  EXPECT_NE(file.status().message().find("line 4"), std::string::npos) << file.status().message();

  EXPECT_FALSE(parseTestFile("evaluation_interval: 15x\n", "").ok());
  EXPECT_FALSE(parseTestFile("tests: [\n", "").ok());  // YAML syntax error, no exception
}

TEST(ParseTestFileTest, ResolvesRuleFilesAgainstTheTestFileFolder) {
  const std::string dir =
      ::testing::TempDir() + "promtool_runner_test_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir + "/rules");
  std::ofstream(dir + "/rules/a.yml") << "groups: []\n";
  std::ofstream(dir + "/rules/b.yml") << "groups: []\n";
  std::ofstream(dir + "/t_test.yml") << "rule_files: ['rules/*.yml', 'rules/a.yml']\n";

  auto file = loadTestFile(dir + "/t_test.yml");
  ASSERT_TRUE(file.ok()) << file.status().toString();
  EXPECT_EQ(file->rule_files, (std::vector<std::string>{dir + "/rules/a.yml", dir + "/rules/b.yml",
                                                        dir + "/rules/a.yml"}));
  std::ofstream(dir + "/u_test.yml") << "rule_files: ['rules/missing.yml']\n";
  auto missing = loadTestFile(dir + "/u_test.yml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.yml"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// ---- feeding the store ----

double latest(const SampleStore& store, const std::string& name, const Labels& labels,
              bool* present) {
  *present = false;
  auto snap = store.snapshot();
  const SnapshotFamily* f = snap->family(name);
  if (f == nullptr) return 0;
  for (const auto& s : f->series) {
    if (s.labels == labels) {
      *present = true;
      return s.value;
    }
  }
  return 0;
}

TEST(SeriesFeederTest, WritesSamplesAtTheirTimesAndKeepsThemForTheLookback) {
  auto values = expandSeriesValues("1 2 _ _ _ _ _ _ 9");
  ASSERT_TRUE(values.ok());
  std::vector<InputSeries> series = {{{"x", Labels{{"a", "b"}}}, *values}};
  FakeClock clock{0};
  SampleStore store(clock, SampleStoreOptions{SeriesFeeder::historyPointsFor(series)});
  SeriesFeeder feeder(series, 60'000, store, clock);
  bool present = false;

  feeder.feedUntil(30'000);
  EXPECT_EQ(latest(store, "x", Labels{{"a", "b"}}, &present), 1);
  EXPECT_TRUE(present);
  EXPECT_EQ(clock.wallMillis(), 30'000);

  feeder.feedUntil(6 * 60'000);  // the sample at 1m is exactly 5m old: still visible
  EXPECT_EQ(latest(store, "x", Labels{{"a", "b"}}, &present), 2);
  EXPECT_TRUE(present);
  feeder.feedUntil(6 * 60'000 + 1);  // past the lookback
  latest(store, "x", Labels{{"a", "b"}}, &present);
  EXPECT_FALSE(present);

  feeder.feedUntil(8 * 60'000);
  EXPECT_EQ(latest(store, "x", Labels{{"a", "b"}}, &present), 9);
  EXPECT_TRUE(present);
  const auto points = store.history("x", Labels{{"a", "b"}}, 0);
  ASSERT_EQ(points.size(), 1u);  // the series expired in between, history with it
  EXPECT_EQ(points[0].t_ms, 8 * 60'000);
}

TEST(SeriesFeederTest, KeepsTheWholeHistoryOfTheLongestSeries) {
  auto values = expandSeriesValues("0+1x99");
  ASSERT_TRUE(values.ok());
  std::vector<InputSeries> series = {{{"c", Labels{}}, *values}};
  FakeClock clock{0};
  SampleStore store(clock, SampleStoreOptions{SeriesFeeder::historyPointsFor(series)});
  SeriesFeeder feeder(series, 15'000, store, clock);
  feeder.feedUntil(99 * 15'000);
  const auto points = store.history("c", Labels{}, 0);
  ASSERT_EQ(points.size(), 100u);
  EXPECT_EQ(points.front().t_ms, 0);
  EXPECT_EQ(points.back().t_ms, 99 * 15'000);
  EXPECT_EQ(points.back().value, 99);
}

TEST(SeriesFeederTest, StaleMarkerEndsTheSeriesAtOnce) {
  auto a = expandSeriesValues("1 1 stale 1");
  auto b = expandSeriesValues("5 5 5 5");
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<InputSeries> series = {{{"a", Labels{}}, *a}, {{"b", Labels{}}, *b}};
  FakeClock clock{0};
  SampleStore store(clock);
  SeriesFeeder feeder(series, 60'000, store, clock);
  bool present = false;
  feeder.feedUntil(2 * 60'000);
  latest(store, "a", Labels{}, &present);
  EXPECT_FALSE(present);
  EXPECT_EQ(latest(store, "b", Labels{}, &present), 5);  // other series untouched
  EXPECT_TRUE(present);
  feeder.feedUntil(3 * 60'000);
  EXPECT_EQ(latest(store, "a", Labels{}, &present), 1);
  EXPECT_TRUE(present);
}

// ---- comparison ----

TEST(CompareAlertsTest, IgnoresOrderAndAddsTheAlertName) {
  std::vector<ExpectedAlert> exp = {{Labels{{"db", "a"}}, {{"summary", "A"}}},
                                    {Labels{{"db", "b"}}, {{"summary", "B"}}}};
  std::vector<ActualAlert> got = {{Labels{{"alertname", "X"}, {"db", "b"}}, {{"summary", "B"}}},
                                  {Labels{{"alertname", "X"}, {"db", "a"}}, {{"summary", "A"}}}};
  EXPECT_EQ(compareAlerts("X", exp, got), "");
}

TEST(CompareAlertsTest, ReportsAnyDifferenceInLabelsOrAnnotations) {
  std::vector<ExpectedAlert> exp = {{Labels{{"db", "a"}}, {{"summary", "A"}}}};
  const std::string annotation_diff =
      compareAlerts("X", exp, {{Labels{{"alertname", "X"}, {"db", "a"}}, {{"summary", "A!"}}}});
  EXPECT_NE(annotation_diff.find("summary=\"A!\""), std::string::npos) << annotation_diff;
  EXPECT_NE(
      compareAlerts("X", exp, {{Labels{{"alertname", "X"}, {"db", "b"}}, {{"summary", "A"}}}}), "");
  EXPECT_NE(compareAlerts("X", exp, {{Labels{{"db", "a"}}, {{"summary", "A"}}}}), "");
  EXPECT_NE(compareAlerts("X", exp, {}), "");
  EXPECT_NE(compareAlerts("X", {}, {{Labels{{"alertname", "X"}}, {}}}), "");
  EXPECT_EQ(compareAlerts("X", {}, {}), "");
  // Extra annotations on the actual alert are a difference too, as in promtool.
  EXPECT_NE(compareAlerts(
                "X", exp,
                {{Labels{{"alertname", "X"}, {"db", "a"}}, {{"summary", "A"}, {"runbook", "r"}}}}),
            "");
}

TEST(CompareSamplesTest, ComparesLabelsAndValuesWithATinyTolerance) {
  std::vector<ExpectedSample> exp = {{{"", Labels{{"a", "1"}}}, 0.1 + 0.2},
                                     {{"up", Labels{}}, std::nan("")}};
  EXPECT_EQ(compareSamples(exp, {{"up", Labels{}, std::nan("")}, {"", Labels{{"a", "1"}}, 0.3}}),
            "");
  EXPECT_NE(compareSamples(exp, {{"up", Labels{}, 1}, {"", Labels{{"a", "1"}}, 0.3}}), "");
  EXPECT_NE(compareSamples(exp, {{"", Labels{{"a", "1"}}, 0.3}}), "");
}

TEST(FormatEvalTimeTest, PrintsLikePromtool) {
  EXPECT_EQ(formatEvalTime(0), "0s");
  EXPECT_EQ(formatEvalTime(90'000), "1m30s");
  EXPECT_EQ(formatEvalTime((24 * 60 + 16) * 60'000), "24h16m");
  EXPECT_EQ(formatEvalTime(1'500), "1s500ms");
}

// ---- the run loop, with a fake engine ----

// Fires "High" for every series `x` whose latest value exceeds 10, with its labels plus
// severity, and logs the times it was evaluated at.
class ThresholdEngine final : public EngineUnderTest {
 public:
  ThresholdEngine(const SampleStore& store, const FakeClock& clock, std::vector<int64_t>& log)
      : store_(store), clock_(clock), log_(log) {}
  Status load(const std::vector<std::string>&, const std::vector<std::string>&) override {
    return okStatus();
  }
  bool definesAlert(std::string_view name) const override { return name == "High"; }
  Status evaluate(int64_t t_ms) override {
    if (clock_.wallMillis() != t_ms) return internalError("clock not at the evaluation time");
    log_.push_back(t_ms);
    firing_.clear();
    auto snap = store_.snapshot();
    if (const SnapshotFamily* f = snap->family("x")) {
      for (const auto& s : f->series) {
        if (s.value > 10) {
          Labels labels = s.labels;
          labels.set("alertname", "High");
          labels.set("severity", "page");
          firing_.push_back(
              {labels, {{"summary", "x is " + std::to_string(static_cast<int>(s.value))}}});
        }
      }
    }
    return okStatus();
  }
  std::vector<ActualAlert> firingAlerts(std::string_view name) const override {
    return name == "High" ? firing_ : std::vector<ActualAlert>{};
  }
  Result<std::vector<ActualSample>> query(std::string_view expr, int64_t) override {
    if (expr != "x") return invalidArgument("only 'x' is supported");
    std::vector<ActualSample> out;
    auto snap = store_.snapshot();
    if (const SnapshotFamily* f = snap->family("x")) {
      for (const auto& s : f->series) out.push_back({"x", s.labels, s.value});
    }
    return out;
  }

 private:
  const SampleStore& store_;
  const FakeClock& clock_;
  std::vector<int64_t>& log_;
  std::vector<ActualAlert> firing_;
};

struct RunResult {
  std::vector<std::string> failures;
  std::vector<int64_t> evaluations;
};

RunResult runYaml(const std::string& yaml) {
  RunResult result;
  auto file = parseTestFile(yaml, "");
  EXPECT_TRUE(file.ok()) << file.status().toString();
  if (!file.ok()) return result;
  file->path = "inline_test.yml";
  result.failures =
      runTestFile(*file, [&](SampleStore& store, const FakeClock& clock, const TestGroup&) {
        return std::make_unique<ThresholdEngine>(store, clock, result.evaluations);
      });
  return result;
}

constexpr const char* kFiringTest = R"(
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'x{db="a"}'
        values: '0 5 20 20 3'
      - series: 'x{db="b"}'
        values: '0x4'
    alert_rule_test:
      - eval_time: 1m
        alertname: High
        exp_alerts: []
      - eval_time: 2m30s
        alertname: High
        exp_alerts:
          - exp_labels: {db: a, severity: page}
            exp_annotations: {summary: "x is 20"}
      - eval_time: 4m
        alertname: High
        exp_alerts: []
    promql_expr_test:
      - expr: x
        eval_time: 2m
        exp_samples:
          - labels: 'x{db="a"}'
            value: 20
          - labels: 'x{db="b"}'
            value: 0
)";

TEST(RunTestFileTest, PassesWhenTheEngineAgreesAndEvaluatesEveryInterval) {
  RunResult r = runYaml(kFiringTest);
  EXPECT_TRUE(r.failures.empty()) << r.failures.front();
  // 0..4m every minute; the check at 2m30s used the evaluation at 2m.
  EXPECT_EQ(r.evaluations, (std::vector<int64_t>{0, 60'000, 120'000, 180'000, 240'000}));
}

TEST(RunTestFileTest, ReportsAMismatchWithFileTimeAndBothSides) {
  std::string yaml = kFiringTest;
  yaml.replace(yaml.find("x is 20"), 7, "x is 21");
  RunResult r = runYaml(yaml);
  ASSERT_EQ(r.failures.size(), 1u);
  const std::string& f = r.failures[0];
  EXPECT_NE(f.find("inline_test.yml: test #1"), std::string::npos) << f;
  EXPECT_NE(f.find("alertname: High, time: 2m30s"), std::string::npos) << f;
  EXPECT_NE(f.find("x is 21"), std::string::npos) << f;
  EXPECT_NE(f.find("x is 20"), std::string::npos) << f;
}

TEST(RunTestFileTest, ReportsAnUnexpectedAlertAndAWrongSample) {
  std::string yaml = kFiringTest;
  yaml.replace(yaml.find("eval_time: 4m"), 13, "eval_time: 3m");  // still 20 at 3m: fires
  yaml.replace(yaml.find("value: 0"), 8, "value: 1");
  RunResult r = runYaml(yaml);
  ASSERT_EQ(r.failures.size(), 2u);
  // In time order: the query at 2m, then the alert check at 3m.
  EXPECT_NE(r.failures[0].find("expr: \"x\", time: 2m"), std::string::npos) << r.failures[0];
  EXPECT_NE(r.failures[1].find("alertname: High, time: 3m"), std::string::npos) << r.failures[1];
}

TEST(RunTestFileTest, RejectsAnAlertNameTheRulesDoNotDefine) {
  std::string yaml = kFiringTest;
  yaml.replace(yaml.find("alertname: High"), 15, "alertname: Hihg");
  RunResult r = runYaml(yaml);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].find("'Hihg' is not defined"), std::string::npos) << r.failures[0];
}

// ---- the shipped rule pack ----

const std::string kSourceDir = DBPULSE_SOURCE_DIR;

TEST(RulePackTest, EveryShippedTestFileParsesAndNamesExistingRuleFiles) {
  const auto files = globFiles(kSourceDir + "/tests/rules/*_test.yml");
  ASSERT_GE(files.size(), 5u);
  for (const auto& path : files) {
    auto file = loadTestFile(path);
    ASSERT_TRUE(file.ok()) << file.status().toString();
    EXPECT_FALSE(file->rule_files.empty()) << path;
    for (const auto& rf : file->rule_files) {
      EXPECT_TRUE(std::filesystem::exists(rf)) << path << " names " << rf;
      EXPECT_NE(rf.find("/rules/default/"), std::string::npos) << rf;
    }
    EXPECT_FALSE(file->tests.empty()) << path;
  }
}

// Every alerting rule in rules/default/*.yml has at least one test where it fires and one
// where it must not, in promtool's format.
TEST(RulePackTest, EveryShippedAlertHasAFiringAndANonFiringCase) {
  std::set<std::string> alerts;
  for (const auto& path : globFiles(kSourceDir + "/rules/default/*.yml")) {
    const YAML::Node root = YAML::LoadFile(path);
    for (const auto& group : root["groups"]) {
      for (const auto& rule : group["rules"]) {
        if (rule["alert"]) alerts.insert(rule["alert"].as<std::string>());
      }
    }
  }
  ASSERT_GE(alerts.size(), 25u);

  std::map<std::string, std::pair<int, int>> cases;  // alert -> (firing, not firing)
  for (const auto& path : globFiles(kSourceDir + "/tests/rules/*_test.yml")) {
    auto file = loadTestFile(path);
    ASSERT_TRUE(file.ok()) << file.status().toString();
    for (const auto& group : file->tests) {
      for (const auto& t : group.alert_rule_tests) {
        auto& [firing, quiet] = cases[t.alertname];
        (t.exp_alerts.empty() ? quiet : firing) += 1;
      }
    }
  }
  for (const auto& a : alerts) {
    EXPECT_GE(cases[a].first, 1) << a << " has no test where it fires";
    EXPECT_GE(cases[a].second, 1) << a << " has no test where it stays quiet";
  }
  for (const auto& [name, counts] : cases) {
    EXPECT_TRUE(alerts.count(name)) << "tests name an alert no rule defines: " << name;
  }
}

}  // namespace
}  // namespace dbpulse::rules::testing
