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
        // Prometheus runs templates with missingkey=zero: a missing label is "".
        ExpandCase{"[{{ $labels.missing }}]", 0, "[]"},
        ExpandCase{"[{{ .Labels.missing }}]", 0, "[]"},
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
        ExpandCase{"multi\n{{ $labels.job }}\nline", 0, "multi\npostgres\nline"},
        // control structures and variables
        ExpandCase{"{{ if gt $value 1.0 }}big{{ else }}small{{ end }}", 2, "big"},
        ExpandCase{"{{ if gt $value 1.0 }}big{{ else }}small{{ end }}", 0.5, "small"},
        ExpandCase{"{{ if eq $labels.job \"redis\" }}r{{ else if eq $labels.job \"postgres\" }}p"
                   "{{ else }}?{{ end }}",
                   0, "p"},
        ExpandCase{"{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}", 0,
                   "instance=db-1;job=postgres;le=0.5;"},
        ExpandCase{"{{ range $labels }}{{ if eq . \"postgres\" }}{{ break }}{{ end }}{{ . }},"
                   "{{ end }}",
                   0, "db-1,"},
        ExpandCase{"{{ range $labels }}{{ if eq . \"postgres\" }}{{ continue }}{{ end }}{{ . }},"
                   "{{ end }}",
                   0, "db-1,0.5,"},
        ExpandCase{"{{ with $labels.missing }}x{{ else }}none{{ end }}", 0, "none"},
        ExpandCase{"{{ with $labels.job }}{{ . | toUpper }}{{ end }}", 0, "POSTGRES"},
        ExpandCase{"{{ $x := 1 }}{{ $x }} {{ $x = \"b\" }}{{ $x }}", 0, "1 b"},
        ExpandCase{"{{ if $x := $labels.job }}{{ $x }}{{ end }}", 0, "postgres"},
        ExpandCase{"{{ if and (gt $value 1.0) (lt $value 3.0) }}mid{{ end }}", 2, "mid"},
        ExpandCase{"{{ or $labels.missing \"default\" }}", 0, "default"},
        ExpandCase{"{{ not true }} {{ len $labels }} {{ ne 1 2 }} {{ le 1.5 1.5 }}", 0,
                   "false 3 true true"},
        ExpandCase{"{{ print 1 2 \"a\" 3 }}|{{ println \"x\" 1 }}", 0, "1 2a3|x 1\n"},
        ExpandCase{"{{ html \"<a&b>\" }} {{ urlquery \"a b&c\" }} {{ js \"it's\" }}", 0,
                   "&lt;a&amp;b&gt; a+b%26c it\\'s"},
        ExpandCase{"{{ printf \"%d-%s-%v\" 42 \"x\" true }}", 0, "42-x-true"},
        // Prometheus's functions
        ExpandCase{"{{ humanizeTimestamp $value }}", 1609459200.5,
                   "2021-01-01 00:00:00.5 +0000 UTC"},
        ExpandCase{"{{ humanizeTimestamp 1609459200 }}", 0, "2021-01-01 00:00:00 +0000 UTC"},
        ExpandCase{"{{ reReplaceAll \"(\\\\w+)-(\\\\d)\" \"$2:$1\" $labels.instance }}", 0, "1:db"},
        ExpandCase{"{{ reReplaceAll \"a\" \"b\" \"banana\" }}", 0, "bbnbnb"},
        ExpandCase{"{{ match \"^db\" $labels.instance }} {{ match \"^x\" \"db\" }}", 0,
                   "true false"},
        ExpandCase{"{{ (args 1 \"a\").arg1 }} {{ args 1 \"a\" }}", 0, "a map[arg0:1 arg1:a]"},
        ExpandCase{"{{ safeHtml \"<b>\" }}", 0, "<b>"},
        ExpandCase{"{{ graphLink \"up == 0\" }} {{ tableLink \"up\" }}", 0,
                   "/graph?g0.expr=up+%3D%3D+0&g0.tab=0 /graph?g0.expr=up&g0.tab=1"},
        ExpandCase{"{{ pathPrefix }} {{ externalURL }}", 0, " http://dbpulse:9470"},
        ExpandCase{"{{ title \"hello world\" }}", 0, "Hello World"},
        ExpandCase{"{{ define \"who\" }}[{{ .job }}]{{ end }}{{ template \"who\" $labels }}", 0,
                   "[postgres]"},
        ExpandCase{"{{ block \"b\" $value }}<{{ . }}>{{ end }}", 2, "<2>"},
        ExpandCase{"{{ define \"n\" }}{{ . }}{{ end }}{{ template \"n\" }}", 0, "<no value>"}));

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
        ErrorCase{"{{ if gt $value 1.0 }}big", "4: unexpected EOF: missing {{end}} for {{if}}"},
        ErrorCase{"x {{ end }}", "6: unexpected {{end}}"},
        ErrorCase{"{{ else }}", "4: unexpected {{else}}"},
        ErrorCase{"{{ if true }}{{ define \"x\" }}{{ end }}{{ end }}", "17: unexpected {{define}}"},
        ErrorCase{"{{ define \"x\" }}{{ $labels }}{{ end }}", "20: undefined variable \"$labels\""},
        ErrorCase{"{{ define \"x\" }}", "4: unexpected EOF in {{define}}"},
        ErrorCase{"{{ template x }}", "13: unexpected \"x\" in template clause"},
        ErrorCase{"{{ break }}", "4: {{break}} outside {{range}}"},
        ErrorCase{"{{ $foo }}", "4: undefined variable \"$foo\""},
        ErrorCase{"{{ if true }}{{ $x := 1 }}{{ end }}{{ $x }}", "39: undefined variable \"$x\""},
        ErrorCase{"{{ $value ", "1: unclosed action"},
        ErrorCase{"{{ }}", "4: missing value for command"},
        ErrorCase{"{{ \"abc }}", "4: unterminated quoted string"},
        ErrorCase{"{{ $value 1 }}", "11: can't give argument to non-function"},
        ErrorCase{"{{ 1 | 2 }}", "8: non executable command in pipeline stage 2"},
        ErrorCase{"line one\n{{ nope }}", "2:4: function \"nope\" not defined"}));

TEST(TemplateTest, UndefinedAndRecursiveTemplatesFailAtExpansion) {
  const Labels labels;
  const TemplateData data{&labels, 0, nullptr, ""};
  auto missing = Template::parse("{{ template \"nope\" }}");
  ASSERT_TRUE(missing.ok()) << missing.status().message();
  EXPECT_EQ(missing->expand(data).status().message(), "no such template \"nope\"");
  // Go's parser accepts assigning an undeclared variable; executing it fails.
  auto assign = Template::parse("{{ $x = 1 }}");
  ASSERT_TRUE(assign.ok()) << assign.status().message();
  EXPECT_EQ(assign->expand(data).status().message(), "undefined variable: $x");
  auto loop =
      Template::parse("{{ define \"l\" }}{{ template \"l\" }}{{ end }}{{ template \"l\" }}");
  ASSERT_TRUE(loop.ok()) << loop.status().message();
  EXPECT_EQ(loop->expand(data).status().message(), "exceeded maximum template depth (100)");
}

TEST(TemplateTest, RuntimeErrorsAreReported) {
  auto t = Template::parse("{{ $labels.job | humanize }}");
  ASSERT_TRUE(t.ok());
  const Labels labels{{"job", "api"}};
  auto out = t->expand(TemplateData{&labels, 0, nullptr, ""});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("invalid syntax"), std::string::npos);
}

TEST(TemplateTest, ComparingAFloatWithAnIntIsAnErrorAsInGo) {
  auto t = Template::parse("{{ if gt $value 1 }}x{{ end }}");
  ASSERT_TRUE(t.ok());
  const Labels labels;
  auto out = t->expand(TemplateData{&labels, 2, nullptr, ""});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("incompatible types for comparison"), std::string::npos);
}

TEST(TemplateTest, QueryFirstLabelValueAndRange) {
  const Labels labels;
  TemplateData data{&labels, 0, nullptr, ""};
  std::vector<std::string> asked;
  data.query = [&](const std::string& q) -> Result<std::vector<QuerySample>> {
    asked.push_back(q);
    if (q == "bad") return invalidArgument("1:1: parse error: unexpected end of input");
    if (q == "none") return std::vector<QuerySample>{};
    return std::vector<QuerySample>{{Labels{{"instance", "b"}, {"__value__", "x"}}, 2},
                                    {Labels{{"instance", "a"}}, 1.5}};
  };
  auto expand = [&](const char* text) {
    auto t = Template::parse(text);
    EXPECT_TRUE(t.ok()) << text << ": " << t.status().message();
    auto out = t->expand(data);
    return out.ok() ? *out : "error: " + out.status().message();
  };
  EXPECT_EQ(expand("{{ query \"up\" | first | value }}"), "2");
  EXPECT_EQ(expand("{{ query \"up\" | first | label \"instance\" }}"), "b");
  EXPECT_EQ(expand("{{ (query \"up\" | first).Labels.instance }}"), "b");
  EXPECT_EQ(expand("{{ query \"up\" | first | strvalue }}"), "x");
  EXPECT_EQ(expand("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}="
                   "{{ .Value }} {{ end }}"),
            "a=1.5 b=2 ");
  EXPECT_EQ(expand("{{ with query \"none\" }}some{{ else }}none{{ end }}"), "none");
  EXPECT_EQ(expand("{{ len (query \"up\") }}"), "2");
  EXPECT_EQ(expand("{{ query \"none\" | first }}"),
            "error: error calling first: first() called on vector with no elements");
  EXPECT_EQ(expand("{{ query \"bad\" }}"),
            "error: error calling query: 1:1: parse error: unexpected end of input");
  EXPECT_EQ(asked.size(), 9u);
}

TEST(TemplateTest, RunawayOutputIsCutOff) {
  Labels labels;
  for (int i = 0; i < 10; ++i) labels.set("l" + std::to_string(i), std::string(100, 'x'));
  auto t = Template::parse(
      "{{ range $labels }}{{ range $labels }}{{ range $labels }}{{ range $labels }}"
      "{{ range $labels }}{{ . }}{{ end }}{{ end }}{{ end }}{{ end }}{{ end }}");
  ASSERT_TRUE(t.ok()) << t.status().message();
  auto out = t->expand(TemplateData{&labels, 0, nullptr, ""});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(), "template output exceeds 1 MiB");
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
