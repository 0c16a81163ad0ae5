#include "tests/rules/promtool_runner.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "agent/core/sample.h"

namespace dbpulse::rules::testing {
namespace {

// One store source per input series, so a staleness marker can drop exactly that series.
std::string sourceOf(size_t index) { return "promtool-series-" + std::to_string(index); }

std::string formatValue(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

std::string formatAlert(const Labels& labels, const Annotations& annotations) {
  std::string out = "    labels: " + formatSeriesId(SeriesId{"", labels}) + "\n    annotations: {";
  bool first = true;
  for (const auto& [k, v] : annotations) {
    if (!first) out += ", ";
    first = false;
    out += k + "=\"" + v + "\"";
  }
  return out + "}\n";
}

using AlertKey = std::pair<std::vector<Label>, Annotations>;

}  // namespace

SeriesFeeder::SeriesFeeder(const std::vector<InputSeries>& series, int64_t interval_ms,
                           SampleStore& store, FakeClock& clock)
    : series_(series), interval_ms_(interval_ms), store_(store), clock_(clock) {
  for (const auto& s : series_) steps_ = std::max(steps_, s.values.size());
}

size_t SeriesFeeder::historyPointsFor(const std::vector<InputSeries>& series) {
  size_t longest = 1;
  for (const auto& s : series) longest = std::max(longest, s.values.size());
  return longest;
}

void SeriesFeeder::feedUntil(int64_t t_ms) {
  while (next_step_ < steps_ && static_cast<int64_t>(next_step_) * interval_ms_ <= t_ms) {
    const int64_t step_ms = static_cast<int64_t>(next_step_) * interval_ms_;
    clock_.setWallMillis(step_ms);
    for (size_t i = 0; i < series_.size(); ++i) {
      const auto& values = series_[i].values;
      if (next_step_ >= values.size()) continue;
      const SeriesValue& v = values[next_step_];
      switch (v.kind) {
        case SeriesValue::Kind::kOmitted:
          break;
        case SeriesValue::Kind::kStale:
          store_.dropSource(sourceOf(i));
          break;
        case SeriesValue::Kind::kValue: {
          SampleBatch batch;
          batch.add(series_[i].id.name, series_[i].id.labels, v.value);
          store_.write(sourceOf(i), batch, kLookback);
          break;
        }
      }
    }
    ++next_step_;
  }
  clock_.setWallMillis(t_ms);
}

std::string compareAlerts(std::string_view alertname, const std::vector<ExpectedAlert>& expected,
                          std::vector<ActualAlert> got) {
  std::vector<AlertKey> exp_keys;
  for (const auto& e : expected) {
    Labels labels = e.labels;
    labels.set("alertname", alertname);
    exp_keys.emplace_back(labels.items(), e.annotations);
  }
  std::vector<AlertKey> got_keys;
  for (auto& g : got) got_keys.emplace_back(g.labels.items(), std::move(g.annotations));
  std::sort(exp_keys.begin(), exp_keys.end());
  std::sort(got_keys.begin(), got_keys.end());
  if (exp_keys == got_keys) return "";

  auto list = [](const std::vector<AlertKey>& keys) {
    std::string out;
    for (const auto& [items, annotations] : keys) {
      Labels labels;
      for (const auto& l : items) labels.set(l.name, l.value);
      out += formatAlert(labels, annotations);
    }
    return out.empty() ? std::string("    (none)\n") : out;
  };
  return "  exp:\n" + list(exp_keys) + "  got:\n" + list(got_keys);
}

std::string compareSamples(const std::vector<ExpectedSample>& expected,
                           std::vector<ActualSample> got) {
  auto key = [](const std::string& name, const Labels& labels) {
    return formatSeriesId(SeriesId{name, labels});
  };
  std::vector<std::pair<std::string, double>> exp_list, got_list;
  for (const auto& e : expected)
    exp_list.emplace_back(key(e.series.name, e.series.labels), e.value);
  for (const auto& g : got) got_list.emplace_back(key(g.name, g.labels), g.value);
  auto by_key = [](const auto& a, const auto& b) { return a.first < b.first; };
  std::sort(exp_list.begin(), exp_list.end(), by_key);
  std::sort(got_list.begin(), got_list.end(), by_key);

  bool equal = exp_list.size() == got_list.size();
  for (size_t i = 0; equal && i < exp_list.size(); ++i) {
    const double a = exp_list[i].second, b = got_list[i].second;
    const bool same_value = (std::isnan(a) && std::isnan(b)) || a == b ||
                            std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
    equal = exp_list[i].first == got_list[i].first && same_value;
  }
  if (equal) return "";
  auto list = [](const std::vector<std::pair<std::string, double>>& samples) {
    std::string out;
    for (const auto& [k, v] : samples) out += "    " + k + " " + formatValue(v) + "\n";
    return out.empty() ? std::string("    (none)\n") : out;
  };
  return "  exp:\n" + list(exp_list) + "  got:\n" + list(got_list);
}

std::string formatEvalTime(int64_t t_ms) {
  if (t_ms == 0) return "0s";
  std::string out;
  int64_t rest = t_ms;
  for (auto [unit, ms] : {std::pair{"h", int64_t{3'600'000}}, std::pair{"m", int64_t{60'000}},
                          std::pair{"s", int64_t{1'000}}, std::pair{"ms", int64_t{1}}}) {
    if (rest >= ms) {
      out += std::to_string(rest / ms) + unit;
      rest %= ms;
    }
  }
  return out;
}

std::vector<std::string> runTestFile(const TestFile& file, const EngineFactory& factory) {
  std::vector<std::string> failures;
  const int64_t interval = file.evaluation_interval_ms;
  for (size_t gi = 0; gi < file.tests.size(); ++gi) {
    const TestGroup& group = file.tests[gi];
    const std::string where = file.path + ": test #" + std::to_string(gi + 1) +
                              (group.name.empty() ? "" : " (" + group.name + ")");
    auto fail = [&](const std::string& what) { failures.push_back(where + ": " + what); };

    FakeClock clock{0};
    SampleStoreOptions options;
    options.history_points = SeriesFeeder::historyPointsFor(group.input_series);
    SampleStore store(clock, options);
    SeriesFeeder feeder(group.input_series, group.interval_ms, store, clock);
    std::unique_ptr<EngineUnderTest> engine = factory(store, clock, group);
    if (engine == nullptr) {
      fail("the engine factory returned no engine");
      continue;
    }
    if (Status s = engine->load(file.rule_files, file.group_eval_order); !s.ok()) {
      fail("loading rule files: " + s.toString());
      continue;
    }

    // eval time -> the tests to check then, in file order.
    std::map<int64_t, std::vector<const AlertRuleTest*>> alert_tests;
    std::map<int64_t, std::vector<const PromqlExprTest*>> expr_tests;
    int64_t last = 0;
    bool bad_name = false;
    for (const auto& t : group.alert_rule_tests) {
      if (t.alertname.empty() || !engine->definesAlert(t.alertname)) {
        fail("alertname '" + t.alertname + "' is not defined by the rule files");
        bad_name = true;
      }
      alert_tests[t.eval_time_ms].push_back(&t);
      last = std::max(last, t.eval_time_ms);
    }
    for (const auto& t : group.promql_expr_tests) {
      expr_tests[t.eval_time_ms].push_back(&t);
      last = std::max(last, t.eval_time_ms);
    }
    if (bad_name) continue;

    auto next_alert = alert_tests.begin();
    auto next_expr = expr_tests.begin();
    for (int64_t ts = 0; ts <= last; ts += interval) {
      feeder.feedUntil(ts);
      if (Status s = engine->evaluate(ts); !s.ok()) {
        fail("evaluation at " + formatEvalTime(ts) + ": " + s.toString());
        break;
      }
      // Alert checks for eval times in [ts, ts + interval) use the evaluation at ts.
      for (; next_alert != alert_tests.end() && next_alert->first < ts + interval; ++next_alert) {
        for (const AlertRuleTest* t : next_alert->second) {
          const std::string diff =
              compareAlerts(t->alertname, t->exp_alerts, engine->firingAlerts(t->alertname));
          if (!diff.empty()) {
            fail("alertname: " + t->alertname + ", time: " + formatEvalTime(t->eval_time_ms) +
                 "\n" + diff);
          }
        }
      }
      // Instant queries see the samples up to their own eval time.
      for (; next_expr != expr_tests.end() && next_expr->first < ts + interval; ++next_expr) {
        feeder.feedUntil(next_expr->first);
        for (const PromqlExprTest* t : next_expr->second) {
          auto got = engine->query(t->expr, t->eval_time_ms);
          const std::string head =
              "expr: \"" + t->expr + "\", time: " + formatEvalTime(t->eval_time_ms);
          if (!got.ok()) {
            fail(head + ": " + got.status().toString());
            continue;
          }
          const std::string diff = compareSamples(t->exp_samples, std::move(*got));
          if (!diff.empty()) fail(head + "\n" + diff);
        }
      }
    }
  }
  return failures;
}

}  // namespace dbpulse::rules::testing
