#pragma once
// Evaluates a parsed PromQL-subset expression at one instant over the SampleStore
// (latest values and history), with Prometheus's semantics:
// - instant selectors take each series' newest point at or before the instant and no
//   older than the lookback (5 minutes); range selectors take [t - range, t];
// - functions and arithmetic drop __name__, comparisons without `bool` keep it;
// - rate/increase/delta extrapolate to the range boundaries and handle counter resets
//   like Prometheus's extrapolatedRate; irate uses the last two points; deriv is the
//   least-squares slope;
// - vector matching one-to-one and many-to-one/one-to-many (group_left/right), with
//   Prometheus's errors for many-to-many matches and duplicate output label sets;
// - histogram_quantile over classic `_bucket` series (le label), grouped by every
//   other label, with the +Inf bucket required and bucket counts made monotonic;
// - subqueries evaluate their expression at every multiple of the step inside the range;
//   `@` pins a selector or subquery to a time, offsets may be negative;
// - topk/bottomk pick elements as Prometheus's heaps do (ties go the same way when the
//   input is in label order); label_replace/label_join errors (bad regex, bad label
//   name) are evaluation errors.
// Evaluation errors (e.g. many-to-many matching) come back as a Status; nothing
// throws. Thread-safe (the store locks itself); the evaluator keeps no state.

#include <cstdint>
#include <string>
#include <vector>

#include "agent/core/labels.h"
#include "agent/core/sample_store.h"
#include "agent/core/status.h"
#include "rules/promql_parser.h"

namespace dbpulse::rules {

inline constexpr const char* kMetricNameLabel = "__name__";

// One element of an instant vector. `labels` carries __name__ where Prometheus keeps it.
struct Element {
  Labels labels;
  double value = 0;
};
using Vector = std::vector<Element>;

// The result of an expression: a scalar or an instant vector (in no particular order).
struct EvalResult {
  ValueType type = ValueType::kInstantVector;
  double scalar = 0;
  Vector vector;
};

struct EvalOptions {
  int64_t lookback_ms = 5 * 60'000;  // Prometheus's default lookback delta
  // The step of a subquery written without one ("x[5m:]"): Prometheus's global
  // evaluation_interval, 1m by default (the agent sets [rules] evaluation_interval).
  int64_t default_step_ms = 60'000;
  // Subquery steps one evaluation may run in all (nested subqueries multiply); beyond,
  // the evaluation fails instead of running for minutes.
  int64_t max_subquery_steps = 250'000;
};

// Evaluates `expr` at `at_ms` (milliseconds since the epoch); `@ start()` and `@ end()`
// both mean `at_ms`, as in Prometheus's rule evaluation. Range-vector and string results
// are errors (rules need an instant vector or a scalar).
Result<EvalResult> evaluate(const Expr& expr, const SampleStore& store, int64_t at_ms,
                            const EvalOptions& options = {});

// Prometheus's bucketQuantile over (upper bound, cumulative count) pairs, exposed for tests.
double bucketQuantile(double q, std::vector<std::pair<double, double>> buckets);

}  // namespace dbpulse::rules
