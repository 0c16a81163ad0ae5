#pragma once
// The status page's health checks and sparklines: what an operator triages first, each a
// PromQL expression over the sample store (the rule engine's evaluator, so the page and the
// shipped rules agree on what a number means) judged green / amber / red by thresholds.
//
// Pure apart from reading the store: no database I/O. Thread-safe: a HealthChecker is
// immutable after construction; evaluate() may run on any number of threads at once.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/sample_store.h"

namespace dbpulse::admin {

enum class HealthLevel { kOk, kWarn, kCrit, kNoData };

// "ok", "warn", "crit", "nodata": the CSS class and the word shown.
const char* levelName(HealthLevel level);

// How a check's number is shown.
enum class Unit { kCount, kRatio, kSeconds, kBytes, kPerSecond, kUpDown };

// "95.3 %", "1.2 s", "340 ms", "1.5 GiB", "12", "1.2M", "0.3/s", "up"/"down" (1/0).
// NaN/Inf: "n/a".
std::string formatValue(double value, Unit unit);

struct Thresholds {
  double warn = 0, crit = 0;
  bool lower_is_worse = false;  // ratios: red below crit
};

// kCrit when the value crosses `crit`, kWarn when it crosses `warn` (>= for higher-is-worse,
// <= for lower-is-worse), kOk otherwise; NaN is kNoData.
HealthLevel classify(double value, const Thresholds& t);

struct CheckSpec {
  CheckSpec() = default;
  CheckSpec(std::string id_, std::string title_, std::string expr_, Thresholds t, Unit unit_)
      : id(std::move(id_)),
        title(std::move(title_)),
        expr(std::move(expr_)),
        thresholds(t),
        unit(unit_) {}

  std::string id;     // stable, for tests and CSS: "pg_up", "connections", ...
  std::string title;  // "Connections"
  // The value judged. The worst series counts (max, or min when lower_is_worse).
  std::string expr;
  Thresholds thresholds;
  Unit unit = Unit::kCount;
  // Where `expr` has no result (e.g. too little traffic to judge a ratio): shown instead,
  // without a verdict (kNoData), with `fallback_note`. Empty: "no data".
  std::string fallback_expr;
  std::string fallback_note;
  std::optional<Unit> fallback_unit;  // default: `unit`
  // The verdict for a fallback value (default: none, kNoData).
  std::optional<HealthLevel> fallback_level;
  // Shown when neither has a result.
  std::string missing_note = "no data";
  // Optional: a second number shown beside the value ("12 of 100").
  std::string context_expr;
  std::string context_prefix;  // " of "
  Unit context_unit = Unit::kCount;
};

struct HealthCheck {
  std::string id, title;
  HealthLevel level = HealthLevel::kNoData;
  std::optional<double> value;
  std::string shown;  // the number as displayed, with context ("12 of 100")
  std::string note;   // why there is no verdict, or what the number means
};

// The check list in the order an operator triages (PostgreSQL up, connections, blocked,
// long transactions, idle in transaction, cache hit, replication lag, wraparound, dead
// tuples, Redis memory / evictions / hit ratio, chat server error ratio and p95).
const std::vector<CheckSpec>& defaultCheckSpecs();

// A key series of the page: a title, an expression and its unit.
struct SparkSpec {
  std::string id, title, expr;
  Unit unit = Unit::kCount;
};
const std::vector<SparkSpec>& defaultSparkSpecs();

struct SparkSeries {
  std::string id, title;
  Unit unit = Unit::kCount;
  std::vector<Point> points;  // oldest first; instants without a value are left out
};

// The verdict for one spec from its evaluated numbers (pure; unit-tested).
HealthCheck judge(const CheckSpec& spec, std::optional<double> value,
                  std::optional<double> fallback, std::optional<double> context);

// The firing-alerts check from the rule engine's counts: red when a critical alert fires,
// amber when any other fires, green otherwise (pending ones are mentioned).
HealthCheck alertsCheck(size_t firing, size_t firing_critical, size_t pending);

class HealthChecker {
 public:
  // Parses every expression once. An expression that does not parse is a programming error
  // in the spec table: it is dropped with a note on its check (kNoData), never a crash.
  HealthChecker(std::vector<CheckSpec> checks, std::vector<SparkSpec> sparks);
  HealthChecker();  // the default specs
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Every check at `now_ms`. `lookback_ms`: how old an instant value may be.
  std::vector<HealthCheck> evaluate(const SampleStore& store, int64_t now_ms,
                                    int64_t lookback_ms) const;
  // Every sparkline over [now_ms - span_ms, now_ms], `points` instants evenly spaced.
  std::vector<SparkSeries> sparklines(const SampleStore& store, int64_t now_ms, int64_t span_ms,
                                      int points, int64_t lookback_ms) const;

 private:
  struct Compiled;
  std::vector<CheckSpec> checks_;
  std::vector<SparkSpec> sparks_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace dbpulse::admin
