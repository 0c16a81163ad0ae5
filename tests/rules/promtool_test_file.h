#pragma once
// The unit-test files of `promtool test rules` (Prometheus's documented format), read so
// that dbpulse's own rule engine can run the very files promtool runs
// (tests/rules/*_test.yml). Parsing is pure and thread-safe; nothing here touches a clock
// or a store.
//
// As in promtool: unknown keys are errors; `evaluation_interval` defaults to 1m and a
// test's `interval` to `evaluation_interval`; relative `rule_files` are resolved against
// the test file's folder and may be globs. Durations use Prometheus's syntax ("90s",
// "24h16m", "0"). Native histograms in series values ('{{...}}') are not supported.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/labels.h"
#include "agent/core/status.h"

namespace dbpulse::rules::testing {

// One step of an input series.
struct SeriesValue {
  enum class Kind {
    kValue,    // a sample
    kOmitted,  // '_': no sample at this step (the previous one stays visible for 5m)
    kStale,    // 'stale': a staleness marker, the series ends here
  };
  Kind kind = Kind::kValue;
  double value = 0;  // meaningful for kValue

  static SeriesValue sample(double v) { return {Kind::kValue, v}; }
  static SeriesValue omitted() { return {Kind::kOmitted, 0}; }
  static SeriesValue stale() { return {Kind::kStale, 0}; }
};

// Expands the values notation: space-separated items, each one of
//   a         one sample (1, -2.5, 1e3, Inf, -Inf, NaN; no hexadecimal, "0x4" is 0x4)
//   a+bxN     N+1 samples a, a+b, ..., a+N*b (computed by repeated addition, as promtool)
//   a-bxN     the same, decreasing
//   axN       N+1 samples of a (a+0xN)
//   _   _xN   one / N omitted steps
//   stale     a staleness marker
// Errors: kInvalidArgument naming the offending item.
Result<std::vector<SeriesValue>> expandSeriesValues(std::string_view text);

// A series name with its labels: 'name{l="v", ...}', 'name', or '{__name__="name", ...}'.
struct SeriesId {
  std::string name;  // "" when the text names none
  Labels labels;     // without __name__
  bool operator==(const SeriesId&) const = default;
};
Result<SeriesId> parseSeriesId(std::string_view text);
// 'name{a="1", b="2"}' with labels sorted; quotes and backslashes escaped.
std::string formatSeriesId(const SeriesId& id);

struct InputSeries {
  SeriesId id;
  std::vector<SeriesValue> values;  // values[i] is at i * interval
};

using Annotations = std::map<std::string, std::string>;

struct ExpectedAlert {
  Labels labels;  // exp_labels, without alertname (the comparison adds it)
  Annotations annotations;
};

struct AlertRuleTest {
  int64_t eval_time_ms = 0;
  std::string alertname;
  std::vector<ExpectedAlert> exp_alerts;  // firing alerts only; empty = none fires
};

struct ExpectedSample {
  SeriesId series;
  double value = 0;
};

struct PromqlExprTest {
  std::string expr;
  int64_t eval_time_ms = 0;
  std::vector<ExpectedSample> exp_samples;
};

struct TestGroup {
  std::string name;         // optional `name`
  int64_t interval_ms = 0;  // spacing of input series samples
  std::vector<InputSeries> input_series;
  std::vector<AlertRuleTest> alert_rule_tests;
  std::vector<PromqlExprTest> promql_expr_tests;
  Labels external_labels;
  std::string external_url;
};

struct TestFile {
  std::string path;                     // as loaded ("" when parsed from text)
  std::vector<std::string> rule_files;  // resolved paths, globs expanded, in file order
  int64_t evaluation_interval_ms = 60'000;
  std::vector<std::string> group_eval_order;
  std::vector<TestGroup> tests;
};

// Parses a test file's YAML text; relative rule_files are resolved against `base_dir`.
// Errors: kInvalidArgument with the YAML position or the item at fault.
Result<TestFile> parseTestFile(std::string_view yaml_text, const std::string& base_dir);

// Reads and parses `path` (rule_files relative to its folder).
Result<TestFile> loadTestFile(const std::string& path);

// Prometheus duration ("0", "90s", "5m45s", "24h16m", "1d", "250ms") in milliseconds.
Result<int64_t> parsePromtoolDuration(std::string_view text);

}  // namespace dbpulse::rules::testing
