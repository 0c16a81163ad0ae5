#include "rules/promql_parser.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include "agent/core/text.h"
#include "rules/go_string.h"

namespace dbpulse::rules {

const char* valueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kInstantVector:
      return "instant vector";
    case ValueType::kRangeVector:
      return "range vector";
    case ValueType::kString:
      return "string";
  }
  return "?";
}

const char* binaryOpName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "+";
    case BinaryOp::kSub:
      return "-";
    case BinaryOp::kMul:
      return "*";
    case BinaryOp::kDiv:
      return "/";
    case BinaryOp::kMod:
      return "%";
    case BinaryOp::kPow:
      return "^";
    case BinaryOp::kEqual:
      return "==";
    case BinaryOp::kNotEqual:
      return "!=";
    case BinaryOp::kGreater:
      return ">";
    case BinaryOp::kLess:
      return "<";
    case BinaryOp::kGreaterEqual:
      return ">=";
    case BinaryOp::kLessEqual:
      return "<=";
    case BinaryOp::kAtan2:
      return "atan2";
    case BinaryOp::kAnd:
      return "and";
    case BinaryOp::kOr:
      return "or";
    case BinaryOp::kUnless:
      return "unless";
  }
  return "?";
}

bool isComparison(BinaryOp op) {
  return op == BinaryOp::kEqual || op == BinaryOp::kNotEqual || op == BinaryOp::kGreater ||
         op == BinaryOp::kLess || op == BinaryOp::kGreaterEqual || op == BinaryOp::kLessEqual;
}

bool isSetOperator(BinaryOp op) {
  return op == BinaryOp::kAnd || op == BinaryOp::kOr || op == BinaryOp::kUnless;
}

const char* aggregateOpName(AggregateOp op) {
  switch (op) {
    case AggregateOp::kSum:
      return "sum";
    case AggregateOp::kAvg:
      return "avg";
    case AggregateOp::kMin:
      return "min";
    case AggregateOp::kMax:
      return "max";
    case AggregateOp::kCount:
      return "count";
    case AggregateOp::kGroup:
      return "group";
    case AggregateOp::kStddev:
      return "stddev";
    case AggregateOp::kStdvar:
      return "stdvar";
    case AggregateOp::kTopk:
      return "topk";
    case AggregateOp::kBottomk:
      return "bottomk";
    case AggregateOp::kQuantile:
      return "quantile";
    case AggregateOp::kCountValues:
      return "count_values";
  }
  return "?";
}

namespace {

struct FunctionSpec {
  Function func;
  const char* name;
  std::vector<ValueType> args;
  ValueType result;
  size_t optional = 0;    // how many trailing args may be left out
  bool repeated = false;  // the last argument may repeat (label_join's source labels)
};

const std::vector<FunctionSpec>& functionSpecs() {
  using V = ValueType;
  static const std::vector<FunctionSpec> specs = {
      {Function::kRate, "rate", {V::kRangeVector}, V::kInstantVector},
      {Function::kIrate, "irate", {V::kRangeVector}, V::kInstantVector},
      {Function::kIncrease, "increase", {V::kRangeVector}, V::kInstantVector},
      {Function::kDelta, "delta", {V::kRangeVector}, V::kInstantVector},
      {Function::kDeriv, "deriv", {V::kRangeVector}, V::kInstantVector},
      {Function::kAvgOverTime, "avg_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kMinOverTime, "min_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kMaxOverTime, "max_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kSumOverTime, "sum_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kCountOverTime, "count_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kChanges, "changes", {V::kRangeVector}, V::kInstantVector},
      {Function::kResets, "resets", {V::kRangeVector}, V::kInstantVector},
      {Function::kStddevOverTime, "stddev_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kStdvarOverTime, "stdvar_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kLastOverTime, "last_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kPresentOverTime, "present_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kAbs, "abs", {V::kInstantVector}, V::kInstantVector},
      {Function::kClampMin, "clamp_min", {V::kInstantVector, V::kScalar}, V::kInstantVector},
      {Function::kClampMax, "clamp_max", {V::kInstantVector, V::kScalar}, V::kInstantVector},
      {Function::kHistogramQuantile,
       "histogram_quantile",
       {V::kScalar, V::kInstantVector},
       V::kInstantVector},
      {Function::kAbsent, "absent", {V::kInstantVector}, V::kInstantVector},
      {Function::kTime, "time", {}, V::kScalar},
      {Function::kVector, "vector", {V::kScalar}, V::kInstantVector},
      {Function::kScalar, "scalar", {V::kInstantVector}, V::kScalar},
      {Function::kPi, "pi", {}, V::kScalar},
      {Function::kRound, "round", {V::kInstantVector, V::kScalar}, V::kInstantVector, 1},
      {Function::kClamp, "clamp", {V::kInstantVector, V::kScalar, V::kScalar}, V::kInstantVector},
      {Function::kSort, "sort", {V::kInstantVector}, V::kInstantVector},
      {Function::kSortDesc, "sort_desc", {V::kInstantVector}, V::kInstantVector},
      {Function::kTimestamp, "timestamp", {V::kInstantVector}, V::kInstantVector},
      {Function::kDayOfMonth, "day_of_month", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kDayOfWeek, "day_of_week", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kDayOfYear, "day_of_year", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kDaysInMonth, "days_in_month", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kHour, "hour", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kMinute, "minute", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kMonth, "month", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kYear, "year", {V::kInstantVector}, V::kInstantVector, 1},
      {Function::kCeil, "ceil", {V::kInstantVector}, V::kInstantVector},
      {Function::kFloor, "floor", {V::kInstantVector}, V::kInstantVector},
      {Function::kExp, "exp", {V::kInstantVector}, V::kInstantVector},
      {Function::kLn, "ln", {V::kInstantVector}, V::kInstantVector},
      {Function::kLog2, "log2", {V::kInstantVector}, V::kInstantVector},
      {Function::kLog10, "log10", {V::kInstantVector}, V::kInstantVector},
      {Function::kSqrt, "sqrt", {V::kInstantVector}, V::kInstantVector},
      {Function::kSgn, "sgn", {V::kInstantVector}, V::kInstantVector},
      {Function::kSin, "sin", {V::kInstantVector}, V::kInstantVector},
      {Function::kCos, "cos", {V::kInstantVector}, V::kInstantVector},
      {Function::kTan, "tan", {V::kInstantVector}, V::kInstantVector},
      {Function::kAsin, "asin", {V::kInstantVector}, V::kInstantVector},
      {Function::kAcos, "acos", {V::kInstantVector}, V::kInstantVector},
      {Function::kAtan, "atan", {V::kInstantVector}, V::kInstantVector},
      {Function::kSinh, "sinh", {V::kInstantVector}, V::kInstantVector},
      {Function::kCosh, "cosh", {V::kInstantVector}, V::kInstantVector},
      {Function::kTanh, "tanh", {V::kInstantVector}, V::kInstantVector},
      {Function::kAsinh, "asinh", {V::kInstantVector}, V::kInstantVector},
      {Function::kAcosh, "acosh", {V::kInstantVector}, V::kInstantVector},
      {Function::kAtanh, "atanh", {V::kInstantVector}, V::kInstantVector},
      {Function::kDeg, "deg", {V::kInstantVector}, V::kInstantVector},
      {Function::kRad, "rad", {V::kInstantVector}, V::kInstantVector},
      {Function::kLabelReplace,
       "label_replace",
       {V::kInstantVector, V::kString, V::kString, V::kString, V::kString},
       V::kInstantVector},
      {Function::kLabelJoin,
       "label_join",
       {V::kInstantVector, V::kString, V::kString, V::kString},
       V::kInstantVector,
       1,
       true},
      {Function::kQuantileOverTime,
       "quantile_over_time",
       {V::kScalar, V::kRangeVector},
       V::kInstantVector},
      {Function::kAbsentOverTime, "absent_over_time", {V::kRangeVector}, V::kInstantVector},
      {Function::kPredictLinear,
       "predict_linear",
       {V::kRangeVector, V::kScalar},
       V::kInstantVector},
      {Function::kHoltWinters,
       "holt_winters",
       {V::kRangeVector, V::kScalar, V::kScalar},
       V::kInstantVector},
      {Function::kIdelta, "idelta", {V::kRangeVector}, V::kInstantVector},
      {Function::kHistogramCount, "histogram_count", {V::kInstantVector}, V::kInstantVector},
      {Function::kHistogramSum, "histogram_sum", {V::kInstantVector}, V::kInstantVector},
      {Function::kHistogramFraction,
       "histogram_fraction",
       {V::kScalar, V::kScalar, V::kInstantVector},
       V::kInstantVector},
  };
  return specs;
}

const FunctionSpec* findFunction(std::string_view name) {
  for (const auto& s : functionSpecs()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isIdentStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

bool isValidLabelName(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

enum class Tok {
  kEof,
  kIdent,
  kNumber,
  kString,
  kLParen,
  kRParen,
  kLBrace,
  kRBrace,
  kLBracket,
  kRBracket,
  kComma,
  kColon,
  kAt,
  kAssign,
  kEqual,
  kNotEqual,
  kRegexMatch,
  kRegexNoMatch,
  kGreater,
  kLess,
  kGreaterEqual,
  kLessEqual,
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
};

struct Token {
  Tok kind = Tok::kEof;
  size_t pos = 0;
  size_t end = 0;
  std::string text;  // identifier, raw number, or the unquoted string
  double number = 0;
};

// Thrown inside the parser only (never leaves this file): carries the offset.
struct SyntaxError {
  size_t pos;
  std::string message;
};

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::kEof:
      return "end of input";
    case Tok::kIdent:
      return "identifier \"" + t.text + "\"";
    case Tok::kNumber:
      return "number \"" + t.text + "\"";
    case Tok::kString:
      return "string \"" + t.text + "\"";
    default:
      return "\"" + t.text + "\"";
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  Token next() {
    skipSpaceAndComments();
    Token t;
    t.pos = pos_;
    if (pos_ >= src_.size()) {
      t.kind = Tok::kEof;
      t.end = pos_;
      return t;
    }
    const char c = src_[pos_];
    if (isIdentStart(c)) {
      size_t start = pos_;
      while (pos_ < src_.size() && isIdentChar(src_[pos_])) ++pos_;
      t.kind = Tok::kIdent;
      t.text = std::string(src_.substr(start, pos_ - start));
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && pos_ + 1 < src_.size() &&
                std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))) {
      lexNumber(t);
    } else if (c == '"' || c == '\'' || c == '`') {
      lexString(t);
    } else {
      lexPunct(t);
    }
    t.end = pos_;
    return t;
  }

  // A duration such as "5m" starting at the current position (after '[', ':' or "offset").
  Token duration() {
    skipSpaceAndComments();
    Token t;
    t.pos = pos_;
    while (pos_ < src_.size() && std::isalnum(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    t.text = std::string(src_.substr(t.pos, pos_ - t.pos));
    t.end = pos_;
    if (t.text.empty()) throw SyntaxError{t.pos, "parse error: expected a duration such as 5m"};
    return t;
  }

  // Consumes `c` when it is the next character after spaces and comments ("[5m:1m]": the
  // colon would otherwise lex as the start of an identifier).
  bool consume(char c) {
    skipSpaceAndComments();
    if (pos_ < src_.size() && src_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

 private:
  void skipSpaceAndComments() {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  void lexNumber(Token& t) {
    const size_t start = pos_;
    if (src_.substr(pos_, 2) == "0x" || src_.substr(pos_, 2) == "0X") {
      pos_ += 2;
      while (pos_ < src_.size() && std::isxdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    } else {
      while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      if (pos_ < src_.size() && src_[pos_] == '.') {
        ++pos_;
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      }
      if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
        size_t save = pos_++;
        if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-')) ++pos_;
        if (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
          while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
        } else {
          pos_ = save;  // "5e" is not an exponent; the letter is reported below
        }
      }
    }
    if (pos_ < src_.size() && isIdentChar(src_[pos_])) {
      // "5m" outside a range/offset, or "12abc".
      size_t end = pos_;
      while (end < src_.size() && isIdentChar(src_[end])) ++end;
      std::string word(src_.substr(start, end - start));
      if (parsePromDuration(word).ok()) {
        throw SyntaxError{start, "parse error: unexpected duration \"" + word + "\""};
      }
      throw SyntaxError{start, "parse error: bad number \"" + word + "\""};
    }
    t.kind = Tok::kNumber;
    t.text = std::string(src_.substr(start, pos_ - start));
    errno = 0;
    char* endp = nullptr;
    if (t.text.size() > 2 && (t.text[1] == 'x' || t.text[1] == 'X')) {
      t.number = static_cast<double>(std::strtoull(t.text.c_str(), &endp, 16));
    } else {
      t.number = std::strtod(t.text.c_str(), &endp);
    }
    if (endp != t.text.c_str() + t.text.size()) {
      throw SyntaxError{start, "parse error: bad number \"" + t.text + "\""};
    }
  }

  // Go string literal rules, as PromQL uses them: "..." and '...' with escapes, `...` raw.
  void lexString(Token& t) {
    GoString lit = readGoString(src_, pos_);
    if (!lit.ok()) throw SyntaxError{lit.error_pos, "parse error: " + lit.error};
    pos_ = lit.end;
    t.kind = Tok::kString;
    t.text = std::move(lit.value);
  }

  void lexPunct(Token& t) {
    const size_t start = pos_;
    auto two = [&](char second) { return pos_ + 1 < src_.size() && src_[pos_ + 1] == second; };
    const char c = src_[pos_];
    int len = 1;
    switch (c) {
      case '(':
        t.kind = Tok::kLParen;
        break;
      case ')':
        t.kind = Tok::kRParen;
        break;
      case '{':
        t.kind = Tok::kLBrace;
        break;
      case '}':
        t.kind = Tok::kRBrace;
        break;
      case '[':
        t.kind = Tok::kLBracket;
        break;
      case ']':
        t.kind = Tok::kRBracket;
        break;
      case ',':
        t.kind = Tok::kComma;
        break;
      case '@':
        t.kind = Tok::kAt;
        break;
      case '+':
        t.kind = Tok::kAdd;
        break;
      case '-':
        t.kind = Tok::kSub;
        break;
      case '*':
        t.kind = Tok::kMul;
        break;
      case '/':
        t.kind = Tok::kDiv;
        break;
      case '%':
        t.kind = Tok::kMod;
        break;
      case '^':
        t.kind = Tok::kPow;
        break;
      case '=':
        if (two('=')) {
          t.kind = Tok::kEqual, len = 2;
        } else if (two('~')) {
          t.kind = Tok::kRegexMatch, len = 2;
        } else {
          t.kind = Tok::kAssign;
        }
        break;
      case '!':
        if (two('=')) {
          t.kind = Tok::kNotEqual, len = 2;
        } else if (two('~')) {
          t.kind = Tok::kRegexNoMatch, len = 2;
        } else {
          throw SyntaxError{start, "parse error: unexpected character after \"!\""};
        }
        break;
      case '>':
        if (two('=')) {
          t.kind = Tok::kGreaterEqual, len = 2;
        } else {
          t.kind = Tok::kGreater;
        }
        break;
      case '<':
        if (two('=')) {
          t.kind = Tok::kLessEqual, len = 2;
        } else {
          t.kind = Tok::kLess;
        }
        break;
      case ':':
        t.kind = Tok::kColon;
        break;
      default:
        throw SyntaxError{start, std::string("parse error: unexpected character \"") + c + "\""};
    }
    pos_ += static_cast<size_t>(len);
    t.text = std::string(src_.substr(start, static_cast<size_t>(len)));
  }

  std::string_view src_;
  size_t pos_ = 0;
};

std::optional<BinaryOp> binaryOpOf(const Token& t) {
  switch (t.kind) {
    case Tok::kAdd:
      return BinaryOp::kAdd;
    case Tok::kSub:
      return BinaryOp::kSub;
    case Tok::kMul:
      return BinaryOp::kMul;
    case Tok::kDiv:
      return BinaryOp::kDiv;
    case Tok::kMod:
      return BinaryOp::kMod;
    case Tok::kPow:
      return BinaryOp::kPow;
    case Tok::kEqual:
      return BinaryOp::kEqual;
    case Tok::kNotEqual:
      return BinaryOp::kNotEqual;
    case Tok::kGreater:
      return BinaryOp::kGreater;
    case Tok::kLess:
      return BinaryOp::kLess;
    case Tok::kGreaterEqual:
      return BinaryOp::kGreaterEqual;
    case Tok::kLessEqual:
      return BinaryOp::kLessEqual;
    case Tok::kIdent: {
      const std::string k = lower(t.text);
      if (k == "atan2") return BinaryOp::kAtan2;
      if (k == "and") return BinaryOp::kAnd;
      if (k == "or") return BinaryOp::kOr;
      if (k == "unless") return BinaryOp::kUnless;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// Prometheus's precedence, lowest first.
int precedence(BinaryOp op) {
  switch (op) {
    case BinaryOp::kOr:
      return 1;
    case BinaryOp::kAnd:
    case BinaryOp::kUnless:
      return 2;
    case BinaryOp::kEqual:
    case BinaryOp::kNotEqual:
    case BinaryOp::kGreater:
    case BinaryOp::kLess:
    case BinaryOp::kGreaterEqual:
    case BinaryOp::kLessEqual:
      return 3;
    case BinaryOp::kAdd:
    case BinaryOp::kSub:
      return 4;
    case BinaryOp::kMul:
    case BinaryOp::kDiv:
    case BinaryOp::kMod:
    case BinaryOp::kAtan2:
      return 5;
    case BinaryOp::kPow:
      return 6;
  }
  return 0;
}

bool isKeyword(const std::string& lowered) {
  static const char* const kKeywords[] = {"by",         "without",     "on",     "ignoring",
                                          "group_left", "group_right", "bool",   "offset",
                                          "and",        "or",          "unless", "atan2"};
  return std::any_of(std::begin(kKeywords), std::end(kKeywords),
                     [&](const char* k) { return lowered == k; });
}

std::optional<AggregateOp> aggregateOf(const std::string& lowered) {
  if (lowered == "sum") return AggregateOp::kSum;
  if (lowered == "avg") return AggregateOp::kAvg;
  if (lowered == "min") return AggregateOp::kMin;
  if (lowered == "max") return AggregateOp::kMax;
  if (lowered == "count") return AggregateOp::kCount;
  if (lowered == "group") return AggregateOp::kGroup;
  if (lowered == "stddev") return AggregateOp::kStddev;
  if (lowered == "stdvar") return AggregateOp::kStdvar;
  if (lowered == "topk") return AggregateOp::kTopk;
  if (lowered == "bottomk") return AggregateOp::kBottomk;
  if (lowered == "quantile") return AggregateOp::kQuantile;
  if (lowered == "count_values") return AggregateOp::kCountValues;
  return std::nullopt;
}

bool hasParameter(AggregateOp op) {
  return op == AggregateOp::kTopk || op == AggregateOp::kBottomk || op == AggregateOp::kQuantile ||
         op == AggregateOp::kCountValues;
}

// A string argument: a literal, maybe in parentheses.
bool isStringArgument(const Expr& e) {
  const Expr* x = &e;
  while (x->kind == Expr::Kind::kParen) x = x->args[0].get();
  return x->kind == Expr::Kind::kString;
}

// Nodes are mutable while the parser builds them; the finished tree is const (ExprPtr).
using Node = std::unique_ptr<Expr>;

class Parser {
 public:
  explicit Parser(std::string_view src) : lexer_(src) { advance(); }

  ExprPtr parseAll() {
    Node e = parseExpression(0);
    if (cur_.kind != Tok::kEof) fail(cur_, "parse error: unexpected " + describe(cur_));
    return e;
  }

 private:
  [[noreturn]] static void fail(size_t pos, std::string message) {
    throw SyntaxError{pos, std::move(message)};
  }
  [[noreturn]] static void fail(const Token& t, std::string message) {
    fail(t.pos, std::move(message));
  }

  void advance() { cur_ = lexer_.next(); }

  void expect(Tok kind, const char* what) {
    if (cur_.kind != kind) {
      fail(cur_, std::string("parse error: expected ") + what + ", got " + describe(cur_));
    }
    advance();
  }

  bool atKeyword(const char* kw) const {
    return cur_.kind == Tok::kIdent && lower(cur_.text) == kw;
  }

  static Node node(Expr::Kind kind, size_t pos, ValueType type) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    e->type = type;
    return e;
  }

  // Precedence climbing over binary operators; operands come from parseUnary().
  Node parseExpression(int min_prec) {
    // Every nesting level (parentheses, arguments, unary operators) passes here. Parsing may
    // run on a small-stack HTTP thread (reload): deep nesting is refused, not recursed into.
    struct DepthGuard {
      int& depth;
      ~DepthGuard() { --depth; }
    } guard{++depth_};
    if (depth_ > kMaxDepth) fail(cur_, "parse error: expression nested too deeply");
    Node lhs = parseUnary();
    while (true) {
      auto op = binaryOpOf(cur_);
      if (!op || precedence(*op) < min_prec) return lhs;
      const Token op_tok = cur_;
      advance();
      auto bin = node(Expr::Kind::kBinary, op_tok.pos, ValueType::kScalar);
      bin->binary_op = *op;
      const bool has_matching = parseBinaryModifiers(*bin);
      const int next_min = *op == BinaryOp::kPow ? precedence(*op) : precedence(*op) + 1;
      Node rhs = parseExpression(next_min);
      bin->pos = lhs->pos;
      checkBinary(*bin, *lhs, *rhs, op_tok, has_matching);
      bin->lhs = std::move(lhs);
      bin->rhs = std::move(rhs);
      lhs = std::move(bin);
    }
  }

  // Unary minus binds more loosely than ^ (-2^2 is -4) and tighter than * and +.
  Node parseUnary() {
    if (cur_.kind == Tok::kSub || cur_.kind == Tok::kAdd) {
      const Token op = cur_;
      advance();
      Node operand = parseExpression(precedence(BinaryOp::kPow));
      if (operand->type != ValueType::kScalar && operand->type != ValueType::kInstantVector) {
        fail(op,
             "parse error: unary expression only allowed on expressions of type scalar or "
             "instant vector");
      }
      if (op.kind == Tok::kAdd) return operand;
      if (operand->kind == Expr::Kind::kNumber) {  // folded, as Prometheus does
        operand->pos = op.pos;
        operand->number = -operand->number;
        return operand;
      }
      auto u = node(Expr::Kind::kUnary, op.pos, operand->type);
      u->args.push_back(std::move(operand));
      return u;
    }
    return parsePostfix(parsePrimary());
  }

  // [range], [range:step], offset and @ after an operand.
  Node parsePostfix(Node e) {
    while (true) {
      if (cur_.kind == Tok::kLBracket) {
        const Token open = cur_;
        Token d = lexer_.duration();
        const int64_t range = positiveDuration(d);
        if (lexer_.consume(':')) {
          int64_t step = 0;
          if (!lexer_.consume(']')) {
            step = positiveDuration(lexer_.duration());
            advance();
            expect(Tok::kRBracket, "\"]\"");
          } else {
            advance();
          }
          if (e->type != ValueType::kInstantVector) {
            fail(e->pos, std::string("parse error: subquery is only allowed on instant vector, "
                                     "got ") +
                             valueTypeName(e->type) + " instead");
          }
          auto sq = node(Expr::Kind::kSubquery, e->pos, ValueType::kRangeVector);
          sq->range_ms = range;
          sq->step_ms = step;
          sq->args.push_back(std::move(e));
          e = std::move(sq);
          continue;
        }
        advance();
        if (e->kind != Expr::Kind::kSelector || e->type != ValueType::kInstantVector) {
          fail(open, "parse error: ranges only allowed for vector selectors");
        }
        if (e->offset_ms != 0) fail(open, "parse error: no offset modifiers allowed before range");
        if (e->at != Expr::At::kNone) {
          fail(open, "parse error: no @ modifiers allowed before range");
        }
        expect(Tok::kRBracket, "\"]\"");
        e->type = ValueType::kRangeVector;
        e->range_ms = range;
      } else if (atKeyword("offset")) {
        const Token kw = cur_;
        const bool negative = lexer_.consume('-');
        Token d = lexer_.duration();
        advance();
        checkModifiable(*e, kw, "offset modifier");
        if (e->offset_ms != 0) fail(kw, "parse error: offset may not be set multiple times");
        const int64_t ms = positiveDuration(d);
        e->offset_ms = negative ? -ms : ms;
      } else if (cur_.kind == Tok::kAt) {
        const Token at = cur_;
        advance();
        checkModifiable(*e, at, "@ modifier");
        if (e->at != Expr::At::kNone) {
          fail(at, "parse error: @ <timestamp> may not be set multiple times");
        }
        parseAt(*e);
      } else {
        return e;
      }
    }
  }

  static int64_t positiveDuration(const Token& d) {
    auto ms = parsePromDuration(d.text);
    if (!ms.ok()) fail(d, "parse error: " + ms.status().message());
    if (*ms == 0) fail(d, "parse error: duration must be greater than 0");
    return *ms;
  }

  static void checkModifiable(const Expr& e, const Token& at, const char* what) {
    if (e.kind != Expr::Kind::kSelector && e.kind != Expr::Kind::kSubquery) {
      fail(at, std::string("parse error: ") + what +
                   " must be preceded by an instant vector selector or range vector selector "
                   "or a subquery");
    }
  }

  // After "@": a Unix time in seconds (maybe signed), or start() / end().
  void parseAt(Expr& e) {
    if (cur_.kind == Tok::kIdent && (lower(cur_.text) == "start" || lower(cur_.text) == "end")) {
      e.at = lower(cur_.text) == "start" ? Expr::At::kStart : Expr::At::kEnd;
      advance();
      expect(Tok::kLParen, "\"(\" after start/end in @");
      expect(Tok::kRParen, "\")\" after start/end in @");
      return;
    }
    const Token first = cur_;
    double sign = 1;
    if (cur_.kind == Tok::kSub || cur_.kind == Tok::kAdd) {
      sign = cur_.kind == Tok::kSub ? -1 : 1;
      advance();
    }
    double v = 0;
    if (cur_.kind == Tok::kNumber) {
      v = cur_.number;
    } else if (cur_.kind == Tok::kIdent &&
               (lower(cur_.text) == "inf" || lower(cur_.text) == "nan")) {
      v = lower(cur_.text) == "inf" ? std::numeric_limits<double>::infinity()
                                    : std::numeric_limits<double>::quiet_NaN();
    } else {
      fail(cur_, "parse error: unexpected " + describe(cur_) + " in @, expected timestamp");
    }
    advance();
    v *= sign;
    // Seconds to milliseconds must stay inside int64 (Prometheus checks the seconds only).
    if (!std::isfinite(v) || std::fabs(v) >= 9.2e15) {
      fail(first, "parse error: timestamp out of bounds for @ modifier: " + describe(first));
    }
    e.at = Expr::At::kTime;
    e.at_ms = static_cast<int64_t>(std::llround(v * 1000));
  }

  Node parsePrimary() {
    const Token t = cur_;
    switch (t.kind) {
      case Tok::kNumber: {
        advance();
        auto n = node(Expr::Kind::kNumber, t.pos, ValueType::kScalar);
        n->number = t.number;
        return n;
      }
      case Tok::kString: {
        advance();
        auto s = node(Expr::Kind::kString, t.pos, ValueType::kString);
        s->text = t.text;
        return s;
      }
      case Tok::kLParen: {
        advance();
        Node inner = parseExpression(0);
        expect(Tok::kRParen, "\")\"");
        auto p = node(Expr::Kind::kParen, t.pos, inner->type);
        p->args.push_back(std::move(inner));
        return p;
      }
      case Tok::kLBrace:
        return parseSelector("", t.pos);
      case Tok::kIdent:
        break;
      default:
        fail(t, "parse error: unexpected " + describe(t));
    }

    const std::string k = lower(t.text);
    if (k == "inf" || k == "nan") {
      advance();
      auto n = node(Expr::Kind::kNumber, t.pos, ValueType::kScalar);
      n->number = k == "inf" ? std::numeric_limits<double>::infinity()
                             : std::numeric_limits<double>::quiet_NaN();
      return n;
    }
    if (auto agg = aggregateOf(k)) return parseAggregate(*agg, t);
    if (isKeyword(k)) fail(t, "parse error: unexpected keyword \"" + t.text + "\"");
    advance();
    if (cur_.kind == Tok::kLParen) return parseCall(t);
    return parseSelector(t.text, t.pos);
  }

  std::vector<std::string> parseLabelList(const char* context) {
    expect(Tok::kLParen, "\"(\"");
    std::vector<std::string> labels;
    while (cur_.kind != Tok::kRParen) {
      if (cur_.kind != Tok::kIdent || !isValidLabelName(cur_.text)) {
        fail(cur_, std::string("parse error: expected a label name in ") + context + ", got " +
                       describe(cur_));
      }
      labels.push_back(cur_.text);
      advance();
      if (cur_.kind == Tok::kComma) {
        advance();
      } else if (cur_.kind != Tok::kRParen) {
        fail(cur_, std::string("parse error: expected \",\" or \")\" in ") + context + ", got " +
                       describe(cur_));
      }
    }
    advance();
    return labels;
  }

  void parseGrouping(Expr& agg) {
    agg.without = lower(cur_.text) == "without";
    advance();
    agg.grouping = parseLabelList(agg.without ? "without (...)" : "by (...)");
  }

  Node parseAggregate(AggregateOp op, const Token& t) {
    advance();
    auto agg = node(Expr::Kind::kAggregate, t.pos, ValueType::kInstantVector);
    agg->aggregate = op;
    bool grouped = false;
    if (atKeyword("by") || atKeyword("without")) {
      parseGrouping(*agg);
      grouped = true;
    }
    if (cur_.kind != Tok::kLParen) {
      fail(cur_, "parse error: expected \"(\" after aggregation \"" + t.text + "\", got " +
                     describe(cur_));
    }
    advance();
    std::vector<Node> args;
    while (cur_.kind != Tok::kRParen) {
      args.push_back(parseExpression(0));
      if (cur_.kind == Tok::kComma) {
        advance();
      } else if (cur_.kind != Tok::kRParen) {
        fail(cur_, "parse error: expected \",\" or \")\" in aggregation, got " + describe(cur_));
      }
    }
    advance();
    const size_t expected = hasParameter(op) ? 2 : 1;
    if (args.size() != expected) {
      fail(t,
           "parse error: wrong number of arguments for aggregate expression provided, "
           "expected " +
               std::to_string(expected) + ", got " + std::to_string(args.size()));
    }
    Node& arg = args.back();
    if (arg->type != ValueType::kInstantVector) {
      fail(arg->pos, std::string("parse error: expected type instant vector in aggregation "
                                 "expression, got ") +
                         valueTypeName(arg->type));
    }
    if (expected == 2) {
      const ValueType want =
          op == AggregateOp::kCountValues ? ValueType::kString : ValueType::kScalar;
      if (args[0]->type != want) {
        fail(args[0]->pos, std::string("parse error: expected type ") + valueTypeName(want) +
                               " in aggregation parameter, got " + valueTypeName(args[0]->type));
      }
      agg->param = std::move(args[0]);
    }
    if (atKeyword("by") || atKeyword("without")) {
      if (grouped) fail(cur_, "parse error: more than one grouping clause");
      parseGrouping(*agg);
    }
    agg->args.push_back(std::move(arg));
    return agg;
  }

  Node parseCall(const Token& name) {
    const FunctionSpec* spec = findFunction(name.text);
    if (spec == nullptr) {
      fail(name, "parse error: unknown function with name \"" + name.text + "\"");
    }
    advance();  // "("
    std::vector<Node> args;
    while (cur_.kind != Tok::kRParen) {
      args.push_back(parseExpression(0));
      if (cur_.kind == Tok::kComma) {
        advance();
        if (cur_.kind == Tok::kRParen) fail(cur_, "parse error: unexpected \")\" after \",\"");
      } else if (cur_.kind != Tok::kRParen) {
        fail(cur_, "parse error: expected \",\" or \")\" in call to \"" + name.text + "\", got " +
                       describe(cur_));
      }
    }
    advance();
    if (spec->optional > 0 && args.size() < spec->args.size() - spec->optional) {
      fail(name,
           "parse error: expected at least " + std::to_string(spec->args.size() - spec->optional) +
               " argument(s) in call to \"" + name.text + "\", got " + std::to_string(args.size()));
    }
    if (spec->optional > 0 && !spec->repeated && args.size() > spec->args.size()) {
      fail(name, "parse error: expected at most " + std::to_string(spec->args.size()) +
                     " argument(s) in call to \"" + name.text + "\", got " +
                     std::to_string(args.size()));
    }
    if (spec->optional == 0 && args.size() != spec->args.size()) {
      fail(name, "parse error: expected " + std::to_string(spec->args.size()) +
                     " argument(s) in call to \"" + name.text + "\", got " +
                     std::to_string(args.size()));
    }
    for (size_t i = 0; i < args.size(); ++i) {
      const ValueType want = spec->args[std::min(i, spec->args.size() - 1)];
      if (args[i]->type != want) {
        fail(args[i]->pos, std::string("parse error: expected type ") + valueTypeName(want) +
                               " in call to function \"" + name.text + "\", got " +
                               valueTypeName(args[i]->type));
      }
      // Prometheus reads these arguments as literals.
      if (want == ValueType::kString && !isStringArgument(*args[i])) {
        fail(args[i]->pos,
             "parse error: expected a string literal in call to function \"" + name.text + "\"");
      }
    }
    auto call = node(Expr::Kind::kCall, name.pos, spec->result);
    call->func = spec->func;
    for (auto& a : args) call->args.push_back(std::move(a));
    return call;
  }

  Node parseSelector(const std::string& metric, size_t pos) {
    auto sel = node(Expr::Kind::kSelector, pos, ValueType::kInstantVector);
    sel->metric_name = metric;
    if (!metric.empty() && cur_.kind != Tok::kLBrace) return sel;
    const Token open = cur_;
    expect(Tok::kLBrace, "\"{\"");
    while (cur_.kind != Tok::kRBrace) {
      if (cur_.kind != Tok::kIdent || !isValidLabelName(cur_.text)) {
        fail(cur_, "parse error: expected a label name in selector, got " + describe(cur_));
      }
      LabelMatcher m;
      m.name = cur_.text;
      advance();
      const Token op = cur_;
      switch (op.kind) {
        case Tok::kAssign:
          m.op = LabelMatcher::Op::kEqual;
          break;
        case Tok::kNotEqual:
          m.op = LabelMatcher::Op::kNotEqual;
          break;
        case Tok::kRegexMatch:
          m.op = LabelMatcher::Op::kRegexMatch;
          break;
        case Tok::kRegexNoMatch:
          m.op = LabelMatcher::Op::kRegexNoMatch;
          break;
        default:
          fail(op, "parse error: expected one of =, !=, =~, !~ after label \"" + m.name +
                       "\", got " + describe(op));
      }
      advance();
      if (cur_.kind != Tok::kString) {
        fail(cur_, "parse error: expected a quoted label value, got " + describe(cur_));
      }
      m.value = cur_.text;
      if (m.op == LabelMatcher::Op::kRegexMatch || m.op == LabelMatcher::Op::kRegexNoMatch) {
        m.regex = compileRegex(m.value, cur_.pos);
      }
      advance();
      if (m.name == "__name__" && !metric.empty()) {
        fail(op, "parse error: metric name must not be set twice: \"" + metric + "\" or \"" +
                     m.value + "\"");
      }
      sel->matchers.push_back(std::move(m));
      if (cur_.kind == Tok::kComma) {
        advance();
      } else if (cur_.kind != Tok::kRBrace) {
        fail(cur_, "parse error: expected \",\" or \"}\" in selector, got " + describe(cur_));
      }
    }
    advance();
    // Like Prometheus: a selector must not match every series.
    const bool has_nonempty =
        !metric.empty() || std::any_of(sel->matchers.begin(), sel->matchers.end(),
                                       [](const LabelMatcher& m) { return !m.matches(""); });
    if (!has_nonempty) {
      fail(open, "parse error: vector selector must contain at least one non-empty matcher");
    }
    return sel;
  }

  static std::shared_ptr<const re2::RE2> compileRegex(const std::string& pattern, size_t pos) {
    auto re = compileAnchoredRegex(pattern);
    if (!re.ok()) {
      fail(pos,
           "parse error: invalid regular expression \"" + pattern + "\": " + re.status().message());
    }
    return std::move(*re);
  }

  // bool, on/ignoring (...), group_left/group_right (...). Returns whether on/ignoring
  // was given.
  bool parseBinaryModifiers(Expr& bin) {
    const BinaryOp op = bin.binary_op;
    bool has_matching = false;
    if (atKeyword("bool")) {
      if (!isComparison(op)) {
        fail(cur_, "parse error: bool modifier can only be used on comparison operators");
      }
      bin.return_bool = true;
      advance();
    }
    bin.matching.card = isSetOperator(op) ? Cardinality::kManyToMany : Cardinality::kOneToOne;
    if (atKeyword("on") || atKeyword("ignoring")) {
      bin.matching.on = lower(cur_.text) == "on";
      has_matching = true;
      advance();
      bin.matching.labels = parseLabelList(bin.matching.on ? "on (...)" : "ignoring (...)");
      if (atKeyword("group_left") || atKeyword("group_right")) {
        const Token g = cur_;
        if (isSetOperator(op)) {
          fail(g, std::string("parse error: no grouping allowed for \"") + binaryOpName(op) +
                      "\" operation");
        }
        bin.matching.card =
            lower(g.text) == "group_left" ? Cardinality::kManyToOne : Cardinality::kOneToMany;
        advance();
        if (cur_.kind == Tok::kLParen) {
          bin.matching.include = parseLabelList("group_left/group_right (...)");
        }
        for (const auto& l : bin.matching.include) {
          if (bin.matching.on && std::find(bin.matching.labels.begin(), bin.matching.labels.end(),
                                           l) != bin.matching.labels.end()) {
            fail(g,
                 "parse error: label \"" + l + "\" must not occur in ON and GROUP clause at once");
          }
        }
      }
    } else if (atKeyword("group_left") || atKeyword("group_right")) {
      fail(cur_, "parse error: " + lower(cur_.text) + " needs on(...) or ignoring(...) before it");
    }
    return has_matching;
  }

  void checkBinary(Expr& bin, const Expr& lhs, const Expr& rhs, const Token& op_tok,
                   bool has_matching) {
    const BinaryOp op = bin.binary_op;
    auto operand_ok = [](const Expr& e) {
      return e.type == ValueType::kScalar || e.type == ValueType::kInstantVector;
    };
    if (!operand_ok(lhs) || !operand_ok(rhs)) {
      fail(op_tok,
           "parse error: binary expression must contain only scalar and instant vector "
           "types");
    }
    const bool both_scalar = lhs.type == ValueType::kScalar && rhs.type == ValueType::kScalar;
    const bool both_vector =
        lhs.type == ValueType::kInstantVector && rhs.type == ValueType::kInstantVector;
    if (isComparison(op) && both_scalar && !bin.return_bool) {
      fail(op_tok, "parse error: comparisons between scalars must use BOOL modifier");
    }
    if (isSetOperator(op) && !both_vector) {
      fail(op_tok, std::string("parse error: set operator \"") + binaryOpName(op) +
                       "\" not allowed in binary scalar expression");
    }
    // Prometheus refuses on/ignoring with a scalar side only when it lists labels.
    if (has_matching && !both_vector && !bin.matching.labels.empty()) {
      fail(op_tok, "parse error: vector matching only allowed between instant vectors");
    }
    bin.type = both_scalar ? ValueType::kScalar : ValueType::kInstantVector;
  }

  static constexpr int kMaxDepth = 48;
  Lexer lexer_;
  Token cur_;
  int depth_ = 0;
};

}  // namespace

std::string supportedFunctionList() {
  std::string out;
  for (const auto& s : functionSpecs()) out += (out.empty() ? "" : " ") + std::string(s.name);
  return out;
}

const char* functionName(Function f) {
  for (const auto& s : functionSpecs()) {
    if (s.func == f) return s.name;
  }
  return "?";
}

bool LabelMatcher::matches(std::string_view v) const {
  switch (op) {
    case Op::kEqual:
      return v == value;
    case Op::kNotEqual:
      return v != value;
    case Op::kRegexMatch:
      return re2::RE2::FullMatch(v, *regex);
    case Op::kRegexNoMatch:
      return !re2::RE2::FullMatch(v, *regex);
  }
  return false;
}

Result<std::shared_ptr<const re2::RE2>> compileAnchoredRegex(std::string_view pattern) {
  re2::RE2::Options options;
  options.set_log_errors(false);  // the error goes into the Status, not to stderr
  std::string anchored = "^(?:";
  anchored.append(pattern);
  anchored.append(")$");
  auto re = std::make_shared<const re2::RE2>(anchored, options);
  if (!re->ok()) {
    std::string reason = re->error();
    // RE2 names the whole anchored text for some errors; report the operator's pattern.
    if (auto at = reason.find(anchored); at != std::string::npos) {
      reason.replace(at, anchored.size(), std::string(pattern));
    }
    return invalidArgument(std::move(reason));
  }
  return re;
}

Result<ExprPtr> parseExpr(std::string_view text) {
  try {
    Parser p(text);
    return p.parseAll();
  } catch (const SyntaxError& e) {
    auto [line, col] = lineColumn(text, e.pos);
    return invalidArgument(std::to_string(line) + ":" + std::to_string(col) + ": " + e.message);
  } catch (const std::exception& e) {
    // std::bad_alloc: report, never propagate.
    return invalidArgument(std::string("parse error: ") + e.what());
  }
}

Result<int64_t> parsePromDuration(std::string_view text) {
  if (text == "0") return int64_t{0};
  if (text.empty()) return invalidArgument("empty duration string");
  struct Unit {
    const char* name;
    int64_t ms;
  };
  // In the order they must appear, each at most once ("1h30m", not "30m1h").
  static const Unit kUnits[] = {{"y", 365LL * 86'400'000},
                                {"w", 7LL * 86'400'000},
                                {"d", 86'400'000},
                                {"h", 3'600'000},
                                {"m", 60'000},
                                {"s", 1000},
                                {"ms", 1}};
  const std::string bad = "not a valid duration string: \"" + std::string(text) + "\"";
  int64_t total = 0;
  size_t i = 0;
  size_t next_unit = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start || i - start > 15) return invalidArgument(bad);
    int64_t n = std::stoll(std::string(text.substr(start, i - start)));
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    size_t u = next_unit;
    while (u < std::size(kUnits) && unit != kUnits[u].name) ++u;
    if (u == std::size(kUnits)) return invalidArgument(bad);
    if (n > std::numeric_limits<int64_t>::max() / kUnits[u].ms) return invalidArgument(bad);
    total += n * kUnits[u].ms;
    next_unit = u + 1;
  }
  return total;
}

void forEachSelector(const Expr& expr, const std::function<void(const Expr&)>& fn) {
  if (expr.kind == Expr::Kind::kSelector) fn(expr);
  if (expr.lhs) forEachSelector(*expr.lhs, fn);
  if (expr.rhs) forEachSelector(*expr.rhs, fn);
  if (expr.param) forEachSelector(*expr.param, fn);
  for (const auto& a : expr.args) forEachSelector(*a, fn);
}

}  // namespace dbpulse::rules
