#include "rules/template.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace dbpulse::rules {
namespace {

struct ExpandCase {
  const char* text;
  double value;
  const char* want;
};

class TemplateExpandTest : public ::testing::TestWithParam<ExpandCase> {};

TEST_P(TemplateExpandTest, ExpandsLikePrometheus) {
  const auto& c = GetParam();
  const Labels labels{{"instance", "db-1"}, {"job", "postgres"}, {"le", "0.5"}};
  const Labels external{{"cluster", "eu"}};
  auto t = Template::parse(c.text);
  ASSERT_TRUE(t.ok()) << c.text << ": " << t.status().message();
  TemplateData data{&labels, c.value, &external, "http://dbpulse:9470"};
  auto out = t->expand(data);
  ASSERT_TRUE(out.ok()) << c.text << ": " << out.status().message();
  EXPECT_EQ(*out, c.want) << c.text;
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

INSTANTIATE_TEST_SUITE_P(
    Template, TemplateExpandTest,
    ::testing::Values(
        ExpandCase{"plain text", 0, "plain text"},
        ExpandCase{"{{ $labels.instance }} is down", 0, "db-1 is down"},
        ExpandCase{"{{.Labels.job}}/{{ .Value }}", 2, "postgres/2"},
        ExpandCase{"{{ $labels.missing }}", 0, "<no value>"},
        ExpandCase{"{{ index $labels \"le\" }}", 0, "0.5"},
        ExpandCase{"[{{ index $labels \"nope\" }}]", 0, "[]"},
        ExpandCase{"{{ $externalLabels.cluster }} {{ $externalURL }}", 0, "eu http://dbpulse:9470"},
        // $value prints as Go's %v of a float64
        ExpandCase{"{{ $value }}", 0.25, "0.25"}, ExpandCase{"{{ $value }}", 123456, "123456"},
        ExpandCase{"{{ $value }}", 1234567, "1.234567e+06"},
        ExpandCase{"{{ $value }}", 1e6, "1e+06"}, ExpandCase{"{{ $value }}", 0.0001, "0.0001"},
        ExpandCase{"{{ $value }}", 0.00001, "1e-05"}, ExpandCase{"{{ $value }}", -3, "-3"},
        ExpandCase{"{{ $value }}", kNaN, "NaN"}, ExpandCase{"{{ $value }}", kInf, "+Inf"},
        ExpandCase{"{{ $value }}", 0.1 + 0.2, "0.30000000000000004"},
        // functions, called and piped
        ExpandCase{"{{ $value | humanize }}", 1234, "1.234k"},
        ExpandCase{"{{ humanize $value }}", 0.001234, "1.234m"},
        ExpandCase{"{{ humanize $value }}", 0, "0"}, ExpandCase{"{{ humanize $value }}", 1e9, "1G"},
        ExpandCase{"{{ humanize $value }}", 12.5, "12.5"},
        ExpandCase{"{{ humanize $value }}", kNaN, "NaN"},
        ExpandCase{"{{ humanize1024 $value }}", 1536, "1.5ki"},
        ExpandCase{"{{ humanize1024 $value }}", 1, "1"},
        ExpandCase{"{{ $value | humanizePercentage }}", 0.1234, "12.34%"},
        ExpandCase{"{{ $value | humanizePercentage }}", 0.05, "5%"},
        ExpandCase{"{{ humanizeDuration $value }}", 90, "1m 30s"},
        ExpandCase{"{{ humanizeDuration $value }}", 3661, "1h 1m 1s"},
        ExpandCase{"{{ humanizeDuration $value }}", 2 * 86400 + 5, "2d 0h 0m 5s"},
        ExpandCase{"{{ humanizeDuration $value }}", 1.5, "1.5s"},
        ExpandCase{"{{ humanizeDuration $value }}", 0.5, "500ms"},
        ExpandCase{"{{ humanizeDuration $value }}", 0, "0s"},
        ExpandCase{"{{ humanizeDuration $value }}", -90, "-1m 30s"},
        ExpandCase{"{{ humanize \"2048\" }}", 0, "2.048k"},
        ExpandCase{"{{ printf \"%.2f\" $value }}", 3.14159, "3.14"},
        ExpandCase{"{{ $value | printf \"%.1f%%\" }}", 97.25, "97.2%"},
        ExpandCase{"{{ printf \"%s=%v\" $labels.job $value }}", 1.5, "postgres=1.5"},
        ExpandCase{"{{ printf \"%d\" $value }}", 1, "%!d(float64=1)"},
        // Width and precision over 1e6 (Go's own limit) are refused and the argument is left
        // unused (Go, for such literals, stops at %!(NOVERB) or formats a megabyte of digits).
        // Found by the fuzzer: the precision went to snprintf, which allocated gigabytes.
        ExpandCase{"{{ printf \"%.000000001732719757g|\" $value }}", 1,
                   "%!(BADPREC)|%!(EXTRA float64=1)"},
        ExpandCase{"{{ printf \"%99999999999s|\" $value }}", 1, "%!(BADWIDTH)|%!(EXTRA float64=1)"},
        ExpandCase{"{{ printf \"%.1000001f|\" $value }}", 1, "%!(BADPREC)|%!(EXTRA float64=1)"},
        ExpandCase{"{{ $labels.job | toUpper }} {{ toLower \"AbC\" }} {{ title \"db down\" }}", 0,
                   "POSTGRES abc Db Down"},
        ExpandCase{"{{ (humanize $value) }}", 2000, "2k"},
        // trim markers and comments
        ExpandCase{"a  {{- $labels.job -}}  b", 0, "apostgresb"},
        ExpandCase{"a {{/* a comment */}}b", 0, "a b"},
        ExpandCase{"multi\n{{ $labels.job }}\nline", 0, "multi\npostgres\nline"}));

struct ErrorCase {
  const char* text;
  const char* error;  // prefix
};

class TemplateRejectsTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(TemplateRejectsTest, NamesTheUnsupportedConstruct) {
  const auto& c = GetParam();
  auto t = Template::parse(c.text);
  ASSERT_FALSE(t.ok()) << c.text;
  EXPECT_EQ(t.status().message().substr(0, std::string(c.error).size()), c.error)
      << c.text << " -> " << t.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Template, TemplateRejectsTest,
    ::testing::Values(
        ErrorCase{"{{ if gt $value 1.0 }}big{{ end }}", "4: unsupported: the \"if\" action"},
        ErrorCase{"x {{ range $labels }}{{ end }}", "6: unsupported: the \"range\" action"},
        ErrorCase{"{{ query \"up\" | first | value }}", "4: unsupported: function \"query\""},
        ErrorCase{"{{ $value | humanizeTimestamp }}",
                  "13: unsupported: function \"humanizeTimestamp\""},
        ErrorCase{"{{ $foo }}", "4: undefined variable \"$foo\""},
        ErrorCase{"{{ $x := 1 }}", "4: unsupported: declaring variables"},
        ErrorCase{"{{ $value ", "1: unclosed action"},
        ErrorCase{"{{ }}", "4: missing value in action"},
        ErrorCase{"{{ \"abc }}", "4: unterminated quoted string"},
        ErrorCase{"line one\n{{ nope }}", "2:4: unsupported: function \"nope\""}));

TEST(TemplateTest, RuntimeErrorsAreReported) {
  auto t = Template::parse("{{ $labels.job | humanize }}");
  ASSERT_TRUE(t.ok());
  const Labels labels{{"job", "api"}};
  auto out = t->expand(TemplateData{&labels, 0, nullptr, ""});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("invalid syntax"), std::string::npos);
}

TEST(TemplateTest, ConstantTemplatesAreRecognised) {
  EXPECT_TRUE(Template::parse("no actions")->isConstant());
  EXPECT_FALSE(Template::parse("{{ $value }}")->isConstant());
}

// Found by the template fuzzer: a comment made a template "constant", so the rule engine
// used the text as written and the comment itself reached Alertmanager.
TEST(TemplateTest, CommentsAreNotConstantTextAndExpandToNothing) {
  for (const char* text : {"{{/* only a comment */}}", "a  {{- /* c */ -}}  b"}) {
    auto t = Template::parse(text);
    ASSERT_TRUE(t.ok()) << text;
    EXPECT_FALSE(t->isConstant()) << text;
  }
  const Labels labels;
  const TemplateData data{&labels, 0, nullptr, ""};
  EXPECT_EQ(*Template::parse("{{/* only a comment */}}")->expand(data), "");
  EXPECT_EQ(*Template::parse("a  {{- /* c */ -}}  b")->expand(data), "ab");
}

}  // namespace
}  // namespace dbpulse::rules
