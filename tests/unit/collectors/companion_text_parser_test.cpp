// The Prometheus text parser of the companion collector, on well-formed and hostile input,
// and the mapping of its result into dbpulse samples.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "collectors/companion/companion_collector.h"
#include "collectors/companion/text_parser.h"

namespace dbpulse::collectors {
namespace {

const ExpositionSample* find(const ParsedExposition& p, const std::string& name,
                             const Labels& labels = {}) {
  for (const auto& s : p.samples) {
    if (s.name == name && s.labels == labels) return &s;
  }
  return nullptr;
}

// What prom-client serves for the chat server (trimmed).
const char* const kChatExposition = R"(# HELP http_requests_total Total HTTP requests
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/messages",status_code="200"} 1027
http_requests_total{method="POST",route="/api/messages",status_code="500"} 3
# HELP http_request_duration_seconds Duration of HTTP requests in seconds
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",method="GET",route="/api/messages"} 900
http_request_duration_seconds_bucket{le="0.5",method="GET",route="/api/messages"} 1000
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/messages"} 1027
http_request_duration_seconds_sum{method="GET",route="/api/messages"} 61.5
http_request_duration_seconds_count{method="GET",route="/api/messages"} 1027
# HELP websocket_active_connections Open websocket connections
# TYPE websocket_active_connections gauge
websocket_active_connections 42
# HELP nodejs_eventloop_lag_seconds Lag of event loop in seconds.
# TYPE nodejs_eventloop_lag_seconds gauge
nodejs_eventloop_lag_seconds 0.004 1700000000000
# HELP rpc_latency_seconds A summary.
# TYPE rpc_latency_seconds summary
rpc_latency_seconds{quantile="0.5"} 0.01
rpc_latency_seconds{quantile="0.99"} 0.2
rpc_latency_seconds_sum 12
rpc_latency_seconds_count 300
)";

TEST(TextParserTest, ParsesTheChatServersExposition) {
  const ParsedExposition p = parseTextExposition(kChatExposition);
  EXPECT_EQ(p.rejected_lines, 0u);
  EXPECT_EQ(p.duplicates, 0u);
  EXPECT_FALSE(p.truncated);
  EXPECT_TRUE(p.errors.empty());
  ASSERT_EQ(p.samples.size(), 13u);
  ASSERT_EQ(p.families.size(), 5u);

  const auto* c = find(p, "http_requests_total",
                       {{"method", "POST"}, {"route", "/api/messages"}, {"status_code", "500"}});
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->value, 3);
  ASSERT_NE(p.familyOf(*c), nullptr);
  EXPECT_EQ(p.familyOf(*c)->type, ExpositionType::kCounter);
  EXPECT_EQ(p.familyOf(*c)->help, "Total HTTP requests");

  const auto* b = find(p, "http_request_duration_seconds_bucket",
                       {{"le", "+Inf"}, {"method", "GET"}, {"route", "/api/messages"}});
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->value, 1027);
  ASSERT_NE(p.familyOf(*b), nullptr);
  EXPECT_EQ(p.familyOf(*b)->name, "http_request_duration_seconds");
  EXPECT_EQ(p.familyOf(*b)->type, ExpositionType::kHistogram);
  const auto* sum =
      find(p, "http_request_duration_seconds_sum", {{"method", "GET"}, {"route", "/api/messages"}});
  ASSERT_NE(sum, nullptr);
  EXPECT_EQ(p.familyOf(*sum)->name, "http_request_duration_seconds");

  const auto* lag = find(p, "nodejs_eventloop_lag_seconds");
  ASSERT_NE(lag, nullptr);
  EXPECT_EQ(lag->timestamp_ms, 1700000000000);
  const auto* q = find(p, "rpc_latency_seconds", {{"quantile", "0.99"}});
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(p.familyOf(*q)->type, ExpositionType::kSummary);
  EXPECT_EQ(p.familyOf(*find(p, "rpc_latency_seconds_count"))->name, "rpc_latency_seconds");
}

struct ValueCase {
  const char* text;
  std::optional<double> value;  // nullopt: the line is rejected; NaN compared by isnan
};

TEST(TextParserTest, ValuesInGoFloatSyntax) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const ValueCase cases[] = {
      {"1", 1},
      {"-1.5", -1.5},
      {"+2", 2},
      {"1e3", 1000},
      {"1.5E-3", 0.0015},
      {".5", 0.5},
      {"5.", 5},
      {"NaN", nan},
      {"nan", nan},
      {"+Inf", inf},
      {"-Inf", -inf},
      {"Inf", inf},
      {"inf", inf},
      {"+infinity", inf},
      {"1e999", inf},
      {"-1e999", -inf},
      {"1e-999", 0},
      {"", std::nullopt},
      {"abc", std::nullopt},
      {"1.2.3", std::nullopt},
      {"--1", std::nullopt},
      {"+-1", std::nullopt},
      {"0x10", std::nullopt},
      {"1_000", std::nullopt},
      {"Infx", std::nullopt},
      {"+", std::nullopt},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string("value '") + c.text + "'");
    const ParsedExposition p = parseTextExposition(std::string("m ") + c.text + "\n");
    if (!c.value) {
      EXPECT_EQ(p.samples.size(), 0u);
      EXPECT_EQ(p.rejected_lines, 1u);
      continue;
    }
    ASSERT_EQ(p.samples.size(), 1u) << (p.errors.empty() ? "" : p.errors[0].message);
    if (std::isnan(*c.value)) {
      EXPECT_TRUE(std::isnan(p.samples[0].value));
    } else {
      EXPECT_EQ(p.samples[0].value, *c.value);
    }
  }
}

struct LineCase {
  const char* name;
  std::string text;
  size_t samples;
  size_t rejected;
};

TEST(TextParserTest, HostileAndOddLines) {
  const LineCase cases[] = {
      {"empty input", "", 0, 0},
      {"blank lines and comments", "\n\n# just a comment\n   \n#\n", 0, 0},
      {"no newline at end of file", "m 1", 1, 0},
      {"CRLF line ends", "m 1\r\nn 2\r\n", 2, 0},
      {"leading blanks", "   \t m 1\n", 1, 0},
      {"tabs between tokens", "m\t{a=\"b\"}\t1\t123\n", 1, 0},
      {"blank inside label set", "m{ a = \"b\" , c=\"d\" } 1\n", 1, 0},
      {"trailing comma in labels", "m{a=\"b\",} 1\n", 1, 0},
      {"empty label set", "m{} 1\n", 1, 0},
      {"colon in metric name", "job:rate5m 1\n", 1, 0},
      {"OpenMetrics EOF", "m 1\n# EOF\n", 1, 0},
      {"negative timestamp", "m 1 -5\n", 1, 0},
      {"name starting with a digit", "1m 1\n", 0, 1},
      {"invalid character in name", "m-x 1\n", 0, 1},
      {"no value", "m\n", 0, 1},
      {"no value after labels", "m{a=\"b\"}\n", 0, 1},
      {"garbage after timestamp", "m 1 2 3\n", 0, 1},
      {"fractional timestamp", "m 1 2.5\n", 0, 1},
      {"unterminated label set", "m{a=\"b\" 1\n", 0, 1},
      {"unterminated label value", "m{a=\"b} 1\n", 0, 1},
      {"label without quotes", "m{a=b} 1\n", 0, 1},
      {"label without =", "m{a\"b\"} 1\n", 0, 1},
      {"label name starting with digit", "m{1a=\"b\"} 1\n", 0, 1},
      {"reserved label name", "m{__name__=\"x\"} 1\n", 0, 1},
      {"label given twice", "m{a=\"1\",a=\"2\"} 1\n", 0, 1},
      {"bad escape in label value", "m{a=\"x\\t\"} 1\n", 0, 1},
      {"backslash at end of value", "m{a=\"x\\", 0, 1},
      {"invalid UTF-8 in label value", "m{a=\"\xff\xfe\"} 1\n", 0, 1},
      {"overlong UTF-8 in label value", "m{a=\"\xc0\xaf\"} 1\n", 0, 1},
      {"truncated UTF-8 in label value", "m{a=\"\xe2\x82\"} 1\n", 0, 1},
      {"surrogate in label value", "m{a=\"\xed\xa0\x80\"} 1\n", 0, 1},
      {"good UTF-8 in label value", "m{a=\"\xe2\x82\xac \xf0\x9f\x98\x80\"} 1\n", 1, 0},
      {"NUL in label value", std::string("m{a=\"x\0y\"} 1\n", 13), 1, 0},
      {"NUL in the middle of a line", std::string("m 1\0 2\n", 7), 0, 1},
      {"TYPE with unknown type", "# TYPE m bogus\nm 1\n", 1, 1},
      {"TYPE with invalid name", "# TYPE 1m counter\n", 0, 1},
      {"TYPE twice", "# TYPE m counter\n# TYPE m gauge\nm 1\n", 1, 1},
      {"HELP twice", "# HELP m a\n# HELP m b\nm 1\n", 1, 1},
      {"HELP with invalid UTF-8", "# HELP m \xff\n", 0, 1},
      {"HELP without text", "# HELP m\nm 1\n", 1, 0},
      {"one bad line among good ones", "a 1\nb{ 2\nc 3\n", 2, 1},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const ParsedExposition p = parseTextExposition(c.text);
    EXPECT_EQ(p.samples.size(), c.samples);
    EXPECT_EQ(p.rejected_lines, c.rejected);
    EXPECT_EQ(p.errors.size(), c.rejected) << "every rejected line is described";
  }
}

TEST(TextParserTest, EscapesInLabelValuesAndHelp) {
  const ParsedExposition p = parseTextExposition(
      "# HELP m Line one\\nline two with a \\\\ backslash and a \\q kept\n"
      "m{path=\"C:\\\\tmp\",quote=\"say \\\"hi\\\"\",nl=\"a\\nb\"} 1\n");
  ASSERT_EQ(p.samples.size(), 1u);
  const Labels& l = p.samples[0].labels;
  EXPECT_EQ(l.get("path"), "C:\\tmp");
  EXPECT_EQ(l.get("quote"), "say \"hi\"");
  EXPECT_EQ(l.get("nl"), "a\nb");
  ASSERT_EQ(p.families.size(), 1u);
  EXPECT_EQ(p.families[0].help, "Line one\nline two with a \\ backslash and a \\q kept");
}

TEST(TextParserTest, EmptyLabelValuesAreDroppedSoTheyCannotForgeDuplicates) {
  const ParsedExposition p = parseTextExposition("m{a=\"\"} 1\nm 2\nm{a=\"x\"} 3\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_TRUE(p.samples[0].labels.empty());
  EXPECT_EQ(p.samples[0].value, 1);
  EXPECT_EQ(p.duplicates, 1u);
}

TEST(TextParserTest, DuplicateSeriesKeepTheFirstSample) {
  const ParsedExposition p = parseTextExposition(
      "m{a=\"1\",b=\"2\"} 1\n"
      "m{b=\"2\",a=\"1\"} 2\n"  // same series, labels in another order
      "m{a=\"1\",b=\"3\"} 3\n");
  ASSERT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(find(p, "m", {{"a", "1"}, {"b", "2"}})->value, 1);
  EXPECT_EQ(p.duplicates, 1u);
  EXPECT_EQ(p.rejected_lines, 0u);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].line, 2u);
}

TEST(TextParserTest, HugeLinesAreRejectedWithoutStoppingTheParse) {
  std::string huge = "m{a=\"" + std::string(200'000, 'x') + "\"} 1\n";  // over both caps
  const ParsedExposition p = parseTextExposition("before 1\n" + huge + "after 2\n");
  EXPECT_EQ(p.samples.size(), 2u);
  EXPECT_EQ(p.rejected_lines, 1u);
  ASSERT_EQ(p.errors.size(), 1u);
  EXPECT_EQ(p.errors[0].line, 2u);
  EXPECT_LT(p.errors[0].message.size(), 200u);  // messages never echo the whole line

  TextParserOptions roomy;
  roomy.max_line_bytes = 1 << 20;
  roomy.max_label_value_bytes = 1 << 20;
  EXPECT_EQ(parseTextExposition(huge, roomy).samples.size(), 1u);
}

TEST(TextParserTest, SampleAndLabelLimits) {
  std::string many;
  for (int i = 0; i < 100; ++i) many += "m{i=\"" + std::to_string(i) + "\"} 1\n";
  TextParserOptions small;
  small.max_samples = 10;
  small.max_errors_kept = 3;
  const ParsedExposition p = parseTextExposition(many, small);
  EXPECT_EQ(p.samples.size(), 10u);
  EXPECT_TRUE(p.truncated);

  std::string wide = "m{";
  for (int i = 0; i < 65; ++i) wide += "l" + std::to_string(i) + "=\"v\",";
  wide += "} 1\n";
  const ParsedExposition w = parseTextExposition(wide);
  EXPECT_EQ(w.samples.size(), 0u);
  EXPECT_EQ(w.rejected_lines, 1u);

  std::string bad;
  for (int i = 0; i < 50; ++i) bad += "bad{\n";
  const ParsedExposition b = parseTextExposition(bad, small);
  EXPECT_EQ(b.rejected_lines, 50u);
  EXPECT_EQ(b.errors.size(), 3u);  // described: only the first few
}

// Memory is bounded by the options, not by what the chat server sends.
TEST(TextParserTest, LabelBytesAreCapped) {
  TextParserOptions o;
  o.max_label_value_bytes = 100;
  o.max_label_bytes = 10'000;
  const std::string ok_value(100, 'a');
  const std::string long_value(101, 'b');
  const ParsedExposition one =
      parseTextExposition("m{v=\"" + ok_value + "\"} 1\nm{v=\"" + long_value + "\"} 2\n", o);
  ASSERT_EQ(one.samples.size(), 1u);
  EXPECT_EQ(one.rejected_lines, 1u);
  ASSERT_FALSE(one.errors.empty());
  EXPECT_NE(one.errors[0].message.find("longer than 100 bytes"), std::string::npos);

  std::string many;
  for (int i = 0; i < 1000; ++i)
    many += "m{i=\"" + std::to_string(i) + "\",v=\"" + ok_value + "\"} 1\n";
  const ParsedExposition capped = parseTextExposition(many, o);
  EXPECT_TRUE(capped.truncated);
  size_t bytes = 0;
  for (const auto& smp : capped.samples) {
    bytes += smp.name.size();
    for (const auto& l : smp.labels.items()) bytes += l.name.size() + l.value.size();
  }
  EXPECT_GT(capped.samples.size(), 50u);
  EXPECT_LE(bytes, o.max_label_bytes);
}

TEST(TextParserTest, SamplesOfUndeclaredFamiliesHaveNoFamily) {
  const ParsedExposition p = parseTextExposition(
      "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nother_bucket 2\n"
      "# TYPE g gauge\ng_sum 3\n");
  ASSERT_EQ(p.samples.size(), 3u);
  EXPECT_NE(p.familyOf(p.samples[0]), nullptr);
  EXPECT_EQ(p.familyOf(p.samples[1]), nullptr);
  EXPECT_EQ(p.familyOf(p.samples[2]), nullptr);  // a gauge has no _sum piece
}

TEST(TextParserTest, NamesValidation) {
  EXPECT_TRUE(isValidMetricName("a:b_c9"));
  EXPECT_TRUE(isValidMetricName("_x"));
  EXPECT_FALSE(isValidMetricName(""));
  EXPECT_FALSE(isValidMetricName("9a"));
  EXPECT_FALSE(isValidMetricName("a.b"));
  EXPECT_TRUE(isValidLabelName("le"));
  EXPECT_FALSE(isValidLabelName("a:b"));
  EXPECT_FALSE(isValidLabelName(""));
}

// ---- into samples --------------------------------------------------------------------

TEST(ChatSeriesTest, StoredFlatWithTypesAndExportFlag) {
  const ParsedExposition p = parseTextExposition(kChatExposition);
  for (bool reexport : {false, true}) {
    SCOPED_TRACE(reexport ? "reexport" : "no reexport");
    SampleBatch b;
    const ChatSeriesCounts counts = chatSeriesToSamples(p, reexport, b);
    EXPECT_EQ(counts.stored, 13u);
    EXPECT_EQ(counts.reserved, 0u);
    const auto& f = b.families();
    EXPECT_EQ(f.at("http_requests_total").type, MetricType::kCounter);
    EXPECT_EQ(f.at("websocket_active_connections").type, MetricType::kGauge);
    EXPECT_EQ(f.at("http_request_duration_seconds_bucket").type, MetricType::kUntyped);
    EXPECT_EQ(f.at("http_request_duration_seconds_sum").type, MetricType::kUntyped);
    EXPECT_EQ(f.at("http_request_duration_seconds_count").type, MetricType::kUntyped);
    EXPECT_EQ(f.at("rpc_latency_seconds").type, MetricType::kUntyped);
    EXPECT_EQ(f.at("http_request_duration_seconds_bucket").help,
              "Duration of HTTP requests in seconds");
    for (const auto& [name, info] : f) EXPECT_EQ(info.exported, reexport) << name;
  }
}

TEST(ChatSeriesTest, NamesDbpulseOwnsAreNeverTaken) {
  const ParsedExposition p = parseTextExposition(
      "dbpulse_companion_up 0\npg_up 0\nredis_up 0\nALERTS{alertname=\"x\"} 1\n"
      "ALERTS_FOR_STATE 1\ndbpulse_leader 1\nup 1\npg_up_total 1\n");
  SampleBatch b;
  const ChatSeriesCounts counts = chatSeriesToSamples(p, true, b);
  EXPECT_EQ(counts.reserved, 6u);
  EXPECT_EQ(counts.stored, 2u);
  ASSERT_EQ(b.samples().size(), 2u);
  EXPECT_EQ(b.samples()[0].name, "up");
  EXPECT_EQ(b.samples()[1].name, "pg_up_total");
}

}  // namespace
}  // namespace dbpulse::collectors
