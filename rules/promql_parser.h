#pragma once
// PromQL as Prometheus 2.42 parses it, into an expression tree (a recursive-descent
// parser with Prometheus's precedence and type rules): every expression that
// `promtool check rules` accepts parses here, and what it rejects is rejected here.
//
//   selectors        name{l="v", l!="v", l=~"re", l!~"re"}, {__name__=~"re"}, [5m],
//                    offset 5m / offset -5m, @ <unix seconds> / @ start() / @ end()
//   subqueries       expr[5m:1m], expr[5m:] (step: EvalOptions::default_step_ms)
//   functions        every function of Prometheus 2.42 (see functionSpecs() in the .cpp;
//                    histogram_count/sum/fraction see float samples only, so they return
//                    nothing, as in Prometheus)
//   aggregations     sum avg min max count group stddev stdvar topk bottomk quantile
//                    count_values, with by (...) / without (...)
//   binary           ^ (right-assoc) > unary - > * / % atan2 > + - > == != > < >= <=
//                    (with bool) > and unless > or; on/ignoring, group_left/group_right
//   literals         numbers (decimal, hex, Inf, NaN), strings where a function needs one
// Regular expressions are RE2 (Go's regexp syntax, as in Prometheus), fully anchored
// (^(?:re)$), matched in linear time. A bad regular expression in a selector is a parse
// error; in label_replace() it is an evaluation error, as in Prometheus.
//
// Errors: Status kInvalidArgument whose message starts with "LINE:COL: " (1-based,
// bytes) inside the expression text. Parsing is pure and thread-safe; the tree is
// immutable after parsing and may be shared between threads.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/status.h"

namespace re2 {
class RE2;
}

namespace dbpulse::rules {

// Compiles a Prometheus regular expression: RE2 syntax, anchored as ^(?:pattern)$.
// Errors: kInvalidArgument with RE2's reason ("missing ): (", "invalid escape sequence: \\1").
// The result is immutable and safe to share between threads.
Result<std::shared_ptr<const re2::RE2>> compileAnchoredRegex(std::string_view pattern);

enum class ValueType { kScalar, kInstantVector, kRangeVector, kString };
const char* valueTypeName(ValueType type);  // "scalar", "instant vector", ...

struct LabelMatcher {
  enum class Op { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  Op op = Op::kEqual;
  std::string name;
  std::string value;
  std::shared_ptr<const re2::RE2> regex;  // set for kRegexMatch / kRegexNoMatch

  // Whether a label value (empty = label absent) satisfies the matcher.
  bool matches(std::string_view label_value) const;
};

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kEqual,
  kNotEqual,
  kGreater,
  kLess,
  kGreaterEqual,
  kLessEqual,
  kAtan2,
  kAnd,
  kOr,
  kUnless,
};
const char* binaryOpName(BinaryOp op);  // "+", "==", "and", ...
bool isComparison(BinaryOp op);
bool isSetOperator(BinaryOp op);

enum class AggregateOp {
  kSum,
  kAvg,
  kMin,
  kMax,
  kCount,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kQuantile,
  kCountValues,
};
const char* aggregateOpName(AggregateOp op);

enum class Function {
  kRate,
  kIrate,
  kIncrease,
  kDelta,
  kDeriv,
  kAvgOverTime,
  kMinOverTime,
  kMaxOverTime,
  kSumOverTime,
  kCountOverTime,
  kChanges,
  kResets,
  kStddevOverTime,
  kStdvarOverTime,
  kLastOverTime,
  kPresentOverTime,
  kAbs,
  kClampMin,
  kClampMax,
  kHistogramQuantile,
  kAbsent,
  kTime,
  kVector,
  kScalar,
  kPi,
  kRound,
  kClamp,
  kSort,
  kSortDesc,
  kTimestamp,
  kDayOfMonth,
  kDayOfWeek,
  kDayOfYear,
  kDaysInMonth,
  kHour,
  kMinute,
  kMonth,
  kYear,
  kCeil,
  kFloor,
  kExp,
  kLn,
  kLog2,
  kLog10,
  kSqrt,
  kSgn,
  kSin,
  kCos,
  kTan,
  kAsin,
  kAcos,
  kAtan,
  kSinh,
  kCosh,
  kTanh,
  kAsinh,
  kAcosh,
  kAtanh,
  kDeg,
  kRad,
  kLabelReplace,
  kLabelJoin,
  kQuantileOverTime,
  kAbsentOverTime,
  kPredictLinear,
  kHoltWinters,
  kIdelta,
  kHistogramCount,
  kHistogramSum,
  kHistogramFraction,
};
const char* functionName(Function f);

enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

// How the two sides of a vector/vector binary operation are matched.
struct VectorMatching {
  Cardinality card = Cardinality::kOneToOne;  // kManyToMany for and/or/unless
  bool on = false;                            // on(labels) rather than ignoring(labels)
  std::vector<std::string> labels;            // the on/ignoring list
  std::vector<std::string> include;           // group_left/group_right(labels)
};

struct Expr;
using ExprPtr = std::unique_ptr<const Expr>;

struct Expr {
  enum class Kind {
    kNumber,     // number
    kString,     // text
    kSelector,   // metric_name, matchers, range_ms (> 0: range vector), offset_ms
    kCall,       // func(args...)
    kAggregate,  // aggregate (by|without grouping) (args[0])
    kBinary,     // lhs binary_op rhs, with return_bool / matching
    kUnary,      // -args[0]
    kParen,      // (args[0])
    kSubquery,   // args[0][range_ms:step_ms] with offset_ms / at
  };
  // The @ modifier of a selector or subquery.
  enum class At { kNone, kTime, kStart, kEnd };
  Kind kind = Kind::kNumber;
  ValueType type = ValueType::kScalar;  // what the node evaluates to
  size_t pos = 0;                       // byte offset of the node in the source text

  double number = 0;
  std::string text;

  std::string metric_name;             // "" when the selector is {...} only
  std::vector<LabelMatcher> matchers;  // without the metric name (but maybe __name__ ones)
  int64_t range_ms = 0;
  int64_t offset_ms = 0;  // may be negative
  int64_t step_ms = 0;    // subquery step; 0 = the default step
  At at = At::kNone;
  int64_t at_ms = 0;  // for At::kTime

  Function func = Function::kTime;
  AggregateOp aggregate = AggregateOp::kSum;
  ExprPtr param;  // topk/bottomk/quantile: scalar; count_values: string
  bool without = false;
  std::vector<std::string> grouping;

  BinaryOp binary_op = BinaryOp::kAdd;
  bool return_bool = false;
  VectorMatching matching;  // meaningful when both sides are instant vectors
  ExprPtr lhs, rhs;

  std::vector<ExprPtr> args;
};

// Parses a whole expression. Errors: "LINE:COL: parse error: ..." (kInvalidArgument).
Result<ExprPtr> parseExpr(std::string_view text);

// Prometheus duration syntax ("5m", "1h30m", "90s", "250ms", "1d", "1w", "1y"), as used
// in ranges, offsets and rule files (`for`, `interval`). Zero ("0s") is allowed here;
// ranges, steps and offsets refuse it, as Prometheus does.
Result<int64_t> parsePromDuration(std::string_view text);  // milliseconds

// Every function's name, space-separated (for messages and tests).
std::string supportedFunctionList();

// Calls `fn` for every selector in the tree (used for history checks and tests).
void forEachSelector(const Expr& expr, const std::function<void(const Expr&)>& fn);

}  // namespace dbpulse::rules
