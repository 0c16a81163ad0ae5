// The rule engine's cost per evaluation cycle: 200 rules (shaped like the shipped pack:
// rates, ratios of sums, thresholds, histogram quantiles, *_over_time, absent, recording
// rules) over a store of 50,000 series with 5 minutes of 15-second history each.
// Target (issue #5): under 20 ms per cycle.
//   BM_EvaluateCycle           thresholds that let ~400 of the 20,000 candidate series alert
//                              (already a bad day for one sidecar)
//   BM_EvaluateCycleAllFiring  thresholds that let ~5,400 alert at once (a stress case:
//                              every active alert costs templating and two ALERTS series)
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <vector>

#include "agent/core/sample.h"
#include "agent/core/sample_store.h"
#include "rules/rule_engine.h"
#include "rules/rule_file.h"

namespace {

using namespace dbpulse;
using namespace dbpulse::rules;

constexpr int kNames = 500;          // metric names
constexpr int kSeriesPerName = 100;  // 10 jobs x 10 instances (or 10 jobs x 10 buckets)
constexpr int kHistograms = 50;      // of the names, the last ones are _bucket histograms
constexpr int kSteps = 21;           // points per series: 5 minutes at 15 s
constexpr int64_t kStepMs = 15'000;
constexpr int64_t kT0 = 1'700'000'000'000;

class BenchClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(now_ms)); }
  int64_t now_ms = kT0;
};

std::string counterName(int k) { return "bench_requests_" + std::to_string(k) + "_total"; }
std::string histName(int k) { return "bench_latency_" + std::to_string(k) + "_seconds_bucket"; }

void fillStore(SampleStore& store, BenchClock& clock) {
  static const char* const kLe[] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                    "0.25",  "0.5",  "1",     "2.5",  "+Inf"};
  for (int step = 0; step < kSteps; ++step) {
    clock.now_ms = kT0 + step * kStepMs;
    SampleBatch batch;
    for (int k = 0; k < kNames - kHistograms; ++k) {
      for (int s = 0; s < kSeriesPerName; ++s) {
        Labels l{{"job", "job" + std::to_string(s % 10)},
                 {"instance", "i" + std::to_string(s / 10)}};
        batch.add(counterName(k), std::move(l), static_cast<double>((k + 1) * (s + 1) * step));
      }
    }
    for (int k = 0; k < kHistograms; ++k) {
      for (int s = 0; s < kSeriesPerName; ++s) {
        Labels l{{"job", "job" + std::to_string(s % 10)}, {"le", kLe[s / 10]}};
        batch.add(histName(k), std::move(l), static_cast<double>((s / 10 + 1) * 10 * step));
      }
    }
    store.write("bench", batch, std::chrono::hours(1));
  }
}

// 10 groups of 20 rules, seven kinds of rule as the shipped pack uses them.
std::string ruleFile(bool stress) {
  std::string y = "groups:\n";
  int rule = 0;
  for (int g = 0; g < 10; ++g) {
    y += "- name: bench" + std::to_string(g) + "\n  rules:\n";
    for (int r = 0; r < 20; ++r, ++rule) {
      const int k = rule % (kNames - kHistograms);
      const int h = rule % kHistograms;
      const std::string a = counterName(k), b = counterName((k + 1) % (kNames - kHistograms));
      // Series s of counter k grows by (k+1)(s+1) per step: these thresholds let the two
      // largest of the 100 series alert (or, under stress, most of them).
      const std::string rate_limit = stress ? "100" : std::to_string((k + 1) * 98.0 / 15);
      const std::string value_limit = stress ? "5000" : std::to_string((k + 1) * 98.0 * 20);
      std::string expr;
      switch (rule % 7) {
        case 0:
          expr = "rate(" + a + "[5m]) > " + rate_limit;
          break;
        case 1:
          expr = "sum by (job) (rate(" + a + "[5m])) / sum by (job) (rate(" + b + "[5m])) > " +
                 (stress ? "0.9" : "1");
          break;
        case 2:
          expr = a + " > " + value_limit;
          break;
        case 3:
          expr = "histogram_quantile(0.95, sum by (le, job) (rate(" + histName(h) + "[5m]))) > 1";
          break;
        case 4:
          expr = "avg_over_time(" + a + "[5m]) < 10";
          break;
        case 5:
          expr = "absent(" + a + "{job=\"job3\"})";
          break;
        case 6:
          expr = "sum by (job) (" + a + ")";
          break;
      }
      if (rule % 7 == 6) {
        y += "  - record: bench:sum" + std::to_string(rule) + "\n    expr: " + expr + "\n";
      } else {
        y += "  - alert: Bench" + std::to_string(rule) + "\n    expr: " + expr +
             "\n    for: 1m\n    labels:\n      severity: warning\n    annotations:\n"
             "      summary: \"{{ $labels.job }} at {{ $value | humanize }}\"\n";
      }
    }
  }
  return y;
}

void evaluateCycles(benchmark::State& state, bool stress) {
  BenchClock clock;
  SampleStore store(clock, SampleStoreOptions{kSteps});
  fillStore(store, clock);
  RuleSet set = parseRuleFile(ruleFile(stress), "bench.yml");
  if (!set.ok()) {
    state.SkipWithError(set.errors[0].toString().c_str());
    return;
  }
  EngineOptions options;
  std::vector<GroupState> states(set.groups.size());
  size_t alerts = 0;
  for (auto _ : state) {
    for (size_t g = 0; g < set.groups.size(); ++g) {
      GroupResult r = evaluateGroup(set.groups[g], states[g], store, clock.now_ms, options);
      states[g] = std::move(r.state);
    }
  }
  for (const auto& gs : states) {
    for (const auto& rs : gs.rules) alerts += rs.alerts.size();
  }
  state.counters["series"] = static_cast<double>(store.seriesCount());
  state.counters["rules"] = 200;
  state.counters["alerts"] = static_cast<double>(alerts);
}

void BM_EvaluateCycle(benchmark::State& state) { evaluateCycles(state, false); }
void BM_EvaluateCycleAllFiring(benchmark::State& state) { evaluateCycles(state, true); }
BENCHMARK(BM_EvaluateCycle)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EvaluateCycleAllFiring)->Unit(benchmark::kMillisecond);

}  // namespace
