#include "rules/evaluator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "agent/core/sample.h"

namespace dbpulse::rules {
namespace {

using std::chrono::hours;

constexpr int64_t kT0 = 1'700'000'000'000;  // an arbitrary epoch for the tests
constexpr double kInf = std::numeric_limits<double>::infinity();

class TestClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(now_ms_)); }
  void set(int64_t ms) { now_ms_ = ms; }

 private:
  int64_t now_ms_ = kT0;
};

// A store filled with explicit points: "at second s, series X has value v".
class EvaluatorTest : public ::testing::Test {
 protected:
  EvaluatorTest() : store_(clock_, SampleStoreOptions{1000}) {}

  // Writes name{labels} = value at kT0 + seconds.
  void put(const std::string& name, Labels labels, double seconds, double value,
           bool exported = true) {
    clock_.set(kT0 + static_cast<int64_t>(seconds * 1000));
    SampleBatch b;
    b.add(name, std::move(labels), value);
    store_.write("test:" + name, b, hours(24), exported);
  }

  // Writes a series with one value per `step` seconds starting at `start`.
  void series(const std::string& name, const Labels& labels, double start, double step,
              const std::vector<double>& values) {
    for (size_t i = 0; i < values.size(); ++i) put(name, labels, start + step * i, values[i]);
  }

  Result<EvalResult> eval(const std::string& text, double at_seconds) {
    auto parsed = parseExpr(text);
    if (!parsed.ok()) return parsed.status();
    exprs_.push_back(std::move(*parsed));
    const int64_t at = kT0 + static_cast<int64_t>(at_seconds * 1000);
    clock_.set(at);
    return evaluate(*exprs_.back(), store_, at);
  }

  // The result as "labels => value" lines, sorted, for readable comparisons.
  std::map<std::string, double> vec(const std::string& text, double at_seconds) {
    auto r = eval(text, at_seconds);
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
    std::map<std::string, double> out;
    if (!r.ok()) return out;
    EXPECT_EQ(r->type, ValueType::kInstantVector) << text;
    for (const auto& e : r->vector) {
      std::string k = "{";
      for (const auto& l : e.labels.items()) {
        k += (k.size() > 1 ? "," : "") + l.name + "=" + l.value;
      }
      k += "}";
      EXPECT_FALSE(out.count(k)) << "duplicate " << k;
      out[k] = e.value;
    }
    return out;
  }

  double scalar(const std::string& text, double at_seconds) {
    auto r = eval(text, at_seconds);
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().message();
    if (!r.ok()) return std::nan("");
    EXPECT_EQ(r->type, ValueType::kScalar) << text;
    return r->scalar;
  }

  std::string error(const std::string& text, double at_seconds) {
    auto r = eval(text, at_seconds);
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? "" : r.status().message();
  }

  TestClock clock_;
  SampleStore store_;
  std::vector<ExprPtr> exprs_;
};

using Vec = std::map<std::string, double>;

void expectNear(const Vec& got, const Vec& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (const auto& [k, v] : want) {
    ASSERT_TRUE(got.count(k)) << what << ": missing " << k;
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(got.at(k))) << what << " " << k;
    } else if (std::isinf(v)) {
      EXPECT_EQ(got.at(k), v) << what << " " << k;
    } else {
      EXPECT_NEAR(got.at(k), v, 1e-9 * std::max(1.0, std::fabs(v))) << what << " " << k;
    }
  }
}

TEST_F(EvaluatorTest, InstantSelectorTakesNewestPointWithinLookback) {
  put("m", {{"a", "1"}}, 0, 1);
  put("m", {{"a", "1"}}, 10, 2);
  put("m", {{"a", "2"}}, 0, 7);
  expectNear(vec("m", 10), {{"{__name__=m,a=1}", 2}, {"{__name__=m,a=2}", 7}}, "both");
  expectNear(vec("m", 5), {{"{__name__=m,a=1}", 1}, {"{__name__=m,a=2}", 7}}, "as of t=5");
  // The far end of the 5-minute lookback is inclusive (Prometheus 2.x).
  expectNear(vec("m{a=\"2\"}", 300), {{"{__name__=m,a=2}", 7}}, "exactly 5m old");
  expectNear(vec("m{a=\"2\"}", 300.001), {}, "older than 5m");
  expectNear(vec("m offset 8s", 10), {{"{__name__=m,a=1}", 1}, {"{__name__=m,a=2}", 7}}, "offset");
}

TEST_F(EvaluatorTest, StoreStalenessRemovesSeries) {
  clock_.set(kT0);
  SampleBatch b;
  b.add("short_lived", {}, 1);
  store_.write("collector", b, std::chrono::seconds(30));
  expectNear(vec("short_lived", 29), {{"{__name__=short_lived}", 1}}, "fresh");
  expectNear(vec("short_lived", 30), {}, "expired by the store");
}

TEST_F(EvaluatorTest, MatchersFilterSeries) {
  put("http_requests_total", {{"code", "200"}, {"method", "get"}}, 0, 1);
  put("http_requests_total", {{"code", "500"}, {"method", "get"}}, 0, 2);
  put("http_requests_total", {{"code", "503"}, {"method", "post"}}, 0, 3);
  EXPECT_EQ(vec("http_requests_total{code=~\"5..\"}", 0).size(), 2u);
  EXPECT_EQ(vec("http_requests_total{code!~\"5..\"}", 0).size(), 1u);
  EXPECT_EQ(vec("http_requests_total{method!=\"get\"}", 0).size(), 1u);
  EXPECT_EQ(vec("http_requests_total{method=\"get\",code=\"500\"}", 0).size(), 1u);
  EXPECT_EQ(vec("http_requests_total{missing=\"\"}", 0).size(), 3u);
  EXPECT_EQ(vec("http_requests_total{missing!=\"\"}", 0).size(), 0u);
}

TEST_F(EvaluatorTest, RegexMatchersAreFullyAnchored) {
  put("m", {{"a", "xfoo"}}, 0, 1);
  put("m", {{"a", "foo"}}, 0, 2);
  put("m", {{"a", "foox"}}, 0, 3);
  put("m", {{"a", "bar"}}, 0, 4);
  expectNear(vec("m{a=~\"foo\"}", 0), {{"{__name__=m,a=foo}", 2}}, "no substring match");
  // ^(?:foo|bar)$, not ^foo|bar$: an alternation is anchored as a whole
  expectNear(vec("m{a=~\"foo|bar\"}", 0), {{"{__name__=m,a=bar}", 4}, {"{__name__=m,a=foo}", 2}},
             "alternation");
  expectNear(vec("m{a!~\"foo.*\"}", 0), {{"{__name__=m,a=bar}", 4}, {"{__name__=m,a=xfoo}", 1}},
             "negative");
  expectNear(vec("m{a=~\"(?i)FOO\"}", 0), {{"{__name__=m,a=foo}", 2}}, "flags");
}

// (a+)+b backtracks exponentially on a run of a's without a b: std::regex did not return
// within any useful time on 40 a's. RE2 is linear, so this just has to finish.
TEST_F(EvaluatorTest, BacktrackingRegexRunsInLinearTime) {
  const std::string as(5000, 'a');
  put("m", {{"job", as}}, 0, 1);
  put("m", {{"job", as + "b"}}, 0, 2);
  expectNear(vec("m{job=~\"(a+)+b\"}", 0), {{"{__name__=m,job=" + as + "b}", 2}}, "match");
  expectNear(vec("m{job!~\"(a|a)*(a|a)*(a|aa)+b\"}", 0), {{"{__name__=m,job=" + as + "}", 1}},
             "no match");
}

TEST_F(EvaluatorTest, NameRegexSelectsAcrossNamesIncludingUnexported) {
  put("pg_up", {}, 0, 1);
  put("pg_stat_x", {}, 0, 2);
  put("redis_up", {}, 0, 3);
  put("chat_private", {}, 0, 4, /*exported=*/false);
  expectNear(vec("{__name__=~\"pg_.*\"}", 0),
             {{"{__name__=pg_stat_x}", 2}, {"{__name__=pg_up}", 1}}, "regex");
  expectNear(vec("{__name__=\"redis_up\"}", 0), {{"{__name__=redis_up}", 3}}, "equality");
  expectNear(vec("chat_private", 0), {{"{__name__=chat_private}", 4}}, "unexported");
}

TEST_F(EvaluatorTest, RateHandlesCounterResetExactly) {
  // 0, 10, 20, then a reset to 5, then 15: the increase is 15 - 0 + 20 = 35 over the minute.
  series("c_total", {{"job", "x"}}, 0, 15, {0, 10, 20, 5, 15});
  expectNear(vec("increase(c_total[1m])", 60), {{"{job=x}", 35}}, "increase");
  expectNear(vec("rate(c_total[1m])", 60), {{"{job=x}", 35.0 / 60}}, "rate");
  // delta() is not a counter function: no reset correction.
  expectNear(vec("delta(c_total[1m])", 60), {{"{job=x}", 15}}, "delta");
  // irate over the reset: the value after the reset counts from zero.
  expectNear(vec("irate(c_total[1m])", 45), {{"{job=x}", 5.0 / 15}}, "irate at reset");
  expectNear(vec("irate(c_total[1m])", 60), {{"{job=x}", 10.0 / 15}}, "irate");
}

TEST_F(EvaluatorTest, ChangesResetsAndStatisticsOverTime) {
  // 0, 10, 20, 5, 5, 15 at 10 s steps: one drop (20 -> 5), four changes.
  series("c_total", {{"job", "x"}}, 0, 10, {0, 10, 20, 5, 5, 15});
  expectNear(vec("changes(c_total[1m])", 50), {{"{job=x}", 4}}, "changes");
  expectNear(vec("resets(c_total[1m])", 50), {{"{job=x}", 1}}, "resets");
  expectNear(vec("resets(c_total[15s])", 50), {{"{job=x}", 0}}, "resets, one pair");
  // values 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population variance 4
  series("g", {}, 0, 10, {2, 4, 4, 4, 5, 5, 7, 9});
  expectNear(vec("stdvar_over_time(g[2m])", 70), {{"{}", 4}}, "stdvar");
  expectNear(vec("stddev_over_time(g[2m])", 70), {{"{}", 2}}, "stddev");
  expectNear(vec("stddev_over_time(g[5s])", 70), {{"{}", 0}}, "one point");
  expectNear(vec("present_over_time(g[1m])", 70), {{"{}", 1}}, "present");
  expectNear(vec("present_over_time(g[1m])", 200), {}, "nothing in range");
  // last_over_time keeps the metric name, like a plain lookback
  expectNear(vec("last_over_time(g[1m])", 75), {{"{__name__=g}", 9}}, "last");
  expectNear(vec("last_over_time(g[1m] offset 30s)", 75), {{"{__name__=g}", 5}}, "last offset");
}

TEST_F(EvaluatorTest, MathFunctionsApplyPerElementAndDropTheName) {
  put("m", {{"a", "1"}}, 0, -2.5);
  put("m", {{"a", "2"}}, 0, 0);
  put("m", {{"a", "3"}}, 0, 4);
  const double pi = std::acos(-1.0);
  const auto nan = std::numeric_limits<double>::quiet_NaN();
  struct Want {
    const char* expr;
    Vec want;
  } cases[] = {
      {"ceil(m)", {{"{a=1}", -2}, {"{a=2}", 0}, {"{a=3}", 4}}},
      {"floor(m)", {{"{a=1}", -3}, {"{a=2}", 0}, {"{a=3}", 4}}},
      {"sgn(m)", {{"{a=1}", -1}, {"{a=2}", 0}, {"{a=3}", 1}}},
      {"sqrt(m)", {{"{a=1}", nan}, {"{a=2}", 0}, {"{a=3}", 2}}},
      {"ln(m)", {{"{a=1}", nan}, {"{a=2}", -kInf}, {"{a=3}", std::log(4.0)}}},
      {"log2(m)", {{"{a=1}", nan}, {"{a=2}", -kInf}, {"{a=3}", 2}}},
      {"log10(m)", {{"{a=1}", nan}, {"{a=2}", -kInf}, {"{a=3}", std::log10(4.0)}}},
      {"exp(m)", {{"{a=1}", std::exp(-2.5)}, {"{a=2}", 1}, {"{a=3}", std::exp(4.0)}}},
      {"deg(m)", {{"{a=1}", -2.5 * 180 / pi}, {"{a=2}", 0}, {"{a=3}", 4 * 180 / pi}}},
      {"rad(m)", {{"{a=1}", -2.5 * pi / 180}, {"{a=2}", 0}, {"{a=3}", 4 * pi / 180}}},
      {"sin(m)", {{"{a=1}", std::sin(-2.5)}, {"{a=2}", 0}, {"{a=3}", std::sin(4.0)}}},
      {"acos(m)", {{"{a=1}", nan}, {"{a=2}", pi / 2}, {"{a=3}", nan}}},
      {"atanh(m)", {{"{a=1}", nan}, {"{a=2}", 0}, {"{a=3}", nan}}},
      {"cosh(m)", {{"{a=1}", std::cosh(-2.5)}, {"{a=2}", 1}, {"{a=3}", std::cosh(4.0)}}},
      {"vector(pi())", {{"{}", pi}}},
  };
  for (const auto& c : cases) expectNear(vec(c.expr, 0), c.want, c.expr);
}

TEST_F(EvaluatorTest, RoundClampSortAndDateFunctions) {
  put("m", {{"a", "1"}}, 0, -2.5);
  put("m", {{"a", "2"}}, 0, 2.5);
  put("m", {{"a", "3"}}, 0, 7.3);
  expectNear(vec("round(m)", 0), {{"{a=1}", -2}, {"{a=2}", 3}, {"{a=3}", 7}}, "ties up");
  expectNear(vec("round(m, 5)", 0), {{"{a=1}", 0}, {"{a=2}", 5}, {"{a=3}", 5}}, "to 5");
  expectNear(vec("clamp(m, 0, 5)", 0), {{"{a=1}", 0}, {"{a=2}", 2.5}, {"{a=3}", 5}}, "clamp");
  expectNear(vec("clamp(m, 5, 0)", 0), {}, "max below min");
  auto sorted = eval("sort_desc(m)", 0);
  ASSERT_TRUE(sorted.ok()) << sorted.status().message();
  ASSERT_EQ(sorted->vector.size(), 3u);
  EXPECT_EQ(sorted->vector[0].value, 7.3);
  EXPECT_EQ(sorted->vector[2].value, -2.5);
  EXPECT_EQ(sorted->vector[0].labels.get("__name__"), "m");  // sort keeps the name
  // 2024-02-29T13:45:00Z, a Thursday, the 60th day of a leap year
  put("t", {}, 0, 1709214300);
  expectNear(vec("year(t)", 0), {{"{}", 2024}}, "year");
  expectNear(vec("month(t)", 0), {{"{}", 2}}, "month");
  expectNear(vec("day_of_month(t)", 0), {{"{}", 29}}, "day_of_month");
  expectNear(vec("day_of_week(t)", 0), {{"{}", 4}}, "day_of_week");
  expectNear(vec("day_of_year(t)", 0), {{"{}", 60}}, "day_of_year");
  expectNear(vec("days_in_month(t)", 0), {{"{}", 29}}, "days_in_month");
  expectNear(vec("hour(t)", 0), {{"{}", 13}}, "hour");
  expectNear(vec("minute(t)", 0), {{"{}", 45}}, "minute");
  // no argument: the evaluation time (kT0 = 2023-11-14T22:13:20Z)
  expectNear(vec("hour()", 0), {{"{}", 22}}, "hour of now");
  expectNear(vec("year()", 0), {{"{}", 2023}}, "year of now");
}

TEST_F(EvaluatorTest, GroupStddevAndStdvarAggregations) {
  // 2, 4, 4, 4, 5, 5, 7, 9 in group x (mean 5, population variance 4); 3 alone in y
  const double xs[] = {2, 4, 4, 4, 5, 5, 7, 9};
  for (int i = 0; i < 8; ++i) put("m", {{"g", "x"}, {"i", std::to_string(i)}}, 0, xs[i]);
  put("m", {{"g", "y"}, {"i", "0"}}, 0, 3);
  expectNear(vec("stdvar by (g) (m)", 0), {{"{g=x}", 4}, {"{g=y}", 0}}, "stdvar");
  expectNear(vec("stddev by (g) (m)", 0), {{"{g=x}", 2}, {"{g=y}", 0}}, "stddev");
  expectNear(vec("group by (g) (m)", 0), {{"{g=x}", 1}, {"{g=y}", 1}}, "group");
  expectNear(vec("group without (i) (m)", 0), {{"{g=x}", 1}, {"{g=y}", 1}}, "group without");
}

TEST_F(EvaluatorTest, TimestampIsTheSampleTimeOfASelectorAndTheEvaluationTimeOtherwise) {
  put("m", {{"a", "1"}}, 10, 5);
  put("m", {{"a", "2"}}, 20, 6);
  const double t0 = static_cast<double>(kT0) / 1000;
  expectNear(vec("timestamp(m)", 30), {{"{a=1}", t0 + 10}, {"{a=2}", t0 + 20}}, "selector");
  expectNear(vec("timestamp(m offset 15s)", 30), {{"{a=1}", t0 + 10}}, "offset");
  expectNear(vec("timestamp(sum(m))", 30), {{"{}", t0 + 30}}, "expression");
}

TEST_F(EvaluatorTest, RateExtrapolatesToRangeBoundaries) {
  // Samples 10 s after the range start and 5 s before its end: both gaps are below 1.1
  // sample intervals, so the 30 observed over 45 s extrapolate to 60 s.
  series("c_total", {}, 10, 15, {100, 110, 120, 130});
  expectNear(vec("increase(c_total[1m])", 60), {{"{}", 40}}, "both ends");
  expectNear(vec("rate(c_total[1m])", 60), {{"{}", 40.0 / 60}}, "rate");
}

TEST_F(EvaluatorTest, RateExtrapolatesHalfAnIntervalWhereTheSeriesStartsInsideTheRange) {
  // A 30 s gap at the start is far beyond 1.1 intervals: only half an interval (5 s) is added.
  series("c_total", {}, 30, 10, {5, 6, 7, 8});
  expectNear(vec("increase(c_total[1m])", 60), {{"{}", 3.0 * 35 / 30}}, "start inside");
}

TEST_F(EvaluatorTest, RateDoesNotExtrapolateBelowZero) {
  // Extrapolating 30 s back from 1 at slope 1/15 s would cross zero after 15 s: stop there.
  series("c_total", {}, 30, 15, {1, 2, 3});
  expectNear(vec("increase(c_total[1m])", 60), {{"{}", 2.0 * 45 / 30}}, "zero point");
}

TEST_F(EvaluatorTest, RateNeedsTwoPoints) {
  put("c_total", {}, 50, 3);
  expectNear(vec("rate(c_total[1m])", 60), {}, "single point");
  expectNear(vec("irate(c_total[1m])", 60), {}, "irate single point");
  expectNear(vec("deriv(c_total[1m])", 60), {}, "deriv single point");
  expectNear(vec("avg_over_time(c_total[1m])", 60), {{"{}", 3}}, "over_time single point");
}

TEST_F(EvaluatorTest, RangeIsInclusiveAtBothEnds) {
  series("g", {}, 0, 30, {1, 2, 3});  // t = 0, 30, 60
  expectNear(vec("count_over_time(g[1m])", 60), {{"{}", 3}}, "[0, 60]");
  expectNear(vec("count_over_time(g[1m])", 60.001), {{"{}", 2}}, "(0, 60]");
  expectNear(vec("count_over_time(g[1m] offset 30s)", 60), {{"{}", 2}}, "offset");
}

TEST_F(EvaluatorTest, OverTimeFunctionsAndDeriv) {
  series("g", {{"i", "a"}}, 0, 10, {4, 8, 6, 2});
  expectNear(vec("avg_over_time(g[1m])", 30), {{"{i=a}", 5}}, "avg");
  expectNear(vec("min_over_time(g[1m])", 30), {{"{i=a}", 2}}, "min");
  expectNear(vec("max_over_time(g[1m])", 30), {{"{i=a}", 8}}, "max");
  expectNear(vec("sum_over_time(g[1m])", 30), {{"{i=a}", 20}}, "sum");
  expectNear(vec("count_over_time(g[1m])", 30), {{"{i=a}", 4}}, "count");
  series("line", {}, 0, 10, {1, 21, 41, 61});  // 2 per second
  expectNear(vec("deriv(line[1m])", 30), {{"{}", 2}}, "deriv");
  series("flat", {}, 0, 10, {5, 5, 5});
  expectNear(vec("deriv(flat[1m])", 20), {{"{}", 0}}, "deriv of a constant");
}

TEST_F(EvaluatorTest, Aggregations) {
  put("m", {{"job", "a"}, {"i", "1"}}, 0, 1);
  put("m", {{"job", "a"}, {"i", "2"}}, 0, 3);
  put("m", {{"job", "b"}, {"i", "1"}}, 0, 10);
  expectNear(vec("sum(m)", 0), {{"{}", 14}}, "sum");
  expectNear(vec("sum by (job) (m)", 0), {{"{job=a}", 4}, {"{job=b}", 10}}, "by");
  expectNear(vec("sum(m) by (job)", 0), {{"{job=a}", 4}, {"{job=b}", 10}}, "by after");
  expectNear(vec("avg without (i) (m)", 0), {{"{job=a}", 2}, {"{job=b}", 10}}, "without");
  expectNear(vec("min by (i) (m)", 0), {{"{i=1}", 1}, {"{i=2}", 3}}, "min");
  expectNear(vec("max(m) by (i)", 0), {{"{i=1}", 10}, {"{i=2}", 3}}, "max");
  expectNear(vec("count by (job) (m)", 0), {{"{job=a}", 2}, {"{job=b}", 1}}, "count");
  expectNear(vec("sum by (nope) (m)", 0), {{"{}", 14}}, "by a missing label");
  expectNear(vec("sum by (__name__) (m)", 0), {{"{__name__=m}", 14}}, "by name");
  expectNear(vec("sum(absent_metric)", 0), {}, "empty input");
}

TEST_F(EvaluatorTest, ArithmeticDropsNameComparisonKeepsIt) {
  put("m", {{"i", "1"}}, 0, 4);
  put("m", {{"i", "2"}}, 0, 10);
  expectNear(vec("m * 2", 0), {{"{i=1}", 8}, {"{i=2}", 20}}, "vector * scalar");
  expectNear(vec("100 / m", 0), {{"{i=1}", 25}, {"{i=2}", 10}}, "scalar / vector");
  expectNear(vec("m % 3", 0), {{"{i=1}", 1}, {"{i=2}", 1}}, "mod");
  expectNear(vec("m ^ 0.5", 0), {{"{i=1}", 2}, {"{i=2}", std::sqrt(10)}}, "pow");
  expectNear(vec("-m", 0), {{"{i=1}", -4}, {"{i=2}", -10}}, "unary");
  expectNear(vec("m > 5", 0), {{"{__name__=m,i=2}", 10}}, "filter keeps name");
  expectNear(vec("5 < m", 0), {{"{__name__=m,i=2}", 10}}, "scalar on the left keeps vector value");
  expectNear(vec("m > bool 5", 0), {{"{i=1}", 0}, {"{i=2}", 1}}, "bool");
  expectNear(vec("m == bool 4", 0), {{"{i=1}", 1}, {"{i=2}", 0}}, "== bool");
  expectNear(vec("abs(-m)", 0), {{"{i=1}", 4}, {"{i=2}", 10}}, "abs");
  expectNear(vec("clamp_min(m, 5)", 0), {{"{i=1}", 5}, {"{i=2}", 10}}, "clamp_min");
  expectNear(vec("clamp_max(m, 5)", 0), {{"{i=1}", 4}, {"{i=2}", 5}}, "clamp_max");
  EXPECT_EQ(scalar("1 + 2 * 3 ^ 2", 0), 19);
  EXPECT_EQ(scalar("-2 ^ 2", 0), -4);
  EXPECT_EQ(scalar("2 > bool 1", 0), 1);
  EXPECT_TRUE(std::isinf(scalar("1 / 0", 0)));
}

TEST_F(EvaluatorTest, OneToOneMatching) {
  put("errors", {{"job", "a"}, {"code", "500"}}, 0, 5);
  put("errors", {{"job", "b"}, {"code", "500"}}, 0, 1);
  put("requests", {{"job", "a"}}, 0, 50);
  put("requests", {{"job", "b"}}, 0, 100);
  put("requests", {{"job", "c"}}, 0, 100);
  expectNear(vec("errors / ignoring(code) requests", 0), {{"{job=a}", 0.1}, {"{job=b}", 0.01}},
             "ignoring drops the ignored labels");
  expectNear(vec("errors / on(job) requests", 0), {{"{job=a}", 0.1}, {"{job=b}", 0.01}},
             "on keeps only the on labels");
  expectNear(vec("errors / requests", 0), {}, "no match on all labels");
  expectNear(vec("errors > on(job) requests / 20", 0), {{"{job=a}", 5}}, "comparison filter");
  expectNear(vec("errors > bool on(job) requests / 20", 0), {{"{job=a}", 1}, {"{job=b}", 0}},
             "comparison bool");
}

TEST_F(EvaluatorTest, GroupLeftCopiesLabelsFromTheOneSide) {
  put("pg_stat_activity_count", {{"datname", "chat"}, {"state", "active"}}, 0, 30);
  put("pg_stat_activity_count", {{"datname", "chat"}, {"state", "idle"}}, 0, 60);
  put("pg_settings_max_connections", {{"server", "pg1"}}, 0, 100);
  put("info", {{"datname", "chat"}, {"owner", "team-chat"}}, 0, 1);
  expectNear(vec("pg_stat_activity_count / on() group_left pg_settings_max_connections", 0),
             {{"{datname=chat,state=active}", 0.3}, {"{datname=chat,state=idle}", 0.6}},
             "on() group_left");
  expectNear(vec("pg_stat_activity_count * on(datname) group_left(owner) info", 0),
             {{"{datname=chat,owner=team-chat,state=active}", 30},
              {"{datname=chat,owner=team-chat,state=idle}", 60}},
             "group_left(owner)");
  expectNear(vec("info * on(datname) group_right(owner) pg_stat_activity_count", 0),
             {{"{datname=chat,owner=team-chat,state=active}", 30},
              {"{datname=chat,owner=team-chat,state=idle}", 60}},
             "group_right");
  expectNear(vec("pg_stat_activity_count - on() group_left pg_settings_max_connections", 0),
             {{"{datname=chat,state=active}", -70}, {"{datname=chat,state=idle}", -40}},
             "operand order kept");
  expectNear(vec("pg_settings_max_connections - on() group_right pg_stat_activity_count", 0),
             {{"{datname=chat,state=active}", 70}, {"{datname=chat,state=idle}", 40}},
             "group_right operand order kept");
}

TEST_F(EvaluatorTest, MatchingErrors) {
  put("a", {{"job", "x"}, {"i", "1"}}, 0, 1);
  put("a", {{"job", "x"}, {"i", "2"}}, 0, 1);
  put("b", {{"job", "x"}, {"k", "1"}}, 0, 1);
  put("b", {{"job", "x"}, {"k", "2"}}, 0, 1);
  EXPECT_NE(error("a / on(job) b", 0).find("many-to-many matching not allowed"), std::string::npos);
  EXPECT_NE(error("a / on(job) group_left b", 0).find("many-to-many"), std::string::npos);
  put("c", {{"job", "x"}}, 0, 1);
  EXPECT_NE(error("a / on(job) c", 0).find("many-to-one matching must be explicit"),
            std::string::npos);
  // Two names collapse to one label set once __name__ is gone.
  put("d", {{"job", "x"}, {"i", "1"}}, 0, 1);
  EXPECT_EQ(error("{__name__=~\"a|d\", i=\"1\"} * 2", 0),
            "vector cannot contain metrics with the same labelset");
  put("a", {{"job", "x"}, {"i", "1"}}, 30, 2);
  put("d", {{"job", "x"}, {"i", "1"}}, 30, 2);
  EXPECT_EQ(error("rate({__name__=~\"a|d\", i=\"1\"}[1m])", 30),
            "vector cannot contain metrics with the same labelset");
}

TEST_F(EvaluatorTest, SetOperators) {
  put("x", {{"i", "1"}}, 0, 1);
  put("x", {{"i", "2"}}, 0, 2);
  put("y", {{"i", "2"}}, 0, 20);
  put("y", {{"i", "3"}}, 0, 30);
  expectNear(vec("x and y", 0), {{"{__name__=x,i=2}", 2}}, "and");
  expectNear(vec("x unless y", 0), {{"{__name__=x,i=1}", 1}}, "unless");
  expectNear(vec("x or y", 0),
             {{"{__name__=x,i=1}", 1}, {"{__name__=x,i=2}", 2}, {"{__name__=y,i=3}", 30}}, "or");
  expectNear(vec("x and on() y", 0), {{"{__name__=x,i=1}", 1}, {"{__name__=x,i=2}", 2}}, "on()");
  expectNear(vec("x and ignoring(i) y", 0), {{"{__name__=x,i=1}", 1}, {"{__name__=x,i=2}", 2}},
             "ignoring");
  expectNear(vec("x and nothing", 0), {}, "and empty");
  expectNear(vec("nothing or y", 0), {{"{__name__=y,i=2}", 20}, {"{__name__=y,i=3}", 30}},
             "or empty");
}

TEST_F(EvaluatorTest, AbsentDerivesLabelsFromEqualityMatchers) {
  put("up", {{"job", "api"}}, 0, 1);
  expectNear(vec("absent(up{job=\"api\"})", 0), {}, "present");
  expectNear(vec("absent(up{job=\"db\"})", 0), {{"{job=db}", 1}}, "absent");
  expectNear(vec("absent(nope{job=\"x\",env=~\"p.*\",team=\"a\",team=\"b\"})", 0), {{"{job=x}", 1}},
             "regex and repeated labels dropped");
  expectNear(vec("absent(nope{job=\"\"})", 0), {{"{}", 1}}, "empty value");
  expectNear(vec("absent(sum(nope{job=\"x\"}))", 0), {{"{}", 1}}, "not a selector");
}

TEST_F(EvaluatorTest, HistogramQuantile) {
  const auto bucket = [&](const std::string& le, double v) {
    put("rt_bucket", {{"route", "/a"}, {"le", le}}, 0, v);
  };
  bucket("0.1", 10);
  bucket("0.5", 30);
  bucket("1", 40);
  bucket("+Inf", 40);
  expectNear(vec("histogram_quantile(0.5, rt_bucket)", 0), {{"{route=/a}", 0.3}}, "median");
  expectNear(vec("histogram_quantile(0.99, rt_bucket)", 0), {{"{route=/a}", 0.98}}, "p99");
  expectNear(vec("histogram_quantile(1, rt_bucket)", 0), {{"{route=/a}", 1}}, "max bound");
  expectNear(vec("histogram_quantile(0.05, rt_bucket)", 0), {{"{route=/a}", 0.02}}, "first");
  expectNear(vec("histogram_quantile(2, rt_bucket)", 0), {{"{route=/a}", kInf}}, "q > 1");
  expectNear(vec("histogram_quantile(0.5, sum by (le) (rt_bucket))", 0), {{"{}", 0.3}}, "summed");
  // Without a +Inf bucket the quantile is undefined.
  put("x_bucket", {{"le", "1"}}, 0, 5);
  expectNear(vec("histogram_quantile(0.5, x_bucket)", 0), {{"{}", std::nan("")}}, "no +Inf");
  // Series without le are skipped.
  put("y_bucket", {}, 0, 5);
  expectNear(vec("histogram_quantile(0.5, y_bucket)", 0), {}, "no le");
}

TEST(BucketQuantileTest, FollowsPrometheus) {
  const double inf = std::numeric_limits<double>::infinity();
  // Non-monotonic counts (a scrape that raced increments) are raised to the running max.
  // (Without the fix: 0.5 + 0.5 * 7 / 12.)
  EXPECT_DOUBLE_EQ(bucketQuantile(0.75, {{0.1, 10}, {0.5, 8}, {1, 20}, {inf, 20}}), 0.75);
  // Duplicate bounds are added together.
  EXPECT_DOUBLE_EQ(bucketQuantile(0.25, {{1, 2}, {1, 6}, {inf, 10}, {inf, 10}}), 0.625);
  // Rank in the +Inf bucket: the largest finite bound.
  EXPECT_DOUBLE_EQ(bucketQuantile(0.9, {{1, 5}, {2, 6}, {inf, 10}}), 2);
  // A first bucket with a bound <= 0 is returned as is.
  EXPECT_DOUBLE_EQ(bucketQuantile(0.1, {{-1, 5}, {1, 8}, {inf, 10}}), -1);
  EXPECT_TRUE(std::isnan(bucketQuantile(0.5, {{inf, 0}, {1, 0}})));
  EXPECT_TRUE(std::isnan(bucketQuantile(0.5, {{inf, 3}})));
  EXPECT_TRUE(std::isnan(bucketQuantile(std::nan(""), {{1, 1}, {inf, 1}})));
  EXPECT_EQ(bucketQuantile(-1, {{1, 1}, {inf, 1}}), -inf);
}

TEST_F(EvaluatorTest, ScalarVectorAndTime) {
  put("one", {}, 0, 3);
  put("two", {{"i", "1"}}, 0, 1);
  put("two", {{"i", "2"}}, 0, 2);
  EXPECT_EQ(scalar("scalar(one)", 0), 3);
  EXPECT_TRUE(std::isnan(scalar("scalar(two)", 0)));
  EXPECT_TRUE(std::isnan(scalar("scalar(nothing)", 0)));
  expectNear(vec("vector(1)", 0), {{"{}", 1}}, "vector");
  EXPECT_DOUBLE_EQ(scalar("time()", 10), static_cast<double>(kT0) / 1000 + 10);
  expectNear(vec("one * scalar(one)", 0), {{"{}", 9}}, "scalar()");
  expectNear(vec("time() - one", 0), {{"{}", static_cast<double>(kT0) / 1000 - 3}}, "time()");
}

TEST_F(EvaluatorTest, TopkBottomkKeepWholeSeries) {
  put("m", {{"g", "x"}, {"i", "1"}}, 0, 5);
  put("m", {{"g", "x"}, {"i", "2"}}, 0, 9);
  put("m", {{"g", "x"}, {"i", "3"}}, 0, 1);
  put("m", {{"g", "y"}, {"i", "1"}}, 0, 4);
  expectNear(vec("topk(2, m)", 0), {{"{__name__=m,g=x,i=1}", 5}, {"{__name__=m,g=x,i=2}", 9}},
             "topk");
  expectNear(vec("bottomk by (g) (1, m)", 0),
             {{"{__name__=m,g=x,i=3}", 1}, {"{__name__=m,g=y,i=1}", 4}}, "bottomk by");
  expectNear(vec("topk(0, m)", 0), {}, "k < 1");
  expectNear(vec("topk(2.9, m)", 0), {{"{__name__=m,g=x,i=1}", 5}, {"{__name__=m,g=x,i=2}", 9}},
             "k truncated");
  EXPECT_NE(error("topk(1e300, m)", 0).find("overflows int64"), std::string::npos);
}

TEST_F(EvaluatorTest, TopkTiesGoToTheFirstSeriesInLabelOrder) {
  for (const char* i : {"d", "b", "a", "c"}) put("m", {{"i", i}}, 0, 1);
  expectNear(vec("topk(1, m)", 0), {{"{__name__=m,i=a}", 1}}, "topk tie");
  expectNear(vec("bottomk(1, m)", 0), {{"{__name__=m,i=a}", 1}}, "bottomk tie");
}

TEST_F(EvaluatorTest, QuantileAndCountValues) {
  // 1, 2, 4, 10: q=0.5 sits between 2 and 4 (rank 1.5), q=0.9 between 4 and 10 (rank 2.7).
  int i = 0;
  for (double v : {10.0, 2.0, 4.0, 1.0}) put("m", {{"i", std::to_string(i++)}}, 0, v);
  expectNear(vec("quantile(0.5, m)", 0), {{"{}", 3}}, "median");
  expectNear(vec("quantile(0.9, m)", 0), {{"{}", 4 + 0.7 * 6}}, "p90");
  expectNear(vec("quantile(2, m)", 0), {{"{}", kInf}}, "q > 1");
  put("n", {{"i", "0"}}, 0, 2);
  put("n", {{"i", "1"}}, 0, 2);
  put("n", {{"i", "2"}}, 0, 1e6);
  put("n", {{"i", "3"}}, 0, 0.5);
  expectNear(vec("count_values(\"v\", n)", 0), {{"{v=2}", 2}, {"{v=1000000}", 1}, {"{v=0.5}", 1}},
             "count_values");
  expectNear(vec("count_values without (i) (\"v\", n)", 0),
             {{"{v=2}", 2}, {"{v=1000000}", 1}, {"{v=0.5}", 1}}, "count_values without");
  EXPECT_EQ(error("count_values(\"a-b\", n)", 0), "invalid label name \"a-b\"");
  // Go's FormatFloat(v, 'f', -1): shortest digits, zero-padded, never an exponent.
  put("p", {{"i", "0"}}, 0, 1e300);
  put("p", {{"i", "1"}}, 0, -2.5e-7);
  expectNear(vec("count_values(\"v\", p)", 0),
             {{"{v=1" + std::string(300, '0') + "}", 1}, {"{v=-0.00000025}", 1}}, "formatting");
}

TEST_F(EvaluatorTest, AvgIsARunningMean) {
  put("m", {{"i", "1"}}, 0, 1e308);
  put("m", {{"i", "2"}}, 0, 1e308);
  expectNear(vec("avg(m)", 0), {{"{}", 1e308}}, "no overflow");
}

TEST_F(EvaluatorTest, LabelReplaceAndLabelJoin) {
  put("up", {{"instance", "db1:9187"}, {"job", "pg"}}, 0, 1);
  expectNear(vec("label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")", 0),
             {{"{__name__=up,host=db1,instance=db1:9187,job=pg}", 1}}, "capture");
  expectNear(vec("label_replace(up, \"host\", \"${1}x$$\", \"instance\", \"(?P<h>[a-z]+)1.*\")", 0),
             {{"{__name__=up,host=dbx$,instance=db1:9187,job=pg}", 1}}, "braces and $$");
  expectNear(vec("label_replace(up, \"host\", \"$h-$2\", \"instance\", \"(?P<h>[a-z]+)1.*\")", 0),
             {{"{__name__=up,host=db-,instance=db1:9187,job=pg}", 1}}, "named group");
  expectNear(vec("label_replace(up, \"job\", \"\", \"instance\", \".*\")", 0),
             {{"{__name__=up,instance=db1:9187}", 1}}, "empty result deletes");
  expectNear(vec("label_replace(up, \"job\", \"x\", \"instance\", \"nomatch\")", 0),
             {{"{__name__=up,instance=db1:9187,job=pg}", 1}}, "no match");
  EXPECT_EQ(error("label_replace(up, \"a\", \"x\", \"b\", \"(\")", 0),
            "invalid regular expression in label_replace(): (");
  EXPECT_EQ(error("label_replace(up, \"1a\", \"x\", \"b\", \".*\")", 0),
            "invalid destination label name in label_replace(): 1a");
  expectNear(vec("label_join(up, \"x\", \"/\", \"job\", \"instance\", \"none\")", 0),
             {{"{__name__=up,instance=db1:9187,job=pg,x=pg/db1:9187/}", 1}}, "join");
  expectNear(vec("label_join(up, \"job\", \",\")", 0), {{"{__name__=up,instance=db1:9187}", 1}},
             "join of nothing deletes");
  put("up", {{"instance", "db2:9187"}, {"job", "pg"}}, 0, 1);
  EXPECT_EQ(error("label_replace(up, \"instance\", \"same\", \"job\", \".*\")", 0),
            "vector cannot contain metrics with the same labelset");
}

TEST_F(EvaluatorTest, MoreRangeFunctions) {
  // 0, 10, 20, 30 at 0 s, 10 s, 20 s, 30 s: slope 1/s.
  series("g", {}, 0, 10, {0, 10, 20, 30});
  expectNear(vec("predict_linear(g[1m], 60)", 30), {{"{}", 90}}, "predict 60 s ahead");
  expectNear(vec("predict_linear(g[1m], 0)", 40), {{"{}", 40}}, "intercept at eval time");
  expectNear(vec("idelta(g[1m])", 30), {{"{}", 10}}, "idelta");
  expectNear(vec("quantile_over_time(0.5, g[1m])", 30), {{"{}", 15}}, "median over time");
  expectNear(vec("absent_over_time(g[1m])", 30), {}, "present");
  expectNear(vec("absent_over_time(nothing{a=\"b\"}[1m])", 30), {{"{a=b}", 1}}, "absent");
  // holt_winters with sf = tf = 0.5 over 0, 10, 20, 30 (a straight line) stays on it.
  expectNear(vec("holt_winters(g[1m], 0.5, 0.5)", 30), {{"{}", 30}}, "holt_winters");
  EXPECT_NE(error("holt_winters(g[1m], 1, 0.5)", 30).find("invalid smoothing factor"),
            std::string::npos);
  expectNear(vec("histogram_count(g)", 30), {}, "no native histograms");
}

TEST_F(EvaluatorTest, SubqueriesStepThroughTheRange) {
  // g = t (seconds) for t = 0..120 every second.
  for (int t = 0; t <= 120; ++t) put("g", {}, t, t);
  // [60s:20s] at t=120: steps 60, 80, 100, 120 (multiples of 20 s from the epoch kT0,
  // which is itself a multiple of 20 s).
  expectNear(vec("count_over_time(g[60s:20s])", 120), {{"{}", 4}}, "steps");
  expectNear(vec("min_over_time(g[60s:20s])", 120), {{"{}", 60}}, "first step");
  expectNear(vec("max_over_time(g[60s:20s] offset 30s)", 120), {{"{}", 80}}, "offset");
  expectNear(vec("rate(g[60s:10s])", 120), {{"{}", 1}}, "rate over subquery");
  // The default step is 1m: kT0 is 20 s past a whole minute, so the only step is t=100.
  expectNear(vec("last_over_time(g[1m:])", 120), {{"{__name__=g}", 100}}, "default step");
  expectNear(vec("max_over_time(deriv(g[30s])[1m:15s])", 120), {{"{}", 1}}, "nested function");
  expectNear(vec("sum_over_time(sum_over_time(g[2s:1s])[4s:2s])", 120),
             {{"{}", (114 + 115 + 116) + (116 + 117 + 118) + (118 + 119 + 120)}},
             "nested subqueries");
}

TEST_F(EvaluatorTest, AtModifierPinsTheTime) {
  for (int t = 0; t <= 120; ++t) put("g", {}, t, t);
  const double t0 = static_cast<double>(kT0) / 1000;
  expectNear(vec("g @ " + std::to_string(static_cast<int64_t>(t0) + 50), 120),
             {{"{__name__=g}", 50}}, "@ on a selector");
  expectNear(vec("g @ start()", 100), {{"{__name__=g}", 100}}, "start()");
  expectNear(vec("max_over_time(g[10s] @ end())", 100), {{"{}", 100}}, "end()");
  expectNear(vec("g offset -10s", 100), {{"{__name__=g}", 110}}, "negative offset");
  expectNear(vec("min_over_time(g[20s:10s] @ " + std::to_string(static_cast<int64_t>(t0) + 60) +
                     " offset 10s)",
                 120),
             {{"{}", 30}}, "@ and offset on a subquery");
}

TEST_F(EvaluatorTest, Atan2Operator) {
  put("y", {}, 0, 1);
  put("x", {}, 0, -1);
  // Prometheus 2.42 keeps the metric name for atan2 (unlike the other arithmetic).
  expectNear(vec("y atan2 x", 0), {{"{__name__=y}", std::atan2(1.0, -1.0)}}, "vectors");
  EXPECT_NEAR(scalar("1 atan2 1", 0), std::atan(1.0), 1e-12);
}

TEST_F(EvaluatorTest, HugeSubqueriesFailInsteadOfRunningForever) {
  put("g", {}, 0, 1);
  EXPECT_NE(error("max_over_time(g[1y:1ms])", 0).find("subqueries would evaluate more than"),
            std::string::npos);
}

TEST_F(EvaluatorTest, RejectsRangeVectorResults) {
  put("m", {}, 0, 1);
  auto r = eval("m[5m]", 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("instant vector or a scalar"), std::string::npos);
}

}  // namespace
}  // namespace dbpulse::rules
