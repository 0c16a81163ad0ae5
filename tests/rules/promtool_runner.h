#pragma once
// Runs promtool-format rule tests (promtool_test_file.h) through a rule engine the way
// `promtool test rules` (Prometheus 2.42) does, so that dbpulse's engine is held to the
// very files promtool passes.
//
// Per test group: a fresh SampleStore on a FakeClock whose origin is Unix time 0 (as in
// promtool, so time() agrees) and a fresh engine from the factory. Then for ts = 0, every
// evaluation_interval, up to the last eval_time of the group:
//   1. every input sample with timestamp <= ts is written into the store, in time order,
//      with the clock set to the sample's time;
//   2. the clock is set to ts and the engine evaluates all rule groups at ts;
//   3. each alert_rule_test whose eval_time lies in [ts, ts + evaluation_interval) is
//      compared with the engine's firing alerts of that name, and each promql_expr_test
//      likewise with the result of an instant query at its eval_time.
// Comparison is promtool's: expected alerts (alertname added to exp_labels) and firing
// alerts are equal as multisets of (labels, annotations); samples as multisets of
// (labels, value), values equal within a relative 1e-9 (NaN equals NaN).
//
// Store semantics mirroring Prometheus: each sample is written with a staleness of
// kLookback (Prometheus's 5-minute lookback delta, whose far end is inclusive in 2.x);
// '_' writes nothing, so the previous sample stays visible for the rest of the lookback;
// 'stale' drops the series at once. One difference: a dropped series loses its history
// too, whereas Prometheus still shows the samples before a staleness marker to range
// selectors. The store is sized to keep every sample of the longest input series.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/labels.h"
#include "agent/core/sample_store.h"
#include "agent/core/status.h"
#include "tests/fakes/fake_clock.h"
#include "tests/rules/promtool_test_file.h"

namespace dbpulse::rules::testing {

inline constexpr std::chrono::milliseconds kLookback{5 * 60 * 1000 + 1};

// The clock the runner moves (started at Unix time 0: FakeClock clock{0}).
using FakeClock = fakes::FakeClock;

// Writes a test group's input series into a store as time advances.
class SeriesFeeder {
 public:
  // `store` must run on `clock`. Both must outlive the feeder.
  SeriesFeeder(const std::vector<InputSeries>& series, int64_t interval_ms, SampleStore& store,
               FakeClock& clock);

  // Writes every sample with timestamp <= t_ms not written yet, in time order, then leaves
  // the clock at t_ms. t_ms must not go backwards.
  void feedUntil(int64_t t_ms);

  // History points needed to keep every sample of the longest series.
  static size_t historyPointsFor(const std::vector<InputSeries>& series);

 private:
  const std::vector<InputSeries>& series_;
  const int64_t interval_ms_;
  SampleStore& store_;
  FakeClock& clock_;
  size_t next_step_ = 0;  // the first step not yet written
  size_t steps_ = 0;      // the longest series' length
};

struct ActualAlert {
  Labels labels;  // alertname included
  Annotations annotations;
};

struct ActualSample {
  std::string name;  // "" when the expression dropped it
  Labels labels;
  double value = 0;
};

// The engine as the runner drives it. One instance per test group, bound by its factory
// to the group's store (and clock); called from one thread.
class EngineUnderTest {
 public:
  virtual ~EngineUnderTest() = default;
  // Loads the rule files (in order; `group_eval_order` may name the groups' order).
  virtual Status load(const std::vector<std::string>& rule_files,
                      const std::vector<std::string>& group_eval_order) = 0;
  // Whether a loaded alerting rule has this name.
  virtual bool definesAlert(std::string_view alertname) const = 0;
  // Evaluates every rule group at t_ms (the store's clock reads t_ms).
  virtual Status evaluate(int64_t t_ms) = 0;
  // Alerts named `alertname` in state firing after the last evaluate().
  virtual std::vector<ActualAlert> firingAlerts(std::string_view alertname) const = 0;
  // An instant query at t_ms, for promql_expr_test.
  virtual Result<std::vector<ActualSample>> query(std::string_view expr, int64_t t_ms) = 0;
};

// Builds the engine for one test group. The engine may write into the store (ALERTS,
// recorded series), as dbpulse's does.
using EngineFactory = std::function<std::unique_ptr<EngineUnderTest>(
    SampleStore& store, const FakeClock& clock, const TestGroup& group)>;

// promtool's comparison of one alert_rule_test. Empty when equal, else a readable
// "exp: ... got: ..." text.
std::string compareAlerts(std::string_view alertname, const std::vector<ExpectedAlert>& expected,
                          std::vector<ActualAlert> got);

// The same for one promql_expr_test.
std::string compareSamples(const std::vector<ExpectedSample>& expected,
                           std::vector<ActualSample> got);

// Runs every test group of `file`. Returns one message per failure (empty = all passed),
// each naming the file, the group (index and name), the alert or expression and the time.
std::vector<std::string> runTestFile(const TestFile& file, const EngineFactory& factory);

// "1h2m3s"-style text of a time in milliseconds, as promtool prints eval times.
std::string formatEvalTime(int64_t t_ms);

}  // namespace dbpulse::rules::testing
