#include "rules/promql_parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace dbpulse::rules {
namespace {

std::string show(const Expr& e);

std::string showModifiers(const Expr& e) {
  std::string s;
  if (e.offset_ms) s += " offset " + std::to_string(e.offset_ms) + "ms";
  if (e.at == Expr::At::kTime) s += " @" + std::to_string(e.at_ms) + "ms";
  if (e.at == Expr::At::kStart) s += " @start";
  if (e.at == Expr::At::kEnd) s += " @end";
  return s;
}

std::string showMatchers(const Expr& e) {
  std::string out;
  for (const auto& m : e.matchers) {
    const char* op = m.op == LabelMatcher::Op::kEqual        ? "="
                     : m.op == LabelMatcher::Op::kNotEqual   ? "!="
                     : m.op == LabelMatcher::Op::kRegexMatch ? "=~"
                                                             : "!~";
    out += (out.empty() ? "" : ",") + m.name + op + "\"" + m.value + "\"";
  }
  return out;
}

std::string showList(const std::vector<std::string>& l) {
  std::string out;
  for (const auto& s : l) out += (out.empty() ? "" : ",") + s;
  return "(" + out + ")";
}

std::string fmtNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// An S-expression of the tree, to check structure (precedence, modifiers) compactly.
std::string show(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kNumber:
      return fmtNumber(e.number);
    case Expr::Kind::kString:
      return "\"" + e.text + "\"";
    case Expr::Kind::kSelector: {
      std::string s = e.metric_name;
      if (!e.matchers.empty()) s += "{" + showMatchers(e) + "}";
      if (e.range_ms) s += "[" + std::to_string(e.range_ms) + "ms]";
      return s + showModifiers(e);
    }
    case Expr::Kind::kSubquery:
      return "(subquery " + show(*e.args[0]) + " " + std::to_string(e.range_ms) + "ms " +
             std::to_string(e.step_ms) + "ms" + showModifiers(e) + ")";
    case Expr::Kind::kCall: {
      std::string s = std::string("(") + functionName(e.func);
      for (const auto& a : e.args) s += " " + show(*a);
      return s + ")";
    }
    case Expr::Kind::kAggregate: {
      std::string s = std::string("(") + aggregateOpName(e.aggregate);
      if (e.without || !e.grouping.empty()) {
        s += e.without ? " without" : " by";
        s += showList(e.grouping);
      }
      if (e.param) s += " " + show(*e.param);
      return s + " " + show(*e.args[0]) + ")";
    }
    case Expr::Kind::kBinary: {
      std::string s = std::string("(") + binaryOpName(e.binary_op);
      if (e.return_bool) s += " bool";
      const auto& m = e.matching;
      if (e.lhs->type == ValueType::kInstantVector && e.rhs->type == ValueType::kInstantVector) {
        if (!m.labels.empty() || m.on)
          s += std::string(m.on ? " on" : " ignoring") + showList(m.labels);
        if (m.card == Cardinality::kManyToOne) s += " group_left" + showList(m.include);
        if (m.card == Cardinality::kOneToMany) s += " group_right" + showList(m.include);
      }
      return s + " " + show(*e.lhs) + " " + show(*e.rhs) + ")";
    }
    case Expr::Kind::kUnary:
      return "(neg " + show(*e.args[0]) + ")";
    case Expr::Kind::kParen:
      return show(*e.args[0]);
  }
  return "?";
}

struct ParseCase {
  const char* input;
  const char* tree;
  ValueType type;
};

class ParsesTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParsesTest, BuildsExpectedTree) {
  const auto& c = GetParam();
  auto r = parseExpr(c.input);
  ASSERT_TRUE(r.ok()) << c.input << ": " << r.status().message();
  EXPECT_EQ(show(**r), c.tree) << c.input;
  EXPECT_EQ((*r)->type, c.type) << c.input;
}

constexpr auto S = ValueType::kScalar;
constexpr auto V = ValueType::kInstantVector;
constexpr auto M = ValueType::kRangeVector;

INSTANTIATE_TEST_SUITE_P(
    PromqlParser, ParsesTest,
    ::testing::Values(
        // literals
        ParseCase{"1", "1", S}, ParseCase{"1.5e3", "1500", S}, ParseCase{".5", "0.5", S},
        ParseCase{"0x1F", "31", S}, ParseCase{"Inf", "+Inf", S}, ParseCase{"-inf", "-Inf", S},
        ParseCase{"NaN", "NaN", S}, ParseCase{"-1", "-1", S},
        // selectors and matchers
        ParseCase{"up", "up", V},
        ParseCase{"http_requests_total{job=\"api\", code!=\"200\",}",
                  "http_requests_total{job=\"api\",code!=\"200\"}", V},
        ParseCase{"m{a=~\"x|y\", b!~'z.*'}", "m{a=~\"x|y\",b!~\"z.*\"}", V},
        ParseCase{"{__name__=~\"pg_.*\"}", "{__name__=~\"pg_.*\"}", V},
        ParseCase{"job:rate5m:sum", "job:rate5m:sum", V},
        ParseCase{"m{on=\"x\"}", "m{on=\"x\"}", V},  // keywords are fine as label names
        ParseCase{"m[5m]", "m[300000ms]", M}, ParseCase{"m[1h30m]", "m[5400000ms]", M},
        ParseCase{"m offset 1m", "m offset 60000ms", V},
        ParseCase{"m[5m] offset 1h", "m[300000ms] offset 3600000ms", M},
        ParseCase{"m{a=\"\\\"q\\\"\\n\"}", "m{a=\"\"q\"\n\"}", V},
        ParseCase{"m{a=`raw\\n`}", "m{a=\"raw\\n\"}", V},
        // functions
        ParseCase{"rate(m[5m])", "(rate m[300000ms])", V},
        ParseCase{"irate(m[1m])", "(irate m[60000ms])", V},
        ParseCase{"increase(m[1h])", "(increase m[3600000ms])", V},
        ParseCase{"delta(m[5m])", "(delta m[300000ms])", V},
        ParseCase{"deriv(m[5m])", "(deriv m[300000ms])", V},
        ParseCase{"avg_over_time(m[5m])", "(avg_over_time m[300000ms])", V},
        ParseCase{"max_over_time(m[5m])", "(max_over_time m[300000ms])", V},
        ParseCase{"min_over_time(m[5m])", "(min_over_time m[300000ms])", V},
        ParseCase{"sum_over_time(m[5m])", "(sum_over_time m[300000ms])", V},
        ParseCase{"count_over_time(m[5m])", "(count_over_time m[300000ms])", V},
        ParseCase{"abs(m)", "(abs m)", V}, ParseCase{"clamp_min(m, 0)", "(clamp_min m 0)", V},
        ParseCase{"clamp_max(m, 1)", "(clamp_max m 1)", V},
        ParseCase{"histogram_quantile(0.95, sum by (le) (rate(h_bucket[5m])))",
                  "(histogram_quantile 0.95 (sum by(le) (rate h_bucket[300000ms])))", V},
        ParseCase{"absent(up{job=\"x\"})", "(absent up{job=\"x\"})", V},
        ParseCase{"time()", "(time)", S}, ParseCase{"vector(1)", "(vector 1)", V},
        ParseCase{"scalar(m)", "(scalar m)", S}, ParseCase{"rate (m[5m])", "(rate m[300000ms])", V},
        // aggregations
        ParseCase{"sum(m)", "(sum m)", V}, ParseCase{"SUM(m)", "(sum m)", V},
        ParseCase{"sum by (a, b) (m)", "(sum by(a,b) m)", V},
        ParseCase{"sum(m) by (a)", "(sum by(a) m)", V},
        ParseCase{"avg without (instance) (m)", "(avg without(instance) m)", V},
        ParseCase{"min(m) without (a,)", "(min without(a) m)", V},
        ParseCase{"max by () (m)", "(max m)", V}, ParseCase{"count(m)", "(count m)", V},
        // precedence and associativity
        ParseCase{"1 + 2 * 3", "(+ 1 (* 2 3))", S}, ParseCase{"1 * 2 + 3", "(+ (* 1 2) 3)", S},
        ParseCase{"1 - 2 - 3", "(- (- 1 2) 3)", S}, ParseCase{"2 ^ 3 ^ 2", "(^ 2 (^ 3 2))", S},
        ParseCase{"-2 ^ 2", "(neg (^ 2 2))", S}, ParseCase{"2 ^ -1", "(^ 2 -1)", S},
        ParseCase{"-a * b", "(* (neg a) b)", V}, ParseCase{"a % b / c", "(/ (% a b) c)", V},
        ParseCase{"(1 + 2) * 3", "(* (+ 1 2) 3)", S}, ParseCase{"a + b > c", "(> (+ a b) c)", V},
        ParseCase{"a > b and c", "(and (> a b) c)", V},
        ParseCase{"a and b or c and d", "(or (and a b) (and c d))", V},
        ParseCase{"a or b unless c", "(or a (unless b c))", V},
        ParseCase{"a AND b", "(and a b)", V}, ParseCase{"1 > bool 2", "(> bool 1 2)", S},
        ParseCase{"a == bool b", "(== bool a b)", V}, ParseCase{"m > 5", "(> m 5)", V},
        ParseCase{"5 < m", "(< 5 m)", V},
        // vector matching
        ParseCase{"a / on(x, y) b", "(/ on(x,y) a b)", V},
        ParseCase{"a / ignoring(x) b", "(/ ignoring(x) a b)", V},
        ParseCase{"a * on(i) group_left(v) b", "(* on(i) group_left(v) a b)", V},
        ParseCase{"a * on(i) group_right b", "(* on(i) group_right() a b)", V},
        ParseCase{"a > bool on(i) b", "(> bool on(i) a b)", V},
        ParseCase{"a and on(i) b", "(and on(i) a b)", V},
        ParseCase{"a unless ignoring(i) b", "(unless ignoring(i) a b)", V},
        // comments and whitespace
        ParseCase{"sum(\n  m # a comment\n)", "(sum m)", V},
        // aggregations with a parameter
        ParseCase{"topk(5, m)", "(topk 5 m)", V},
        ParseCase{"bottomk by (a) (2, m)", "(bottomk by(a) 2 m)", V},
        ParseCase{"sum(m) + quantile(0.9, m)", "(+ (sum m) (quantile 0.9 m))", V},
        ParseCase{"count_values without (b) (\"v\", m)", "(count_values without(b) \"v\" m)", V},
        ParseCase{"stddev(m)", "(stddev m)", V}, ParseCase{"stdvar(m)", "(stdvar m)", V},
        ParseCase{"group(m)", "(group m)", V},
        // the rest of Prometheus's functions
        ParseCase{"label_replace(m, \"a\", \"$1\", \"b\", \"(.*)\")",
                  "(label_replace m \"a\" \"$1\" \"b\" \"(.*)\")", V},
        ParseCase{"label_join(m, \"a\", \",\")", "(label_join m \"a\" \",\")", V},
        ParseCase{"label_join(m, \"a\", \",\", \"b\", \"c\", (\"d\"))",
                  "(label_join m \"a\" \",\" \"b\" \"c\" \"d\")", V},
        ParseCase{"predict_linear(m[1h], 3600)", "(predict_linear m[3600000ms] 3600)", V},
        ParseCase{"holt_winters(m[1h], 0.5, 0.1)", "(holt_winters m[3600000ms] 0.5 0.1)", V},
        ParseCase{"quantile_over_time(0.5, m[5m])", "(quantile_over_time 0.5 m[300000ms])", V},
        ParseCase{"absent_over_time(m[5m])", "(absent_over_time m[300000ms])", V},
        ParseCase{"idelta(m[5m])", "(idelta m[300000ms])", V},
        ParseCase{"histogram_fraction(0, 1, m)", "(histogram_fraction 0 1 m)", V},
        ParseCase{"a atan2 b", "(atan2 a b)", V},
        ParseCase{"1 atan2 2 * 3", "(* (atan2 1 2) 3)", S},
        ParseCase{"a + b atan2 on(x) c", "(+ a (atan2 on(x) b c))", V},
        // subqueries, @ and negative offsets
        ParseCase{"rate(m[5m:1m])", "(rate (subquery m 300000ms 60000ms))", V},
        ParseCase{"m[5m:]", "(subquery m 300000ms 0ms)", M},
        ParseCase{"m [ 5m : 30s ] offset 1m", "(subquery m 300000ms 30000ms offset 60000ms)", M},
        ParseCase{"max_over_time(rate(m[1m])[1h:5m] @ end())",
                  "(max_over_time (subquery (rate m[60000ms]) 3600000ms 300000ms @end))", V},
        ParseCase{"m offset 1m [5m:]", "(subquery m offset 60000ms 300000ms 0ms)", M},
        ParseCase{"m @ 1609746000", "m @1609746000000ms", V},
        ParseCase{"m @ -1.5 offset 1m", "m offset 60000ms @-1500ms", V},
        ParseCase{"m[5m] offset -1m @ start()", "m[300000ms] offset -60000ms @start", M},
        ParseCase{"m offset - 5m", "m offset -300000ms", V}, ParseCase{"m @ 0x10", "m @16000ms", V},
        ParseCase{"m % on() 2", "(% m 2)", V}));

struct ErrorCase {
  const char* input;
  const char* error;  // expected prefix of the message
};

class RejectsTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RejectsTest, ReportsPositionAndReason) {
  const auto& c = GetParam();
  auto r = parseExpr(c.input);
  ASSERT_FALSE(r.ok()) << c.input << " parsed as " << show(**r);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().substr(0, std::string(c.error).size()), c.error)
      << c.input << " -> " << r.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    PromqlParser, RejectsTest,
    ::testing::Values(
        // what Prometheus 2.42 rejects too
        ErrorCase{"topk(m)",
                  "1:1: parse error: wrong number of arguments for aggregate "
                  "expression provided, expected 2, got 1"},
        ErrorCase{"quantile(0.5, m, 1)", "1:1: parse error: wrong number of arguments"},
        ErrorCase{"count_values(1, m)",
                  "1:14: parse error: expected type string in aggregation parameter, got scalar"},
        ErrorCase{"topk(\"a\", m)", "1:6: parse error: expected type scalar in aggregation"},
        ErrorCase{"limitk(1, m)", "1:1: parse error: unknown function with name \"limitk\""},
        ErrorCase{"label_replace(m, \"a\", \"b\", \"c\")",
                  "1:1: parse error: expected 5 argument(s) in call to \"label_replace\""},
        ErrorCase{"label_join(m, \"a\")", "1:1: parse error: expected at least 3 argument(s)"},
        ErrorCase{"label_join(m, \"a\", \",\", 1)",
                  "1:25: parse error: expected type string in call to function \"label_join\""},
        ErrorCase{"m[5m:1m:1m]", "1:8: parse error: expected \"]\""},
        ErrorCase{"m[5m][5m:]",
                  "1:1: parse error: subquery is only allowed on instant vector, "
                  "got range vector"},
        ErrorCase{"time()[5m:]", "1:1: parse error: subquery is only allowed on instant vector"},
        ErrorCase{"m[5m:0s]", "1:6: parse error: duration must be greater than 0"},
        ErrorCase{"m offset 0s", "1:10: parse error: duration must be greater than 0"},
        ErrorCase{"m offset 1m [5m]",
                  "1:13: parse error: no offset modifiers allowed before range"},
        ErrorCase{"m @ 10 [5m]", "1:8: parse error: no @ modifiers allowed before range"},
        ErrorCase{"m @ 1 @ 2", "1:7: parse error: @ <timestamp> may not be set multiple times"},
        ErrorCase{"m offset 1m offset 1m", "1:13: parse error: offset may not be set multiple"},
        ErrorCase{"sum(m) @ 10", "1:8: parse error: @ modifier must be preceded by"},
        ErrorCase{"(m) @ 10", "1:5: parse error: @ modifier must be preceded by"},
        ErrorCase{"m @ (10)", "1:5: parse error: unexpected \"(\" in @, expected timestamp"},
        ErrorCase{"m @ 1e20", "1:5: parse error: timestamp out of bounds for @ modifier"},
        ErrorCase{"m @ Inf", "1:5: parse error: timestamp out of bounds for @ modifier"},
        ErrorCase{"m @ start", "1:10: parse error: expected \"(\" after start/end in @"},
        ErrorCase{"-m[5m:]", "1:1: parse error: unary expression only allowed"},
        // syntax
        ErrorCase{"", "1:1: parse error: unexpected end of input"},
        ErrorCase{"sum(m", "1:6: parse error: expected \",\" or \")\" in aggregation"},
        ErrorCase{"m{a=\"x\"", "1:8: parse error: expected \",\" or \"}\" in selector"},
        ErrorCase{"m{a==\"x\"}", "1:4: parse error: expected one of =, !=, =~, !~"},
        ErrorCase{"m{a=x}", "1:5: parse error: expected a quoted label value"},
        ErrorCase{"m{a=\"x}", "1:5: parse error: unterminated string"},
        ErrorCase{"m{a=~\"(\"}", "1:6: parse error: invalid regular expression \"(\": missing )"},
        // RE2 syntax, as Prometheus: no backreferences, lookarounds or possessive repeats
        ErrorCase{"m{a=~\"(a)\\\\1\"}",
                  "1:6: parse error: invalid regular expression \"(a)\\1\": invalid escape"},
        ErrorCase{"m{a!~\"x(?=y)\"}",
                  "1:6: parse error: invalid regular expression \"x(?=y)\": invalid perl"},
        ErrorCase{"m{a=~\"a{1001}\"}", "1:6: parse error: invalid regular expression"},
        ErrorCase{"{}", "1:1: parse error: vector selector must contain at least one non-empty"},
        ErrorCase{"{a=~\".*\"}", "1:1: parse error: vector selector must contain"},
        ErrorCase{"m[5x]", "1:3: parse error: not a valid duration string"},
        ErrorCase{"m[0s]", "1:3: parse error: duration must be greater than 0"},
        ErrorCase{"m > 5m", "1:5: parse error: unexpected duration \"5m\""},
        ErrorCase{"1 +", "1:4: parse error: unexpected end of input"},
        ErrorCase{"m )", "1:3: parse error: unexpected \")\""},
        ErrorCase{"sum by (a) m", "1:12: parse error: expected \"(\" after aggregation"},
        ErrorCase{"sum by (a) (m) by (b)", "1:16: parse error: more than one grouping clause"},
        ErrorCase{"by", "1:1: parse error: unexpected keyword \"by\""},
        ErrorCase{"a +\n  on(x) group_left", "2:19: parse error: unexpected end of input"},
        // types
        ErrorCase{"rate(m)",
                  "1:6: parse error: expected type range vector in call to function "
                  "\"rate\", got instant vector"},
        ErrorCase{"abs(m[5m])", "1:5: parse error: expected type instant vector"},
        ErrorCase{"rate(m[5m], 1)", "1:1: parse error: expected 1 argument(s) in call to \"rate\""},
        ErrorCase{"round()", "1:1: parse error: expected at least 1 argument(s) in call to"},
        ErrorCase{"hour(m, m)", "1:1: parse error: expected at most 1 argument(s) in call to"},
        ErrorCase{"clamp(m, 1)", "1:1: parse error: expected 3 argument(s) in call to \"clamp\""},
        ErrorCase{"vector(m)", "1:8: parse error: expected type scalar in call to function"},
        ErrorCase{"sum(m[5m])", "1:5: parse error: expected type instant vector in aggregation"},
        ErrorCase{"sum(m, 1)", "1:1: parse error: wrong number of arguments for aggregate"},
        ErrorCase{"m[5m] + 1", "1:7: parse error: binary expression must contain only scalar"},
        ErrorCase{"1 > 2", "1:3: parse error: comparisons between scalars must use BOOL"},
        ErrorCase{"a + bool b", "1:5: parse error: bool modifier can only be used on comparison"},
        ErrorCase{"a and 1", "1:3: parse error: set operator \"and\" not allowed"},
        ErrorCase{"1 + on(a) m", "1:3: parse error: vector matching only allowed between instant"},
        ErrorCase{"a and on(x) group_left b", "1:13: parse error: no grouping allowed for \"and\""},
        ErrorCase{"a + group_left b", "1:5: parse error: group_left needs on(...) or ignoring"},
        ErrorCase{"a * on(x) group_left(x) b",
                  "1:11: parse error: label \"x\" must not occur in ON"},
        ErrorCase{"-m[5m]", "1:1: parse error: unary expression only allowed"},
        ErrorCase{"sum(m) offset 5m", "1:8: parse error: offset modifier must be preceded"},
        ErrorCase{"(m)[5m]", "1:4: parse error: ranges only allowed for vector selectors"},
        ErrorCase{"m{__name__=\"x\"}", "1:11: parse error: metric name must not be set twice"},
        // multi-line positions count lines and columns
        ErrorCase{"sum(\n  rate(m[5m])\n) > foo(1)",
                  "3:5: parse error: unknown function with name \"foo\""}));

TEST(PromqlParserTest, RegexMatchersAreFullyAnchored) {
  auto r = parseExpr("m{a=~\"ab|cd\", b!~\"x.*\"}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& a = (*r)->matchers[0];
  EXPECT_TRUE(a.matches("ab"));
  EXPECT_TRUE(a.matches("cd"));
  EXPECT_FALSE(a.matches("abc"));
  EXPECT_FALSE(a.matches("xab"));
  const auto& b = (*r)->matchers[1];
  EXPECT_FALSE(b.matches("xyz"));
  EXPECT_TRUE(b.matches("axyz"));
  EXPECT_TRUE(b.matches(""));
}

TEST(PromqlParserTest, CaseInsensitiveRegexFlag) {
  auto r = parseExpr("m{a=~\"(?i)get\"}");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE((*r)->matchers[0].matches("GET"));
  EXPECT_FALSE((*r)->matchers[0].matches("POST"));
}

TEST(PromqlParserTest, EmptyMatcherMatchesMissingLabel) {
  auto r = parseExpr("m{a=\"\"}");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)->matchers[0].matches(""));
  EXPECT_FALSE((*r)->matchers[0].matches("x"));
}

TEST(PromqlParserTest, ParsesPrometheusDurations) {
  EXPECT_EQ(*parsePromDuration("0"), 0);
  EXPECT_EQ(*parsePromDuration("0s"), 0);
  EXPECT_EQ(*parsePromDuration("250ms"), 250);
  EXPECT_EQ(*parsePromDuration("1h30m"), 5'400'000);
  EXPECT_EQ(*parsePromDuration("1d"), 86'400'000);
  EXPECT_EQ(*parsePromDuration("2w"), 14 * 86'400'000LL);
  EXPECT_EQ(*parsePromDuration("1y"), 365 * 86'400'000LL);
  EXPECT_EQ(*parsePromDuration("1m1s1ms"), 61'001);
  for (const char* bad : {"", "5", "m", "1s1m", "1m1m", "1.5m", "-1m", "1 m", "5M"}) {
    EXPECT_FALSE(parsePromDuration(bad).ok()) << bad;
  }
}

TEST(PromqlParserTest, ForEachSelectorVisitsEverySelector) {
  auto r = parseExpr(
      "sum(rate(a[5m])) / on() group_left b{x=\"1\"} + absent(c) + topk(scalar(d), "
      "max_over_time(e[1h:]))");
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::string> names;
  forEachSelector(**r, [&](const Expr& s) { names.push_back(s.metric_name); });
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
}

}  // namespace
}  // namespace dbpulse::rules
