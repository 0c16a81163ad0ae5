#include "rules/evaluator.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "rules/go_string.h"

namespace dbpulse::rules {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Thrown inside the evaluator only; evaluate() turns it into a Status.
struct EvalError {
  std::string message;
};

struct Value {
  ValueType type = ValueType::kScalar;
  double scalar = 0;
  Vector vector;
};

Labels withoutLabel(const Labels& in, std::string_view drop) {
  Labels out = in;
  out.erase(drop);
  return out;
}

bool contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Neumaier's compensated summation step (what Prometheus uses for regression sums).
void compensatedAdd(double inc, double& sum, double& c) {
  const double t = sum + inc;
  if (std::fabs(sum) >= std::fabs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

// Prometheus's extrapolatedRate: rate(), increase() and delta() over the points of one
// series in [range_start, range_end]. Returns false when there are fewer than two points.
bool extrapolatedRate(const Point* pts, size_t n, int64_t range_start, int64_t range_end,
                      bool is_counter, bool is_rate, double& out) {
  if (n < 2) return false;
  double result = pts[n - 1].value - pts[0].value;
  if (is_counter) {
    // A drop is a counter reset: the value before it was lost and counts again.
    double prev = pts[0].value;
    for (size_t i = 1; i < n; ++i) {
      if (pts[i].value < prev) result += prev;
      prev = pts[i].value;
    }
  }
  double duration_to_start = static_cast<double>(pts[0].t_ms - range_start) / 1000;
  const double duration_to_end = static_cast<double>(range_end - pts[n - 1].t_ms) / 1000;
  const double sampled_interval = static_cast<double>(pts[n - 1].t_ms - pts[0].t_ms) / 1000;
  const double average_between = sampled_interval / static_cast<double>(n - 1);

  if (is_counter && result > 0 && pts[0].value >= 0) {
    // A counter starts at zero: extrapolating further back than where it would have been
    // zero would invent negative values.
    const double duration_to_zero = sampled_interval * (pts[0].value / result);
    if (duration_to_zero < duration_to_start) duration_to_start = duration_to_zero;
  }
  // Extrapolate to a boundary only when it is about one sample interval away; otherwise the
  // series started or ended inside the range, and only half an interval is added.
  const double threshold = average_between * 1.1;
  double extrapolate_to = sampled_interval;
  extrapolate_to += duration_to_start < threshold ? duration_to_start : average_between / 2;
  extrapolate_to += duration_to_end < threshold ? duration_to_end : average_between / 2;
  double factor = extrapolate_to / sampled_interval;
  if (is_rate) factor /= static_cast<double>(range_end - range_start) / 1000;
  out = result * factor;
  return true;
}

bool instantRate(const Point* pts, size_t n, double& out) {
  if (n < 2) return false;
  const Point& last = pts[n - 1];
  const Point& prev = pts[n - 2];
  double v = last.value < prev.value ? last.value : last.value - prev.value;  // reset
  const int64_t dt = last.t_ms - prev.t_ms;
  if (dt == 0) return false;
  out = v / (static_cast<double>(dt) / 1000);
  return true;
}

// Least-squares slope per second and the intercept at `intercept_ms` (x is measured from
// there, as Prometheus does; deriv() takes the first point, to keep the sums small).
void linearRegression(const Point* pts, size_t n, int64_t intercept_ms, double& slope,
                      double& intercept) {
  const double init_y = pts[0].value;
  bool const_y = true;
  double count = 0, sum_x = 0, c_x = 0, sum_y = 0, c_y = 0, sum_xy = 0, c_xy = 0, sum_x2 = 0,
         c_x2 = 0;
  for (size_t i = 0; i < n; ++i) {
    if (const_y && i > 0 && pts[i].value != init_y) const_y = false;
    count += 1;
    const double x = static_cast<double>(pts[i].t_ms - intercept_ms) / 1e3;
    compensatedAdd(x, sum_x, c_x);
    compensatedAdd(pts[i].value, sum_y, c_y);
    compensatedAdd(x * pts[i].value, sum_xy, c_xy);
    compensatedAdd(x * x, sum_x2, c_x2);
  }
  if (const_y) {
    slope = std::isinf(init_y) ? kNaN : 0;
    intercept = std::isinf(init_y) ? kNaN : init_y;
    return;
  }
  sum_x += c_x;
  sum_y += c_y;
  sum_xy += c_xy;
  sum_x2 += c_x2;
  const double cov_xy = sum_xy - sum_x * sum_y / count;
  const double var_x = sum_x2 - sum_x * sum_x / count;
  slope = cov_xy / var_x;
  intercept = sum_y / count - slope * sum_x / count;
}

// Prometheus's quantile (the aggregation and quantile_over_time): linear interpolation
// between the closest ranks, NaN values sorting first.
double quantileOf(double q, std::vector<double> values) {
  if (values.empty()) return kNaN;
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  if (std::isnan(q)) return kNaN;
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a)) return !std::isnan(b);
    return a < b;
  });
  const double n = static_cast<double>(values.size());
  const double rank = q * (n - 1);
  const double lower = std::max(0.0, std::floor(rank));
  const double upper = std::min(n - 1, lower + 1);
  const double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) +
         values[static_cast<size_t>(upper)] * weight;
}

// Double exponential smoothing (holt_winters), as Prometheus computes it.
double holtWinters(const Point* pts, size_t n, double sf, double tf) {
  double s0 = 0, s1 = pts[0].value, b = pts[1].value - pts[0].value;
  for (size_t i = 1; i < n; ++i) {
    const double x = sf * pts[i].value;
    if (i > 1) b = tf * (s1 - s0) + (1 - tf) * b;  // the trend at the previous point
    const double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

// Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that read back as v, never
// in exponent form (count_values' label values).
std::string formatFloatPlain(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  // The shortest round-trip digits, then placed without an exponent (padding with zeros,
  // not with the exact binary expansion).
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);
  const size_t e_at = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e_at + 1);
  std::string mantissa = sci.substr(0, e_at);
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out;
  if (exp < 0) {
    out = "0." + std::string(static_cast<size_t>(-exp - 1), '0') + digits;
  } else if (static_cast<size_t>(exp) + 1 >= digits.size()) {
    out = digits + std::string(static_cast<size_t>(exp) + 1 - digits.size(), '0');
  } else {
    out = digits.substr(0, static_cast<size_t>(exp) + 1) + "." +
          digits.substr(static_cast<size_t>(exp) + 1);
  }
  return negative ? "-" + out : out;
}

bool isValidLabelName(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool overTime(Function f, const Point* pts, size_t n, double& out) {
  if (n == 0) return false;
  switch (f) {
    case Function::kAvgOverTime:
    case Function::kSumOverTime: {
      double sum = 0, c = 0;
      for (size_t i = 0; i < n; ++i) compensatedAdd(pts[i].value, sum, c);
      sum = std::isinf(sum) ? sum : sum + c;
      out = f == Function::kSumOverTime ? sum : sum / static_cast<double>(n);
      return true;
    }
    case Function::kMinOverTime:
    case Function::kMaxOverTime: {
      double v = pts[0].value;
      for (size_t i = 0; i < n; ++i) {
        const double x = pts[i].value;
        if (std::isnan(v) || (f == Function::kMaxOverTime ? x > v : x < v)) v = x;
      }
      out = v;
      return true;
    }
    case Function::kCountOverTime:
      out = static_cast<double>(n);
      return true;
    case Function::kStddevOverTime:
    case Function::kStdvarOverTime: {
      // Welford's running mean and squared deviations, both compensated.
      double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
      for (size_t i = 0; i < n; ++i) {
        count += 1;
        const double delta = pts[i].value - (mean + c_mean);
        compensatedAdd(delta / count, mean, c_mean);
        compensatedAdd(delta * (pts[i].value - (mean + c_mean)), aux, c_aux);
      }
      const double var = (aux + c_aux) / count;
      out = f == Function::kStddevOverTime ? std::sqrt(var) : var;
      return true;
    }
    case Function::kLastOverTime:
      out = pts[n - 1].value;
      return true;
    case Function::kPresentOverTime:
      out = 1;
      return true;
    case Function::kChanges:
    case Function::kResets: {
      int count = 0;
      for (size_t i = 1; i < n; ++i) {
        const double prev = pts[i - 1].value, cur = pts[i].value;
        if (f == Function::kResets ? cur < prev
                                   : cur != prev && !(std::isnan(cur) && std::isnan(prev))) {
          ++count;
        }
      }
      out = count;
      return true;
    }
    default:
      return false;
  }
}

// The date functions on a Unix time in seconds, in UTC (like Go's time.Unix(..).UTC()).
double dateFunction(Function f, double unix_seconds) {
  using namespace std::chrono;
  // Go converts with int64(v); outside int64 (or NaN) the result is meaningless anyway.
  if (!std::isfinite(unix_seconds) || std::fabs(unix_seconds) > 1e15) return kNaN;
  const sys_seconds t{seconds(static_cast<int64_t>(unix_seconds))};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  switch (f) {
    case Function::kDayOfMonth:
      return static_cast<unsigned>(ymd.day());
    case Function::kDayOfWeek:
      return weekday{day}.c_encoding();  // 0 = Sunday
    case Function::kDayOfYear:
      return static_cast<double>((day - sys_days{ymd.year() / January / 1}).count() + 1);
    case Function::kDaysInMonth:
      return static_cast<unsigned>(year_month_day_last{ymd.year() / ymd.month() / last}.day());
    case Function::kHour:
      return static_cast<double>(hms.hours().count());
    case Function::kMinute:
      return static_cast<double>(hms.minutes().count());
    case Function::kMonth:
      return static_cast<unsigned>(ymd.month());
    case Function::kYear:
      return static_cast<int>(ymd.year());
    default:
      return kNaN;
  }
}

// The element-wise math functions (Go's math package and C's libm agree on these).
double mathFunction(Function f, double v) {
  constexpr double kPi = 3.14159265358979323846;
  switch (f) {
    case Function::kAbs:
      return std::fabs(v);
    case Function::kCeil:
      return std::ceil(v);
    case Function::kFloor:
      return std::floor(v);
    case Function::kExp:
      return std::exp(v);
    case Function::kLn:
      return std::log(v);
    case Function::kLog2:
      return std::log2(v);
    case Function::kLog10:
      return std::log10(v);
    case Function::kSqrt:
      return std::sqrt(v);
    case Function::kSgn:
      return v < 0 ? -1 : v > 0 ? 1 : v;  // 0 and NaN stay as they are
    case Function::kSin:
      return std::sin(v);
    case Function::kCos:
      return std::cos(v);
    case Function::kTan:
      return std::tan(v);
    case Function::kAsin:
      return std::asin(v);
    case Function::kAcos:
      return std::acos(v);
    case Function::kAtan:
      return std::atan(v);
    case Function::kSinh:
      return std::sinh(v);
    case Function::kCosh:
      return std::cosh(v);
    case Function::kTanh:
      return std::tanh(v);
    case Function::kAsinh:
      return std::asinh(v);
    case Function::kAcosh:
      return std::acosh(v);
    case Function::kAtanh:
      return std::atanh(v);
    case Function::kDeg:
      return v * 180 / kPi;
    case Function::kRad:
      return v * kPi / 180;
    default:
      return kNaN;
  }
}

// x^y computed as Go's math.Pow does (integer powers by repeated squaring, not correctly
// rounded like libm's pow): results that differ in the last bit differ a lot after `%`.
double goPow(double x, double y) {
  if (y == 0 || x == 1) return 1;
  if (y == 1) return x;
  if (std::isnan(x) || std::isnan(y)) return kNaN;
  const auto odd_int = [](double v) {
    if (std::fabs(v) >= 9007199254740992.0) return false;  // 2^53: every such float is even
    double ip = 0;
    return std::modf(v, &ip) == 0 && std::fmod(ip, 2) != 0;
  };
  constexpr double kInfinity = std::numeric_limits<double>::infinity();
  if (x == 0) {
    if (y < 0) return std::signbit(x) && odd_int(y) ? -kInfinity : kInfinity;
    return std::signbit(x) && odd_int(y) ? x : 0;
  }
  if (std::isinf(y)) {
    if (x == -1) return 1;
    return (std::fabs(x) < 1) == (y > 0) ? 0 : kInfinity;
  }
  if (std::isinf(x)) {
    if (x < 0) return goPow(1 / x, -y);
    return y < 0 ? 0 : kInfinity;
  }
  if (y == 0.5) return std::sqrt(x);
  if (y == -0.5) return 1 / std::sqrt(x);
  double yi = 0;
  double yf = std::modf(std::fabs(y), &yi);
  if (yf != 0 && x < 0) return kNaN;
  if (yi >= 9223372036854775808.0) {
    if (x == -1) return 1;
    return (std::fabs(x) < 1) == (y > 0) ? 0 : kInfinity;
  }
  double a1 = 1;
  int64_t ae = 0;
  if (yf != 0) {
    if (yf > 0.5) {
      yf -= 1;
      yi += 1;
    }
    a1 = std::exp(yf * std::log(x));
  }
  int xe_int = 0;
  double x1 = std::frexp(x, &xe_int);
  int64_t xe = xe_int;
  for (auto i = static_cast<int64_t>(yi); i != 0; i >>= 1) {
    if (xe < -(1 << 12) || (1 << 12) < xe) {
      ae += xe;  // overflow or underflow beyond repair: ldexp decides
      break;
    }
    if ((i & 1) == 1) {
      a1 *= x1;
      ae += xe;
    }
    x1 *= x1;
    xe <<= 1;
    if (x1 < .5) {
      x1 += x1;
      --xe;
    }
  }
  if (y < 0) {
    a1 = 1 / a1;
    ae = -ae;
  }
  return std::ldexp(a1, static_cast<int>(std::clamp<int64_t>(ae, -100000, 100000)));
}

// Go's math.Max/Min: NaN wins.
double goMax(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  return std::max(a, b);
}
double goMin(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return kNaN;
  return std::min(a, b);
}

// Applies `op`. For comparisons `keep` says whether the comparison holds and the value is
// the left-hand one.
double applyOp(BinaryOp op, double l, double r, bool& keep) {
  keep = true;
  switch (op) {
    case BinaryOp::kAdd:
      return l + r;
    case BinaryOp::kSub:
      return l - r;
    case BinaryOp::kMul:
      return l * r;
    case BinaryOp::kDiv:
      return l / r;
    case BinaryOp::kMod:
      return std::fmod(l, r);
    case BinaryOp::kPow:
      return goPow(l, r);
    case BinaryOp::kAtan2:
      return std::atan2(l, r);
    case BinaryOp::kEqual:
      keep = l == r;
      return l;
    case BinaryOp::kNotEqual:
      keep = l != r;
      return l;
    case BinaryOp::kGreater:
      keep = l > r;
      return l;
    case BinaryOp::kLess:
      keep = l < r;
      return l;
    case BinaryOp::kGreaterEqual:
      keep = l >= r;
      return l;
    case BinaryOp::kLessEqual:
      keep = l <= r;
      return l;
    default:
      return kNaN;  // set operators never reach here
  }
}

// Prometheus 2.42 drops the name for + - * / % ^ only: atan2 keeps it (changed in later
// versions).
bool dropsMetricName(BinaryOp op) {
  return !isComparison(op) && !isSetOperator(op) && op != BinaryOp::kAtan2;
}

std::string labelsText(const Labels& labels) {
  std::string out = "{";
  bool first = true;
  for (const auto& l : labels.items()) {
    out += (first ? "" : ", ") + l.name + "=\"" + l.value + "\"";
    first = false;
  }
  return out + "}";
}

// The identity used for vector matching: the on(...) labels, or every label except the
// ignoring(...) ones and __name__.
void signature(const Labels& labels, bool on, const std::vector<std::string>& names,
               std::string& out) {
  out.clear();
  for (const auto& l : labels.items()) {
    const bool listed = contains(names, l.name);
    if (on ? !listed : (listed || l.name == kMetricNameLabel)) continue;
    out += l.name;
    out += '\xff';
    out += l.value;
    out += '\xff';
  }
}

std::string keyOf(const Labels& labels) {
  std::string k;
  labels.appendKey(k);
  return k;
}

// Drops __name__ from every element. Elements of one vector have distinct label sets; only
// when they came from several metric names can two of them collide afterwards, which
// Prometheus reports as an error.
void dropMetricNames(Vector& v) {
  std::string_view first_name;
  bool several_names = false;
  for (auto& e : v) {
    std::string_view name = e.labels.get(kMetricNameLabel);
    if (name.empty()) continue;
    if (first_name.empty()) {
      first_name = name;
    } else if (name != first_name) {
      several_names = true;
    }
  }
  if (first_name.empty()) return;
  for (auto& e : v) e.labels.erase(kMetricNameLabel);
  if (!several_names) return;
  std::unordered_set<std::string> seen;
  for (const auto& e : v) {
    if (!seen.insert(keyOf(e.labels)).second) {
      throw EvalError{"vector cannot contain metrics with the same labelset"};
    }
  }
}

// Whether Prometheus treats the expression as the same at every step (only literals and
// @-pinned selectors and subqueries below it; no time-dependent function).
bool stepInvariant(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kNumber:
    case Expr::Kind::kString:
      return true;
    case Expr::Kind::kSelector:
    case Expr::Kind::kSubquery:
      return e.at != Expr::At::kNone;
    case Expr::Kind::kParen:
    case Expr::Kind::kUnary:
    case Expr::Kind::kAggregate:
      return stepInvariant(*e.args[0]);
    case Expr::Kind::kBinary:
      return stepInvariant(*e.lhs) && stepInvariant(*e.rhs);
    case Expr::Kind::kCall:
      switch (e.func) {
        case Function::kDaysInMonth:
        case Function::kDayOfMonth:
        case Function::kDayOfWeek:
        case Function::kDayOfYear:
        case Function::kHour:
        case Function::kMinute:
        case Function::kMonth:
        case Function::kYear:
        case Function::kPredictLinear:
        case Function::kTime:
          return false;
        default:
          return std::all_of(e.args.begin(), e.args.end(),
                             [](const ExprPtr& a) { return stepInvariant(*a); });
      }
  }
  return false;
}

const Expr& unparen(const Expr& e) {
  const Expr* x = &e;
  while (x->kind == Expr::Kind::kParen) x = x->args[0].get();
  return *x;
}

// A string argument (a literal, maybe in parentheses).
const std::string& stringArg(const Expr& e) { return unparen(e).text; }

// Go's container/heap over sample values, so that topk/bottomk keep the same elements
// as Prometheus when values tie. `less` is the heap order (the root is the least).
// topk's heap order (NaN first: it is the first to go) and bottomk's.
struct TopkLess {
  bool operator()(double a, double b) const { return std::isnan(a) || a < b; }
};
struct BottomkLess {
  bool operator()(double a, double b) const { return std::isnan(a) || a > b; }
};

template <typename Less>
class ValueHeap {
 public:
  std::vector<const Element*> items;

  // Keeps `e` when the heap holds fewer than k elements or `e` beats its root (which is
  // then dropped), as Prometheus's topk/bottomk do.
  void offer(const Element* e, int64_t k) {
    const bool full = static_cast<int64_t>(items.size()) >= k;
    if (full && !Less{}(items[0]->value, e->value)) return;
    if (full && k == 1) {
      items[0] = e;  // replaced in place
      return;
    }
    if (full) pop();
    push(e);
  }

  void push(const Element* e) {
    items.push_back(e);
    up(items.size() - 1);
  }
  void pop() {
    const size_t n = items.size() - 1;
    std::swap(items[0], items[n]);
    down(0, n);
    items.pop_back();
  }

 private:
  bool lessAt(size_t i, size_t j) const { return Less{}(items[i]->value, items[j]->value); }
  void up(size_t j) {
    while (j > 0) {
      const size_t i = (j - 1) / 2;
      if (!lessAt(j, i)) break;
      std::swap(items[i], items[j]);
      j = i;
    }
  }
  void down(size_t i, size_t n) {
    while (true) {
      const size_t j1 = 2 * i + 1;
      if (j1 >= n) break;
      size_t j = j1;
      if (j1 + 1 < n && lessAt(j1 + 1, j1)) j = j1 + 1;
      if (!lessAt(j, i)) break;
      std::swap(items[i], items[j]);
      i = j;
    }
  }
};

bool labelsLess(const Labels& a, const Labels& b) {
  const auto& x = a.items();
  const auto& y = b.items();
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (x[i].name != y[i].name) return x[i].name < y[i].name;
    if (x[i].value != y[i].value) return x[i].value < y[i].value;
  }
  return x.size() < y.size();
}

void requireUniqueLabelSets(const Vector& v) {
  std::unordered_set<std::string> seen;
  for (const auto& e : v) {
    if (!seen.insert(keyOf(e.labels)).second) {
      throw EvalError{"vector cannot contain metrics with the same labelset"};
    }
  }
}

// What the range functions need besides the points.
struct RangeParams {
  int64_t range_start = 0;
  int64_t range_end = 0;
  int64_t eval_ms = 0;  // predict_linear's "now"
  double scalar1 = 0;   // quantile_over_time: q; predict_linear: seconds; holt_winters: sf
  double scalar2 = 0;   // holt_winters: tf
};

class Evaluator {
 public:
  Evaluator(const SampleStore& store, int64_t ts, int64_t query_ts, const EvalOptions& options,
            int64_t& steps_left)
      : store_(store), ts_(ts), query_ts_(query_ts), options_(options), steps_left_(steps_left) {}

  Value eval(const Expr& e) {
    // A pushed-down comparison applies to this node only (see binary()).
    const Filter* filter = std::exchange(filter_, nullptr);
    switch (e.kind) {
      case Expr::Kind::kNumber:
        return scalar(e.number);
      case Expr::Kind::kString:
        throw EvalError{"string values are not supported here"};
      case Expr::Kind::kParen:
        filter_ = filter;
        return eval(*e.args[0]);
      case Expr::Kind::kSelector:
        if (e.type == ValueType::kRangeVector) {
          throw EvalError{"a range vector is only allowed as a function argument"};
        }
        return vector(instantSelector(e, filter));
      case Expr::Kind::kCall:
        if (e.type == ValueType::kInstantVector && !e.args.empty() &&
            e.args[0]->type == ValueType::kRangeVector) {
          return vector(rangeFunction(e, filter));
        }
        return call(e);
      case Expr::Kind::kAggregate:
        return vector(aggregate(e));
      case Expr::Kind::kUnary: {
        Value v = eval(*e.args[0]);
        if (v.type == ValueType::kScalar) return scalar(-v.scalar);
        for (auto& el : v.vector) el.value = -el.value;
        dropMetricNames(v.vector);
        return v;
      }
      case Expr::Kind::kBinary:
        return binary(e);
      case Expr::Kind::kSubquery:
        throw EvalError{"a range vector is only allowed as a function argument"};
    }
    throw EvalError{"unknown expression node"};
  }

 private:
  // `vector OP constant` (or `constant OP vector`) with a comparison OP and no bool: most
  // series of an alert expression fail it, so selectors and range functions test it before
  // copying labels. The comparison itself still runs afterwards (keeping what passed).
  struct Filter {
    BinaryOp op;
    double constant;
    bool constant_on_left;
    bool keeps(double v) const {
      bool keep = true;
      if (constant_on_left) {
        applyOp(op, constant, v, keep);
      } else {
        applyOp(op, v, constant, keep);
      }
      return keep;
    }
  };

  static Value scalar(double v) {
    Value out;
    out.type = ValueType::kScalar;
    out.scalar = v;
    return out;
  }
  static Value vector(Vector v) {
    Value out;
    out.type = ValueType::kInstantVector;
    out.vector = std::move(v);
    return out;
  }

  using SeriesFn =
      std::function<void(std::string_view name, const Labels& labels, const Point* pts, size_t n)>;

  // Calls `fn` for every series the selector matches, with its points in [since, until].
  void select(const Expr& sel, int64_t since, int64_t until, const SeriesFn& fn) {
    std::vector<std::string> names;
    std::vector<const LabelMatcher*> name_matchers, label_matchers;
    for (const auto& m : sel.matchers) {
      (m.name == kMetricNameLabel ? name_matchers : label_matchers).push_back(&m);
    }
    if (!sel.metric_name.empty()) {
      names.push_back(sel.metric_name);
    } else {
      auto eq = std::find_if(name_matchers.begin(), name_matchers.end(),
                             [](const auto* m) { return m->op == LabelMatcher::Op::kEqual; });
      names = eq != name_matchers.end() ? std::vector<std::string>{(*eq)->value} : store_.names();
      std::erase_if(names, [&](const std::string& n) {
        return !std::all_of(name_matchers.begin(), name_matchers.end(),
                            [&](const auto* m) { return m->matches(n); });
      });
    }
    for (const auto& name : names) {
      store_.visit(name, since, [&](const Labels& labels, const Point* pts, size_t n) {
        for (const auto* m : label_matchers) {
          if (!m->matches(labels.get(m->name))) return;
        }
        while (n > 0 && pts[n - 1].t_ms > until) --n;
        fn(name, labels, pts, n);
      });
    }
  }

  // The time a selector or subquery looks back from: its @ time (or the evaluation time),
  // minus its offset.
  int64_t refTime(const Expr& e) const {
    int64_t base = ts_;
    if (e.at == Expr::At::kTime) base = e.at_ms;
    if (e.at == Expr::At::kStart || e.at == Expr::At::kEnd) base = query_ts_;
    return base - e.offset_ms;
  }

  Vector instantSelector(const Expr& sel, const Filter* filter = nullptr) {
    const int64_t ref = refTime(sel);
    Vector out;
    select(sel, ref - options_.lookback_ms, ref,
           [&](std::string_view name, const Labels& labels, const Point* pts, size_t n) {
             if (n == 0 || (filter != nullptr && !filter->keeps(pts[n - 1].value))) return;
             Element e;
             e.labels.reserve(labels.size() + 1);  // one allocation for the copy and the name
             e.labels = labels;
             e.labels.set(kMetricNameLabel, name);
             e.value = pts[n - 1].value;
             out.push_back(std::move(e));
           });
    return out;
  }

  static size_t rangeArgIndex(const Expr& call) {
    for (size_t i = 0; i < call.args.size(); ++i) {
      if (call.args[i]->type == ValueType::kRangeVector) return i;
    }
    throw EvalError{std::string("expected a range vector argument in ") + functionName(call.func)};
  }

  struct MatrixSeries {
    std::string name;
    Labels labels;  // without __name__
    std::vector<Point> points;
  };

  // A subquery's series: its expression evaluated at every multiple of the step in
  // [ref - range, ref], each series' points in time order.
  std::vector<MatrixSeries> subquery(const Expr& sq, int64_t& range_start, int64_t& range_end) {
    range_end = refTime(sq);
    range_start = range_end - sq.range_ms;
    const int64_t step = sq.step_ms > 0 ? sq.step_ms : options_.default_step_ms;
    // The first multiple of the step at or after the range start (Go's truncating division).
    int64_t t = step * (range_start / step);
    if (t < range_start) t += step;
    std::unordered_map<std::string, size_t> index;
    std::vector<MatrixSeries> out;
    const int64_t steps = t <= range_end ? (range_end - t) / step + 1 : 0;
    if (steps == 0 && stepInvariant(*sq.args[0])) {
      // Prometheus evaluates a step-invariant body once, at the first step time, even
      // when that lies past the range: its errors surface, its values do not.
      Evaluator inner(store_, t, query_ts_, options_, steps_left_);
      inner.eval(*sq.args[0]);
      return {};
    }
    if (steps > steps_left_) {
      throw EvalError{"subqueries would evaluate more than " +
                      std::to_string(options_.max_subquery_steps) +
                      " steps; use a larger step or a shorter range"};
    }
    steps_left_ -= steps;
    for (; t <= range_end; t += step) {
      Evaluator inner(store_, t, query_ts_, options_, steps_left_);
      Value v = inner.eval(*sq.args[0]);
      for (auto& el : v.vector) {
        auto [it, inserted] = index.try_emplace(keyOf(el.labels), out.size());
        if (inserted) {
          MatrixSeries ms;
          ms.name = std::string(el.labels.get(kMetricNameLabel));
          ms.labels = std::move(el.labels);
          ms.labels.erase(kMetricNameLabel);
          out.push_back(std::move(ms));
        }
        out[it->second].points.push_back(Point{t, el.value});
      }
    }
    return out;
  }

  // Calls `fn` for every series of a range-vector expression (a range selector or a
  // subquery) with its points in [range_start, range_end], which it sets.
  void forEachRangeSeries(const Expr& arg_in, int64_t& range_start, int64_t& range_end,
                          const SeriesFn& fn) {
    const Expr& arg = unparen(arg_in);
    if (arg.kind == Expr::Kind::kSelector && arg.range_ms > 0) {
      range_end = refTime(arg);
      range_start = range_end - arg.range_ms;
      select(arg, range_start, range_end, fn);
      return;
    }
    if (arg.kind == Expr::Kind::kSubquery) {
      for (const auto& ms : subquery(arg, range_start, range_end)) {
        fn(ms.name, ms.labels, ms.points.data(), ms.points.size());
      }
      return;
    }
    throw EvalError{"expected a range vector selector or a subquery"};
  }

  // One range function over one series' points; false when it has no value (too few points).
  static bool rangeValue(Function f, const Point* pts, size_t n, const RangeParams& p, double& v) {
    switch (f) {
      case Function::kRate:
        return extrapolatedRate(pts, n, p.range_start, p.range_end, true, true, v);
      case Function::kIncrease:
        return extrapolatedRate(pts, n, p.range_start, p.range_end, true, false, v);
      case Function::kDelta:
        return extrapolatedRate(pts, n, p.range_start, p.range_end, false, false, v);
      case Function::kIrate:
        return instantRate(pts, n, v);
      case Function::kIdelta:
        if (n < 2) return false;
        v = pts[n - 1].value - pts[n - 2].value;
        return true;
      case Function::kDeriv: {
        if (n < 2) return false;
        double intercept = 0;
        linearRegression(pts, n, pts[0].t_ms, v, intercept);
        return true;
      }
      case Function::kPredictLinear: {
        if (n < 2) return false;
        double slope = 0, intercept = 0;
        linearRegression(pts, n, p.eval_ms, slope, intercept);
        v = slope * p.scalar1 + intercept;
        return true;
      }
      case Function::kHoltWinters: {
        const double sf = p.scalar1, tf = p.scalar2;
        char buf[160];
        if (!(sf > 0 && sf < 1)) {
          std::snprintf(buf, sizeof buf, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f",
                        sf);
          throw EvalError{buf};
        }
        if (!(tf > 0 && tf < 1)) {
          std::snprintf(buf, sizeof buf, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
          throw EvalError{buf};
        }
        if (n < 2) return false;
        v = holtWinters(pts, n, sf, tf);
        return true;
      }
      case Function::kQuantileOverTime: {
        if (n == 0) return false;
        std::vector<double> values;
        values.reserve(n);
        for (size_t i = 0; i < n; ++i) values.push_back(pts[i].value);
        v = quantileOf(p.scalar1, std::move(values));
        return true;
      }
      default:
        return overTime(f, pts, n, v);
    }
  }

  // The scalar arguments of a range function, evaluated at this instant.
  RangeParams rangeParams(const Expr& call) {
    RangeParams p;
    p.eval_ms = ts_;
    switch (call.func) {
      case Function::kQuantileOverTime:
        p.scalar1 = eval(*call.args[0]).scalar;
        break;
      case Function::kPredictLinear:
        p.scalar1 = eval(*call.args[1]).scalar;
        break;
      case Function::kHoltWinters:
        p.scalar1 = eval(*call.args[1]).scalar;
        p.scalar2 = eval(*call.args[2]).scalar;
        break;
      default:
        break;
    }
    return p;
  }

  // rate(), *_over_time() & co: computed per series while visiting, no matrix is built.
  Vector rangeFunction(const Expr& call, const Filter* filter = nullptr) {
    const Expr& arg = *call.args[rangeArgIndex(call)];
    const Function f = call.func;
    RangeParams params = rangeParams(call);
    Vector out;
    if (f == Function::kAbsentOverTime) {
      bool any = false;
      forEachRangeSeries(arg, params.range_start, params.range_end,
                         [&](std::string_view, const Labels&, const Point*, size_t n) {
                           if (n > 0) any = true;
                         });
      if (!any) out.push_back(Element{absentLabels(arg), 1});
      return out;
    }
    size_t names_seen = 0;
    std::string last_name;
    // Label sets of results a pushed-down comparison dropped: Prometheus checks for
    // duplicates before comparing, so they count too.
    Vector dropped;
    const Expr& range_arg = unparen(arg);
    const bool may_collide = !(range_arg.kind == Expr::Kind::kSelector && singleName(range_arg));
    // The store calls back under its lock: the parameters must be evaluated before.
    forEachRangeSeries(
        arg, params.range_start, params.range_end,
        [&](std::string_view name, const Labels& labels, const Point* pts, size_t n) {
          if (name != last_name || names_seen == 0) {
            ++names_seen;
            last_name = std::string(name);
          }
          double v = 0;
          if (!rangeValue(f, pts, n, params, v)) return;
          if (filter != nullptr && !filter->keeps(v)) {
            if (may_collide && f != Function::kLastOverTime) dropped.push_back(Element{labels, v});
            return;
          }
          out.push_back(Element{labels, v});
          // last_over_time is a lookback, like offset: the only range function that
          // keeps the metric name.
          if (f == Function::kLastOverTime && !name.empty()) {
            out.back().labels.set(kMetricNameLabel, name);
          }
        });
    if (names_seen > 1) {
      for (const auto& e : out) dropped.push_back(e);
      requireUniqueLabelSets(dropped);
    }
    return out;
  }

  Value call(const Expr& e) {
    switch (e.func) {
      case Function::kRate:
      case Function::kIrate:
      case Function::kIncrease:
      case Function::kDelta:
      case Function::kDeriv:
      case Function::kAvgOverTime:
      case Function::kMinOverTime:
      case Function::kMaxOverTime:
      case Function::kSumOverTime:
      case Function::kCountOverTime:
      case Function::kStddevOverTime:
      case Function::kStdvarOverTime:
      case Function::kLastOverTime:
      case Function::kPresentOverTime:
      case Function::kChanges:
      case Function::kResets:
      case Function::kQuantileOverTime:
      case Function::kAbsentOverTime:
      case Function::kPredictLinear:
      case Function::kHoltWinters:
      case Function::kIdelta:
        return vector(rangeFunction(e));
      case Function::kLabelReplace:
        return vector(labelReplace(e));
      case Function::kLabelJoin:
        return vector(labelJoin(e));
      case Function::kHistogramCount:
      case Function::kHistogramSum:
      case Function::kHistogramFraction:
        // Native histograms only: float samples (all dbpulse has) are skipped.
        for (const auto& a : e.args) eval(*a);
        return vector({});
      case Function::kClampMin:
      case Function::kClampMax: {
        Value v = eval(*e.args[0]);
        const double bound = eval(*e.args[1]).scalar;
        for (auto& el : v.vector) {
          el.value =
              e.func == Function::kClampMin ? goMax(bound, el.value) : goMin(bound, el.value);
        }
        dropMetricNames(v.vector);
        return v;
      }
      case Function::kAbs:
      case Function::kCeil:
      case Function::kFloor:
      case Function::kExp:
      case Function::kLn:
      case Function::kLog2:
      case Function::kLog10:
      case Function::kSqrt:
      case Function::kSgn:
      case Function::kSin:
      case Function::kCos:
      case Function::kTan:
      case Function::kAsin:
      case Function::kAcos:
      case Function::kAtan:
      case Function::kSinh:
      case Function::kCosh:
      case Function::kTanh:
      case Function::kAsinh:
      case Function::kAcosh:
      case Function::kAtanh:
      case Function::kDeg:
      case Function::kRad: {
        Value v = eval(*e.args[0]);
        for (auto& el : v.vector) el.value = mathFunction(e.func, el.value);
        dropMetricNames(v.vector);
        return v;
      }
      case Function::kPi:
        return scalar(3.14159265358979323846);
      case Function::kRound: {
        Value v = eval(*e.args[0]);
        // Prometheus divides by the inverse (fewer rounding surprises); ties round up.
        const double inverse = 1.0 / (e.args.size() > 1 ? eval(*e.args[1]).scalar : 1.0);
        for (auto& el : v.vector) el.value = std::floor(el.value * inverse + 0.5) / inverse;
        dropMetricNames(v.vector);
        return v;
      }
      case Function::kClamp: {
        Value v = eval(*e.args[0]);
        const double lo = eval(*e.args[1]).scalar, hi = eval(*e.args[2]).scalar;
        if (hi < lo) return vector({});
        for (auto& el : v.vector) el.value = goMax(lo, goMin(hi, el.value));
        dropMetricNames(v.vector);
        return v;
      }
      case Function::kTimestamp:
        return vector(timestamps(*e.args[0]));
      case Function::kSort:
      case Function::kSortDesc: {
        Value v = eval(*e.args[0]);
        const bool desc = e.func == Function::kSortDesc;
        std::stable_sort(v.vector.begin(), v.vector.end(),
                         [desc](const Element& a, const Element& b) {
                           return desc ? a.value > b.value : a.value < b.value;
                         });
        return v;
      }
      case Function::kDayOfMonth:
      case Function::kDayOfWeek:
      case Function::kDayOfYear:
      case Function::kDaysInMonth:
      case Function::kHour:
      case Function::kMinute:
      case Function::kMonth:
      case Function::kYear: {
        if (e.args.empty()) {
          // Whole seconds of the evaluation time, like Prometheus.
          const double now = static_cast<double>(ts_ / 1000);  // NOLINT(bugprone-integer-division)
          return vector(Vector{Element{Labels{}, dateFunction(e.func, now)}});
        }
        Value v = eval(*e.args[0]);
        for (auto& el : v.vector) el.value = dateFunction(e.func, el.value);
        dropMetricNames(v.vector);
        return v;
      }
      case Function::kHistogramQuantile: {
        const double q = eval(*e.args[0]).scalar;
        return vector(histogramQuantile(q, eval(*e.args[1]).vector));
      }
      case Function::kAbsent:
        return vector(absent(e));
      case Function::kTime:
        return scalar(static_cast<double>(ts_) / 1000);
      case Function::kVector:
        return vector(Vector{Element{Labels{}, eval(*e.args[0]).scalar}});
      case Function::kScalar: {
        Value v = eval(*e.args[0]);
        return scalar(v.vector.size() == 1 ? v.vector[0].value : kNaN);
      }
    }
    throw EvalError{"unknown function"};
  }

  // timestamp(): of a selector, each series' last sample time within the lookback (like
  // Prometheus, which keeps the stored timestamps for a selector argument); of any other
  // expression, the evaluation time. In seconds, metric name dropped.
  Vector timestamps(const Expr& arg_in) {
    const Expr* arg = &unparen(arg_in);
    Vector out;
    if (arg->kind == Expr::Kind::kSelector) {
      const int64_t ref = refTime(*arg);
      select(*arg, ref - options_.lookback_ms, ref,
             [&](std::string_view, const Labels& labels, const Point* pts, size_t n) {
               if (n > 0)
                 out.push_back(Element{labels, static_cast<double>(pts[n - 1].t_ms) / 1000});
             });
      if (!singleName(*arg)) requireUniqueLabelSets(out);
      return out;
    }
    out = eval(*arg).vector;
    for (auto& el : out) el.value = static_cast<double>(ts_) / 1000;
    dropMetricNames(out);
    return out;
  }

  Vector absent(const Expr& e) {
    if (!eval(*e.args[0]).vector.empty()) return {};
    return Vector{Element{absentLabels(*e.args[0]), 1}};
  }

  // Labels of absent()'s result: a selector's equality matchers, in order; a label matched
  // again, or by another matcher type, is dropped (Prometheus's rule).
  static Labels absentLabels(const Expr& arg_in) {
    Labels labels;
    const Expr& arg = unparen(arg_in);
    if (arg.kind != Expr::Kind::kSelector) return labels;
    std::unordered_set<std::string> has;
    for (const auto& m : arg.matchers) {
      if (m.name == kMetricNameLabel) continue;
      if (m.op == LabelMatcher::Op::kEqual && !has.count(m.name)) {
        if (m.value.empty()) {
          labels.erase(m.name);  // an empty value is no label
        } else {
          labels.set(m.name, m.value);
        }
        has.insert(m.name);
      } else {
        labels.erase(m.name);
      }
    }
    return labels;
  }

  Vector labelReplace(const Expr& e) {
    Vector v = eval(*e.args[0]).vector;
    const std::string& dst = stringArg(*e.args[1]);
    const std::string& repl = stringArg(*e.args[2]);
    const std::string& src = stringArg(*e.args[3]);
    const std::string& pattern = stringArg(*e.args[4]);
    auto re = compileAnchoredRegex(pattern);
    if (!re.ok()) {
      throw EvalError{"invalid regular expression in label_replace(): " + pattern};
    }
    if (!isValidLabelName(dst)) {
      throw EvalError{"invalid destination label name in label_replace(): " + dst};
    }
    const re2::RE2& rx = **re;
    std::vector<re2::StringPiece> groups(static_cast<size_t>(rx.NumberOfCapturingGroups()) + 1);
    for (auto& el : v) {
      const std::string value(el.labels.get(src));
      if (!rx.Match(value, 0, value.size(), re2::RE2::UNANCHORED, groups.data(),
                    static_cast<int>(groups.size()))) {
        continue;
      }
      std::vector<std::string_view> parts;
      for (const auto& g : groups) parts.emplace_back(g.data(), g.size());
      const std::string res = expandGoTemplate(rx, repl, parts);
      if (res.empty()) {
        el.labels.erase(dst);
      } else {
        el.labels.set(dst, res);
      }
    }
    requireUniqueLabelSets(v);
    return v;
  }

  Vector labelJoin(const Expr& e) {
    Vector v = eval(*e.args[0]).vector;
    const std::string& dst = stringArg(*e.args[1]);
    const std::string& sep = stringArg(*e.args[2]);
    std::vector<std::string> srcs;
    for (size_t i = 3; i < e.args.size(); ++i) {
      srcs.push_back(stringArg(*e.args[i]));
      if (!isValidLabelName(srcs.back())) {
        throw EvalError{"invalid source label name in label_join(): " + srcs.back()};
      }
    }
    if (!isValidLabelName(dst)) {
      throw EvalError{"invalid destination label name in label_join(): " + dst};
    }
    for (auto& el : v) {
      std::string joined;
      for (size_t i = 0; i < srcs.size(); ++i) {
        if (i > 0) joined += sep;
        joined += el.labels.get(srcs[i]);
      }
      if (joined.empty()) {
        el.labels.erase(dst);
      } else {
        el.labels.set(dst, joined);
      }
    }
    requireUniqueLabelSets(v);
    return v;
  }

  Vector histogramQuantile(double q, const Vector& in) {
    struct Group {
      Labels labels;
      std::vector<std::pair<double, double>> buckets;
    };
    std::unordered_map<std::string, Group> groups;
    std::vector<std::string> order;
    for (const auto& el : in) {
      const std::string le(el.labels.get("le"));
      if (le.empty()) continue;  // not a bucket: skipped, as in Prometheus
      errno = 0;
      char* end = nullptr;
      const double upper = std::strtod(le.c_str(), &end);
      if (end != le.c_str() + le.size() || std::isspace(static_cast<unsigned char>(le[0]))) {
        continue;
      }
      Labels without_le = withoutLabel(el.labels, "le");
      auto [it, inserted] = groups.try_emplace(keyOf(without_le));
      if (inserted) {
        it->second.labels = withoutLabel(without_le, kMetricNameLabel);
        order.push_back(it->first);
      }
      it->second.buckets.emplace_back(upper, el.value);
    }
    Vector out;
    std::unordered_set<std::string> seen;
    for (const auto& k : order) {
      Group& g = groups[k];
      if (!seen.insert(keyOf(g.labels)).second) {
        throw EvalError{"vector cannot contain metrics with the same labelset"};
      }
      out.push_back(Element{g.labels, bucketQuantile(q, std::move(g.buckets))});
    }
    return out;
  }

  // Whether the selector can only match one metric name (so a function over it cannot
  // produce two series with the same labels).
  static bool singleName(const Expr& sel) {
    if (!sel.metric_name.empty()) return true;
    return std::any_of(sel.matchers.begin(), sel.matchers.end(), [](const LabelMatcher& m) {
      return m.name == kMetricNameLabel && m.op == LabelMatcher::Op::kEqual;
    });
  }

  using ElementFn = std::function<void(const Labels& labels, std::string_view name, double v)>;

  // Feeds an aggregation the elements of `arg` (labels, __name__ when kept, value). Selectors
  // and range functions are read straight from the store, without building a vector first.
  void forEachElement(const Expr& arg_in, const ElementFn& fn) {
    const Expr* arg = &arg_in;
    while (arg->kind == Expr::Kind::kParen) arg = arg->args[0].get();
    if (arg->kind == Expr::Kind::kSelector && arg->type == ValueType::kInstantVector) {
      const int64_t ref = refTime(*arg);
      select(*arg, ref - options_.lookback_ms, ref,
             [&](std::string_view name, const Labels& labels, const Point* pts, size_t n) {
               if (n > 0) fn(labels, name, pts[n - 1].value);
             });
      return;
    }
    if (arg->kind == Expr::Kind::kCall && arg->func != Function::kAbsentOverTime &&
        std::any_of(arg->args.begin(), arg->args.end(),
                    [](const ExprPtr& a) { return a->type == ValueType::kRangeVector; })) {
      const Expr& range_arg = unparen(*arg->args[rangeArgIndex(*arg)]);
      if (range_arg.kind == Expr::Kind::kSelector && singleName(range_arg)) {
        RangeParams params = rangeParams(*arg);
        const bool keeps_name = arg->func == Function::kLastOverTime;
        forEachRangeSeries(
            range_arg, params.range_start, params.range_end,
            [&](std::string_view name, const Labels& labels, const Point* pts, size_t n) {
              double v = 0;
              if (rangeValue(arg->func, pts, n, params, v)) {
                fn(labels, keeps_name ? name : std::string_view{}, v);
              }
            });
        return;
      }
    }
    for (const auto& el : eval(arg_in).vector) fn(el.labels, {}, el.value);
  }

  Vector aggregate(const Expr& e) {
    if (e.aggregate == AggregateOp::kTopk || e.aggregate == AggregateOp::kBottomk ||
        e.aggregate == AggregateOp::kQuantile || e.aggregate == AggregateOp::kCountValues) {
      return aggregateWithParameter(e);
    }
    struct Group {
      Labels labels;
      double value = 0;
      double count = 0;
      double mean = 0;  // stddev/stdvar: running mean (value holds the squared deviations)
    };
    std::unordered_map<std::string, size_t> index;
    std::vector<Group> groups;
    std::string key;
    // The grouping labels of an element; `name` is its __name__ when not among `labels`.
    const bool name_grouped = !e.without && contains(e.grouping, kMetricNameLabel);
    auto grouped = [&](const Label& l) {
      const bool listed = contains(e.grouping, l.name);
      return e.without ? !(listed || l.name == kMetricNameLabel) : listed;
    };
    forEachElement(*e.args[0], [&](const Labels& labels, std::string_view name, double value) {
      key.clear();
      if (name_grouped && !name.empty()) {
        key += name;
        key += '\xfe';
      }
      for (const auto& l : labels.items()) {
        if (!grouped(l)) continue;
        key += l.name;
        key += '\xff';
        key += l.value;
        key += '\xff';
      }
      auto [it, inserted] = index.try_emplace(key, groups.size());
      if (inserted) {
        Group g;
        g.labels.reserve(e.without ? labels.size() : e.grouping.size());
        for (const auto& l : labels.items()) {
          if (grouped(l)) g.labels.set(l.name, l.value);
        }
        if (name_grouped && !name.empty()) g.labels.set(kMetricNameLabel, name);
        g.value = value;
        g.count = 1;
        g.mean = value;
        if (e.aggregate == AggregateOp::kStddev || e.aggregate == AggregateOp::kStdvar) {
          g.value = 0;
        }
        groups.push_back(std::move(g));
        return;
      }
      Group& g = groups[it->second];
      g.count += 1;
      switch (e.aggregate) {
        case AggregateOp::kSum:
          g.value += value;
          break;
        case AggregateOp::kAvg:
          // Prometheus 2.42's running mean (no overflow for large values); an infinite
          // mean stays as it is unless a NaN or the other infinity comes along.
          if (std::isinf(g.mean)) {
            if (std::isinf(value) && (g.mean > 0) == (value > 0)) break;
            if (!std::isinf(value) && !std::isnan(value)) break;
          }
          g.mean += value / g.count - g.mean / g.count;
          break;
        case AggregateOp::kMax:
          if (g.value < value || std::isnan(g.value)) g.value = value;
          break;
        case AggregateOp::kMin:
          if (g.value > value || std::isnan(g.value)) g.value = value;
          break;
        case AggregateOp::kCount:
        case AggregateOp::kGroup:
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk:
        case AggregateOp::kQuantile:
        case AggregateOp::kCountValues:
          break;
        case AggregateOp::kStddev:
        case AggregateOp::kStdvar: {
          // Welford's update, as Prometheus does it (uncompensated).
          const double delta = value - g.mean;
          g.mean += delta / g.count;
          g.value += delta * (value - g.mean);
          break;
        }
      }
    });
    Vector out;
    out.reserve(groups.size());
    for (auto& g : groups) {
      double v = g.value;
      if (e.aggregate == AggregateOp::kAvg) v = g.mean;
      if (e.aggregate == AggregateOp::kCount) v = g.count;
      if (e.aggregate == AggregateOp::kGroup) v = 1;
      if (e.aggregate == AggregateOp::kStdvar) v = g.value / g.count;
      if (e.aggregate == AggregateOp::kStddev) v = std::sqrt(g.value / g.count);
      out.push_back(Element{std::move(g.labels), v});
    }
    return out;
  }

  // topk, bottomk, quantile and count_values, over the evaluated argument.
  Vector aggregateWithParameter(const Expr& e) {
    const AggregateOp op = e.aggregate;
    double param = 0;
    std::string value_label;
    if (op == AggregateOp::kCountValues) {
      value_label = stringArg(*e.param);
    } else {
      param = eval(*e.param).scalar;
    }
    Vector in = eval(*e.args[0]).vector;
    int64_t k = 0;
    if (op == AggregateOp::kTopk || op == AggregateOp::kBottomk) {
      if (!(param > -9.2233720368547758e18 && param < 9.2233720368547758e18)) {
        throw EvalError{"Scalar value " + formatFloatPlain(param) + " overflows int64"};
      }
      k = static_cast<int64_t>(param);
      if (k < 1) return {};
    }
    if (op == AggregateOp::kCountValues && !isValidLabelName(value_label)) {
      throw EvalError{"invalid label name \"" + value_label + "\""};
    }
    // Prometheus sees the series in label order; ties in topk/bottomk depend on it.
    std::stable_sort(in.begin(), in.end(), [](const Element& a, const Element& b) {
      return labelsLess(a.labels, b.labels);
    });
    std::vector<std::string> grouping = e.grouping;
    if (op == AggregateOp::kCountValues) {
      for (auto& el : in) el.labels.set(value_label, formatFloatPlain(el.value));
      if (!e.without) grouping.push_back(value_label);
    }
    auto grouped = [&](const Label& l) {
      const bool listed = contains(grouping, l.name);
      return e.without ? !(listed || l.name == kMetricNameLabel) : listed;
    };
    struct Group {
      Labels labels;
      std::vector<double> values;  // quantile
      double count = 0;            // count_values
      ValueHeap<TopkLess> top;
      ValueHeap<BottomkLess> bottom;
    };
    std::unordered_map<std::string, size_t> index;
    std::vector<Group> groups;
    std::string key;
    for (const auto& el : in) {
      key.clear();
      Labels group_labels;
      for (const auto& l : el.labels.items()) {
        if (grouped(l)) group_labels.set(l.name, l.value);
      }
      group_labels.appendKey(key);
      auto [it, inserted] = index.try_emplace(key, groups.size());
      if (inserted) {
        groups.emplace_back();
        groups.back().labels = std::move(group_labels);
      }
      Group& g = groups[it->second];
      switch (op) {
        case AggregateOp::kTopk:
          g.top.offer(&el, k);
          break;
        case AggregateOp::kBottomk:
          g.bottom.offer(&el, k);
          break;
        case AggregateOp::kQuantile:
          g.values.push_back(el.value);
          break;
        default:
          g.count += 1;
          break;
      }
    }
    Vector out;
    for (auto& g : groups) {
      switch (op) {
        case AggregateOp::kTopk:
          for (const Element* el : g.top.items) out.push_back(*el);
          break;
        case AggregateOp::kBottomk:
          for (const Element* el : g.bottom.items) out.push_back(*el);
          break;
        case AggregateOp::kQuantile:
          out.push_back(Element{std::move(g.labels), quantileOf(param, std::move(g.values))});
          break;
        default:
          out.push_back(Element{std::move(g.labels), g.count});
          break;
      }
    }
    return out;
  }

  static const Expr* constantOf(const Expr& e) {
    const Expr* x = &e;
    while (x->kind == Expr::Kind::kParen) x = x->args[0].get();
    return x->kind == Expr::Kind::kNumber ? x : nullptr;
  }

  Value binary(const Expr& e) {
    const BinaryOp op = e.binary_op;
    std::optional<Filter> pushed;
    if (isComparison(op) && !e.return_bool) {
      if (const Expr* c = constantOf(*e.rhs); c && e.lhs->type == ValueType::kInstantVector) {
        pushed = Filter{op, c->number, false};
      } else if (const Expr* c2 = constantOf(*e.lhs);
                 c2 && e.rhs->type == ValueType::kInstantVector) {
        pushed = Filter{op, c2->number, true};
      }
    }
    if (pushed && !pushed->constant_on_left) filter_ = &*pushed;
    Value l = eval(*e.lhs);
    if (pushed && pushed->constant_on_left) filter_ = &*pushed;
    Value r = eval(*e.rhs);
    if (l.type == ValueType::kScalar && r.type == ValueType::kScalar) {
      bool keep = true;
      double v = applyOp(op, l.scalar, r.scalar, keep);
      if (isComparison(op)) v = keep ? 1 : 0;  // the parser requires bool here
      return scalar(v);
    }
    if (l.type == ValueType::kScalar || r.type == ValueType::kScalar) {
      const bool swap = l.type == ValueType::kScalar;
      Vector& vec = swap ? r.vector : l.vector;
      const double s = swap ? l.scalar : r.scalar;
      return vector(vectorScalar(e, std::move(vec), s, swap));
    }
    switch (op) {
      case BinaryOp::kAnd:
        return vector(vectorAnd(e, std::move(l.vector), r.vector));
      case BinaryOp::kOr:
        return vector(vectorOr(e, std::move(l.vector), std::move(r.vector)));
      case BinaryOp::kUnless:
        return vector(vectorUnless(e, std::move(l.vector), r.vector));
      default:
        return vector(vectorVector(e, l.vector, r.vector));
    }
  }

  static Vector vectorScalar(const Expr& e, Vector vec, double s, bool scalar_on_left) {
    const BinaryOp op = e.binary_op;
    Vector out;
    out.reserve(vec.size());
    for (auto& el : vec) {
      double lv = el.value, rv = s;
      if (scalar_on_left) std::swap(lv, rv);
      bool keep = true;
      double v = applyOp(op, lv, rv, keep);
      // The vector's own value is the result of a comparison, even with the scalar on the left.
      if (isComparison(op) && scalar_on_left) v = rv;
      if (e.return_bool) {
        v = keep ? 1 : 0;
        keep = true;
      }
      if (!keep) continue;
      el.value = v;
      out.push_back(std::move(el));
    }
    if (dropsMetricName(op) || e.return_bool) dropMetricNames(out);
    return out;
  }

  Vector vectorAnd(const Expr& e, Vector lhs, const Vector& rhs) {
    if (lhs.empty() || rhs.empty()) return {};
    std::unordered_set<std::string> right;
    std::string sig;
    for (const auto& el : rhs) {
      signature(el.labels, e.matching.on, e.matching.labels, sig);
      right.insert(sig);
    }
    Vector out;
    for (auto& el : lhs) {
      signature(el.labels, e.matching.on, e.matching.labels, sig);
      if (right.count(sig)) out.push_back(std::move(el));
    }
    return out;
  }

  Vector vectorOr(const Expr& e, Vector lhs, Vector rhs) {
    if (lhs.empty()) return rhs;
    if (rhs.empty()) return lhs;
    std::unordered_set<std::string> left;
    std::string sig;
    for (const auto& el : lhs) {
      signature(el.labels, e.matching.on, e.matching.labels, sig);
      left.insert(sig);
    }
    Vector out = std::move(lhs);
    for (auto& el : rhs) {
      signature(el.labels, e.matching.on, e.matching.labels, sig);
      if (!left.count(sig)) out.push_back(std::move(el));
    }
    return out;
  }

  Vector vectorUnless(const Expr& e, Vector lhs, const Vector& rhs) {
    if (lhs.empty() || rhs.empty()) return lhs;
    std::unordered_set<std::string> right;
    std::string sig;
    for (const auto& el : rhs) {
      signature(el.labels, e.matching.on, e.matching.labels, sig);
      right.insert(sig);
    }
    Vector out;
    for (auto& el : lhs) {
      signature(el.labels, e.matching.on, e.matching.labels, sig);
      if (!right.count(sig)) out.push_back(std::move(el));
    }
    return out;
  }

  // Arithmetic and comparisons between two instant vectors (Prometheus's VectorBinop).
  Vector vectorVector(const Expr& e, const Vector& lhs_in, const Vector& rhs_in) {
    // Nothing can match: no duplicate-series errors either (as in Prometheus).
    if (lhs_in.empty() || rhs_in.empty()) return {};
    const VectorMatching& m = e.matching;
    const BinaryOp op = e.binary_op;
    // One-to-many is many-to-one with the sides swapped (and swapped back for the values).
    const bool swapped = m.card == Cardinality::kOneToMany;
    const Vector& many = swapped ? rhs_in : lhs_in;
    const Vector& one = swapped ? lhs_in : rhs_in;

    std::unordered_map<std::string, const Element*> one_side;
    std::string sig;
    for (const auto& el : one) {
      signature(el.labels, m.on, m.labels, sig);
      auto [it, inserted] = one_side.try_emplace(sig, &el);
      if (!inserted) {
        throw EvalError{"found duplicate series for the match group on the " +
                        std::string(swapped ? "left" : "right") + " hand-side of the operation: [" +
                        labelsText(el.labels) + ", " + labelsText(it->second->labels) +
                        "]; many-to-many matching not allowed: matching labels must be unique "
                        "on one side"};
      }
    }
    // Signatures already matched: one-to-one allows one match each; many-to-one one per
    // distinct output label set.
    std::unordered_map<std::string, std::unordered_set<std::string>> matched;
    Vector out;
    for (const auto& ls : many) {
      signature(ls.labels, m.on, m.labels, sig);
      auto found = one_side.find(sig);
      if (found == one_side.end()) continue;
      const Element& rs = *found->second;
      double vl = ls.value, vr = rs.value;
      if (swapped) std::swap(vl, vr);
      bool keep = true;
      double v = applyOp(op, vl, vr, keep);
      if (e.return_bool) {
        v = keep ? 1 : 0;
      } else if (!keep) {
        continue;
      }
      Labels metric = resultLabels(ls.labels, rs.labels, e);
      if (e.return_bool) metric.erase(kMetricNameLabel);
      auto [mit, first_match] = matched.try_emplace(sig);
      if (m.card == Cardinality::kOneToOne) {
        if (!first_match) {
          throw EvalError{
              "multiple matches for labels: many-to-one matching must be explicit "
              "(group_left/group_right)"};
        }
      } else if (!mit->second.insert(keyOf(metric)).second) {
        throw EvalError{"multiple matches for labels: grouping labels must ensure unique matches"};
      }
      out.push_back(Element{std::move(metric), v});
    }
    return out;
  }

  static Labels resultLabels(const Labels& lhs, const Labels& rhs, const Expr& e) {
    const VectorMatching& m = e.matching;
    Labels out;
    out.reserve(lhs.size() + m.include.size());
    for (const auto& l : lhs.items()) {
      if (dropsMetricName(e.binary_op) && l.name == kMetricNameLabel) continue;
      if (m.card == Cardinality::kOneToOne) {
        const bool listed = contains(m.labels, l.name);
        if (m.on ? !listed : listed) continue;
      }
      out.set(l.name, l.value);
    }
    for (const auto& name : m.include) {
      // Labels named in group_left/right come from the "one" side (or vanish there).
      std::string_view v = rhs.get(name);
      if (!v.empty()) {
        out.set(name, v);
      } else {
        out.erase(name);
      }
    }
    return out;
  }

  const SampleStore& store_;
  const int64_t ts_;        // the instant evaluated (a subquery's step time inside one)
  const int64_t query_ts_;  // the rule evaluation time: what @ start() and @ end() mean
  const EvalOptions& options_;
  int64_t& steps_left_;             // subquery steps still allowed, shared with nested evaluators
  const Filter* filter_ = nullptr;  // for the next eval() only
};

}  // namespace

double bucketQuantile(double q, std::vector<std::pair<double, double>> buckets) {
  if (std::isnan(q)) return kNaN;
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  if (buckets.empty()) return kNaN;
  std::sort(buckets.begin(), buckets.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  if (!std::isinf(buckets.back().first) || buckets.back().first < 0) return kNaN;
  // Buckets with the same upper bound (e.g. from differently labelled series) are merged.
  std::vector<std::pair<double, double>> merged;
  for (const auto& b : buckets) {
    if (!merged.empty() && merged.back().first == b.first) {
      merged.back().second += b.second;
    } else {
      merged.push_back(b);
    }
  }
  // Counts must not decrease with the bound; scrapes that are not atomic can make them.
  double max = -std::numeric_limits<double>::infinity();
  for (auto& b : merged) {
    if (b.second > max) {
      max = b.second;
    } else if (b.second < max) {
      b.second = max;
    }
  }
  if (merged.size() < 2) return kNaN;
  const double observations = merged.back().second;
  if (observations == 0) return kNaN;
  double rank = q * observations;
  size_t b = 0;
  while (b < merged.size() - 1 && merged[b].second < rank) ++b;
  if (b == merged.size() - 1) return merged[merged.size() - 2].first;
  if (b == 0 && merged[0].first <= 0) return merged[0].first;
  double bucket_start = 0;
  const double bucket_end = merged[b].first;
  double count = merged[b].second;
  if (b > 0) {
    bucket_start = merged[b - 1].first;
    count -= merged[b - 1].second;
    rank -= merged[b - 1].second;
  }
  return bucket_start + (bucket_end - bucket_start) * (rank / count);
}

Result<EvalResult> evaluate(const Expr& expr, const SampleStore& store, int64_t at_ms,
                            const EvalOptions& options) {
  if (expr.type != ValueType::kScalar && expr.type != ValueType::kInstantVector) {
    return invalidArgument(std::string("expression must evaluate to an instant vector or a "
                                       "scalar, not a ") +
                           valueTypeName(expr.type));
  }
  try {
    int64_t steps_left = options.max_subquery_steps;
    Evaluator ev(store, at_ms, at_ms, options, steps_left);
    Value v = ev.eval(expr);
    EvalResult r;
    r.type = v.type;
    r.scalar = v.scalar;
    r.vector = std::move(v.vector);
    return r;
  } catch (const EvalError& e) {
    return invalidArgument(e.message);
  } catch (const std::exception& e) {
    // bad_alloc.
    return internalError(std::string("evaluation failed: ") + e.what());
  }
}

}  // namespace dbpulse::rules
