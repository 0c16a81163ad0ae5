// The companion collector against a small in-test HTTP server playing the chat server
// (ChatServerStub): in-process through CompanionCollector + SampleStore (the chat server's
// histogram is queryable from the store but not exported), and through the dbpulse binary's
// /metrics (reexport off and on).

#include "collectors/companion/companion_collector.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agent/core/sample_store.h"
#include "collectors/catalog.h"
#include "integration/chat_server_stub.h"
#include "integration/harness/harness.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using collectors::CompanionCollector;
using collectors::CompanionCollectorOptions;

constexpr auto kStartup = 15s;
constexpr auto kSeries = 15s;

// What prom-client serves for the chat server (DESIGN.md's names).
const char* const kChatMetrics = R"(# HELP http_requests_total Total number of HTTP requests
# TYPE http_requests_total counter
http_requests_total{method="GET",route="/api/messages",status_code="200"} 950
http_requests_total{method="GET",route="/api/messages",status_code="503"} 50
# HELP http_request_duration_seconds Duration of HTTP requests in seconds
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1",method="GET",route="/api/messages"} 900
http_request_duration_seconds_bucket{le="0.5",method="GET",route="/api/messages"} 1000
http_request_duration_seconds_bucket{le="1",method="GET",route="/api/messages"} 1020
http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/messages"} 1027
http_request_duration_seconds_sum{method="GET",route="/api/messages"} 61.5
http_request_duration_seconds_count{method="GET",route="/api/messages"} 1027
# HELP websocket_active_connections Number of open websocket connections
# TYPE websocket_active_connections gauge
websocket_active_connections 42
# HELP message_delivery_time_ms Message delivery time in milliseconds
# TYPE message_delivery_time_ms histogram
message_delivery_time_ms_bucket{le="10"} 5
message_delivery_time_ms_bucket{le="+Inf"} 6
message_delivery_time_ms_sum 70
message_delivery_time_ms_count 6
# HELP messages_sent_total Messages sent
# TYPE messages_sent_total counter
messages_sent_total{channel_type="direct"} 120
# HELP cache_hits_total Application cache hits
# TYPE cache_hits_total counter
cache_hits_total 300
# HELP cache_misses_total Application cache misses
# TYPE cache_misses_total counter
cache_misses_total 100
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 83558400
# HELP nodejs_eventloop_lag_seconds Lag of event loop in seconds.
# TYPE nodejs_eventloop_lag_seconds gauge
nodejs_eventloop_lag_seconds 0.004 1700000000000
# HELP nodejs_gc_duration_seconds A summary.
# TYPE nodejs_gc_duration_seconds summary
nodejs_gc_duration_seconds{quantile="0.5"} NaN
nodejs_gc_duration_seconds_sum 0
nodejs_gc_duration_seconds_count 0
)";

void serveChat(ChatServerStub& stub) {
  stub.set("/health", {200, "application/json", "{\"status\":\"ok\"}", {}});
  stub.set("/metrics", {200, "text/plain; version=0.0.4; charset=utf-8", kChatMetrics, {}});
}

CompanionCollectorOptions optionsFor(const ChatServerStub& stub) {
  CompanionCollectorOptions o;
  o.health_url = stub.url("/health");
  o.metrics_url = stub.url("/metrics");
  o.timeout = 2000ms;
  return o;
}

collectors::CollectContext contextFor(std::chrono::milliseconds timeout = 3000ms) {
  return collectors::CollectContext{
      std::chrono::system_clock::now(), std::chrono::steady_clock::now() + timeout, {}};
}

std::optional<double> batchValue(const SampleBatch& b, const std::string& name,
                                 const Labels& labels = {}) {
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

// The latest stored value of one series, exported or not.
std::optional<double> stored(const SampleStore& store, const std::string& name,
                             const Labels& labels) {
  auto points = store.history(name, labels, 0);
  if (points.empty()) return std::nullopt;
  return points.back().value;
}

// histogram_quantile over cumulative (le, count) buckets, as PromQL computes it.
double histogramQuantile(double q, std::vector<std::pair<double, double>> buckets) {
  std::sort(buckets.begin(), buckets.end());
  const double rank = q * buckets.back().second;
  double lower = 0, lower_count = 0;
  for (const auto& [le, count] : buckets) {
    if (count >= rank) {
      if (std::isinf(le)) return lower;
      return lower + (le - lower) * (rank - lower_count) / (count - lower_count);
    }
    lower = le;
    lower_count = count;
  }
  return std::nan("");
}

// ---- in-process ----------------------------------------------------------------------

TEST(CompanionCollectorTest, HistogramIsInTheStoreForRulesButNotExported) {
  ChatServerStub stub;
  serveChat(stub);
  CompanionCollector collector(optionsFor(stub));
  SampleBatch batch;
  const Status s = collector.collect(contextFor(), batch);
  ASSERT_TRUE(s.ok()) << s.toString();
  SystemClock clock;
  SampleStore store(clock);
  store.write("companion", batch, 60s);

  // "p95 of http_request_duration_seconds": every bucket is there to compute it.
  std::vector<std::pair<double, double>> buckets;
  for (const char* le : {"0.1", "0.5", "1", "+Inf"}) {
    auto v = stored(store, "http_request_duration_seconds_bucket",
                    Labels{{"le", le}, {"method", "GET"}, {"route", "/api/messages"}});
    ASSERT_TRUE(v) << "bucket le=" << le << " missing from the store";
    buckets.emplace_back(std::string(le) == "+Inf" ? INFINITY : std::stod(le), *v);
  }
  EXPECT_NEAR(histogramQuantile(0.95, buckets), 0.40260, 1e-4);
  EXPECT_EQ(stored(store, "http_request_duration_seconds_count",
                   Labels{{"method", "GET"}, {"route", "/api/messages"}}),
            1027);
  // "HTTP error ratio": 5xx share of http_requests_total.
  const auto ok =
      stored(store, "http_requests_total",
             Labels{{"method", "GET"}, {"route", "/api/messages"}, {"status_code", "200"}});
  const auto err =
      stored(store, "http_requests_total",
             Labels{{"method", "GET"}, {"route", "/api/messages"}, {"status_code", "503"}});
  ASSERT_TRUE(ok && err);
  EXPECT_DOUBLE_EQ(*err / (*ok + *err), 0.05);
  EXPECT_EQ(stored(store, "websocket_active_connections", {}), 42);
  EXPECT_EQ(stored(store, "message_delivery_time_ms_bucket", Labels{{"le", "10"}}), 5);
  auto gc = stored(store, "nodejs_gc_duration_seconds", Labels{{"quantile", "0.5"}});
  ASSERT_TRUE(gc);
  EXPECT_TRUE(std::isnan(*gc));

  // Not on /metrics: only dbpulse's own companion series are exported.
  auto snap = store.snapshot();
  for (const auto& family : snap->families) {
    EXPECT_EQ(family.name.rfind("dbpulse_companion_", 0), 0u) << family.name << " is exported";
  }
  ASSERT_NE(snap->family("dbpulse_companion_up"), nullptr);
  EXPECT_EQ(snap->family("dbpulse_companion_up")->series.at(0).value, 1);
  EXPECT_EQ(batchValue(batch, "dbpulse_companion_health_status_code"), 200);
  EXPECT_GT(*batchValue(batch, "dbpulse_companion_health_latency_seconds"), 0);
  EXPECT_EQ(batchValue(batch, "dbpulse_companion_metrics_up"), 1);
  EXPECT_EQ(batchValue(batch, "dbpulse_companion_scrape_samples"), 21);
  EXPECT_EQ(
      batchValue(batch, "dbpulse_companion_scrape_rejected_samples", Labels{{"reason", "invalid"}}),
      0);
  EXPECT_GT(store.seriesCount(), snap->seriesCount() + 20);
}

TEST(CompanionCollectorTest, ReusesOneConnectionAcrossRequestsAndRuns) {
  ChatServerStub stub;
  serveChat(stub);
  CompanionCollector collector(optionsFor(stub));
  for (int i = 0; i < 5; ++i) {
    SampleBatch b;
    const Status s = collector.collect(contextFor(), b);
    ASSERT_TRUE(s.ok()) << "run " << i << ": " << s.toString();
  }
  EXPECT_EQ(stub.requests("/health"), 5);
  EXPECT_EQ(stub.requests("/metrics"), 5);
  EXPECT_EQ(stub.connectionsAccepted(), 1);
  EXPECT_EQ(collector.connectionsOpened(), 1u);
}

TEST(CompanionCollectorTest, UnhealthyAnswerIsUpZeroWithItsStatusCode) {
  ChatServerStub stub;
  serveChat(stub);
  stub.set("/health", {503, "application/json", "{\"status\":\"unavailable\"}", {}});
  CompanionCollector collector(optionsFor(stub));
  SampleBatch b;
  const Status s = collector.collect(contextFor(), b);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("answered 503"), std::string::npos) << s.toString();
  EXPECT_EQ(batchValue(b, "dbpulse_companion_up"), 0);
  EXPECT_EQ(batchValue(b, "dbpulse_companion_health_status_code"), 503);
  // Its metrics are still scraped.
  EXPECT_EQ(batchValue(b, "dbpulse_companion_metrics_up"), 1);
  EXPECT_EQ(batchValue(b, "websocket_active_connections"), 42);
}

// One answer that is not HTTP at all is the chat server's failure of the moment, not a
// wrong URL: it used to switch the collector off for 5 minutes as invalid_url.
TEST(CompanionCollectorTest, NonHttpAnswerIsUnavailableNotAnInvalidUrl) {
  ChatServerStub stub;
  serveChat(stub);
  stub.setRaw("/health", "SSH-2.0-OpenSSH_9.2\r\n");
  CompanionCollector collector(optionsFor(stub));
  SampleBatch b;
  const Status s = collector.collect(contextFor(), b);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.toString();
  EXPECT_EQ(s.message().find("invalid_url"), std::string::npos) << s.toString();
  EXPECT_NE(s.message().find("not HTTP"), std::string::npos) << s.toString();
  EXPECT_EQ(batchValue(b, "dbpulse_companion_up"), 0);

  serveChat(stub);  // the next answer is fine again
  SampleBatch again;
  EXPECT_TRUE(collector.collect(contextFor(), again).ok());
  EXPECT_EQ(batchValue(again, "dbpulse_companion_up"), 1);
}

TEST(CompanionCollectorTest, MalformedUrlIsStillAConfigurationError) {
  CompanionCollectorOptions o;
  o.health_url = "gopher://127.0.0.1:1/health";
  CompanionCollector collector(o);
  SampleBatch b;
  const Status s = collector.collect(contextFor(), b);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.toString();
  EXPECT_NE(s.message().find("invalid_url"), std::string::npos) << s.toString();
}

TEST(CompanionCollectorTest, UnreachableChatServerIsUpZeroAndSaysWhy) {
  int port = 0;
  {
    ChatServerStub gone;
    port = gone.port();
  }
  CompanionCollectorOptions o;
  o.health_url = "http://127.0.0.1:" + std::to_string(port) + "/health";
  o.metrics_url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  CompanionCollector collector(o);
  SampleBatch b;
  const Status s = collector.collect(contextFor(), b);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.toString();
  EXPECT_NE(s.message().find("connect"), std::string::npos) << s.toString();
  EXPECT_EQ(batchValue(b, "dbpulse_companion_up"), 0);
  EXPECT_EQ(batchValue(b, "dbpulse_companion_health_status_code"), 0);
  EXPECT_EQ(batchValue(b, "dbpulse_companion_metrics_up"), 0);
  EXPECT_FALSE(batchValue(b, "dbpulse_companion_health_latency_seconds"));
}

TEST(CompanionCollectorTest, SlowEndpointIsCutAtTheTimeout) {
  ChatServerStub stub;
  serveChat(stub);
  stub.set("/metrics", {200, "text/plain", kChatMetrics, 3000ms});
  CompanionCollectorOptions o = optionsFor(stub);
  o.timeout = 300ms;
  CompanionCollector collector(o);
  SampleBatch b;
  const auto t0 = std::chrono::steady_clock::now();
  const Status s = collector.collect(contextFor(), b);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.toString();
  EXPECT_EQ(batchValue(b, "dbpulse_companion_up"), 1);  // health answered in time
  EXPECT_EQ(batchValue(b, "dbpulse_companion_metrics_up"), 0);
}

TEST(CompanionCollectorTest, OversizedResponseIsRefusedAtTheCap) {
  ChatServerStub stub;
  serveChat(stub);
  std::string big;
  while (big.size() < (1u << 20))
    big += "filler_metric{i=\"" + std::to_string(big.size()) + "\"} 1\n";
  stub.set("/metrics", {200, "text/plain", big, {}});
  CompanionCollectorOptions o = optionsFor(stub);
  o.max_body_bytes = 64 * 1024;
  CompanionCollector collector(o);
  SampleBatch b;
  const Status s = collector.collect(contextFor(), b);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("larger than 65536 bytes"), std::string::npos) << s.toString();
  EXPECT_FALSE(batchValue(b, "filler_metric", Labels{{"i", "0"}}));
  EXPECT_EQ(batchValue(b, "dbpulse_companion_metrics_up"), 0);

  // The next run, with a normal exposition, works on the same collector.
  serveChat(stub);
  SampleBatch again;
  EXPECT_TRUE(collector.collect(contextFor(), again).ok());
  EXPECT_EQ(batchValue(again, "websocket_active_connections"), 42);
}

TEST(CompanionCollectorTest, HostileExpositionIsCountedNotFatal) {
  ChatServerStub stub;
  serveChat(stub);
  stub.set("/metrics", {200,
                        "text/plain",
                        "good_total 1\n"
                        "bad{ 2\n"
                        "m{a=\"\\t\"} 3\n"
                        "good_total 4\n"
                        "dbpulse_companion_up 0\n"
                        "redis_up 0\n"
                        "gauge_x{a=\"b\"} +Inf",
                        {}});
  CompanionCollectorOptions o = optionsFor(stub);
  o.reexport = true;
  CompanionCollector collector(o);
  SampleBatch b;
  const Status s = collector.collect(contextFor(), b);
  ASSERT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(batchValue(b, "good_total"), 1);
  EXPECT_TRUE(std::isinf(*batchValue(b, "gauge_x", Labels{{"a", "b"}})));
  EXPECT_FALSE(batchValue(b, "redis_up"));
  EXPECT_EQ(batchValue(b, "dbpulse_companion_up"), 1);  // ours, not the chat server's 0
  EXPECT_EQ(batchValue(b, "dbpulse_companion_scrape_samples"), 2);
  const auto rejected = [&](const char* reason) {
    return batchValue(b, "dbpulse_companion_scrape_rejected_samples", Labels{{"reason", reason}});
  };
  EXPECT_EQ(rejected("invalid"), 2);
  EXPECT_EQ(rejected("duplicate"), 1);
  EXPECT_EQ(rejected("reserved_name"), 2);
}

// ---- through the binary --------------------------------------------------------------

std::string configFor(const DbpulseProcess& agent, const ChatServerStub& stub, bool reexport) {
  std::string c = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                  agent.stateDir().string() + "\"\nlog_format = \"text\"\n\n[companion]\n" +
                  "health_url = \"" + stub.url("/health") + "\"\nmetrics_url = \"" +
                  stub.url("/metrics") + "\"\nreexport = " + (reexport ? "true" : "false") + "\n";
  for (const auto& entry : collectors::catalog()) {
    if (entry.name == "companion") {
      c += "[collectors.companion]\ninterval = \"300ms\"\ntimeout = \"250ms\"\n";
    } else {
      c += "[collectors." + entry.name + "]\nenabled = false\n";
    }
  }
  return c;
}

const LabelMap kBucket05 = {{"le", "0.5"}, {"method", "GET"}, {"route", "/api/messages"}};

// The resident memory of a process, from /proc (0 when unknown).
double residentBytes(pid_t pid) {
  const std::string status = readFile("/proc/" + std::to_string(pid) + "/status");
  const size_t at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::stod(status.substr(at + 6)) * 1024;
}

// A hostile chat server inside the body cap (~3.9 MB: 4,500 series with 850-byte label
// values, where the agent once went to 88 MB): the agent keeps what its caps allow and its
// memory stays far inside the Kubernetes manifest's 64Mi limit, scrape after scrape.
TEST(CompanionCollectorBinaryTest, HostileExpositionKeepsMemoryBoundedByTheCaps) {
  std::string body = "# TYPE chat_big gauge\n";
  for (int i = 0; i < 4500; ++i) {
    body += "chat_big{id=\"" + std::to_string(i) + "\",blob=\"" + std::string(850, 'x') + "\"} " +
            std::to_string(i) + "\n";
  }
  ChatServerStub stub;
  serveChat(stub);
  stub.set("/metrics", {200, "text/plain; version=0.0.4", body, {}});
  DbpulseProcess agent;
  agent.start(configFor(agent, stub, false));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_companion_scrape_truncated") == 1.0 &&
               sampleValue(t, "dbpulse_companion_scrape_samples").value_or(0) > 500;
      },
      kSeries, "a truncated scrape with the series the label-byte cap allows"));
  const int first = stub.requests("/metrics");
  double peak = 0;
  ASSERT_TRUE(pollUntil(
      [&] {
        peak = std::max(peak, residentBytes(agent.process().pid()));
        return stub.requests("/metrics") >= first + 20;
      },
      60s))
      << "20 more scrapes";
  RecordProperty("peak_rss_mib", std::to_string(peak / (1024 * 1024)));
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // (A sanitizer build's RSS is mostly its shadow memory: the bound holds for real builds.)
  EXPECT_LT(peak, 48.0 * 1024 * 1024) << "peak RSS " << peak / (1024 * 1024) << " MiB";
#endif
}

TEST(CompanionCollectorBinaryTest, ChatSeriesStayOffMetricsByDefault) {
  ChatServerStub stub;
  serveChat(stub);
  DbpulseProcess agent;
  agent.start(configFor(agent, stub, false));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  std::string scrape;
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_companion_up") == 1.0 &&
               sampleValue(t, "dbpulse_companion_scrape_samples") == 21.0 &&
               sampleValue(t, "dbpulse_companion_health_status_code") == 200.0;
      },
      kSeries, "dbpulse_companion_up 1 with 21 chat series scraped", &scrape));
  EXPECT_FALSE(sampleValue(scrape, "http_request_duration_seconds_bucket", kBucket05)) << scrape;
  EXPECT_TRUE(findSamples(scrape, "http_requests_total").empty());
  EXPECT_TRUE(findSamples(scrape, "websocket_active_connections").empty());
  EXPECT_GE(stub.requests("/metrics"), 1);

  if (!requirePromtool()) return;
  RunOptions stdin_scrape;
  stdin_scrape.stdin_text = scrape;
  const CommandResult lint =
      runCommand({std::string(kPromtool), "check", "metrics"}, 30s, stdin_scrape);
  EXPECT_EQ(lint.exit_code, 0) << lint.describe();
}

TEST(CompanionCollectorBinaryTest, ReexportPutsChatSeriesOnMetrics) {
  ChatServerStub stub;
  serveChat(stub);
  DbpulseProcess agent;
  agent.start(configFor(agent, stub, true));
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  std::string scrape;
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "http_request_duration_seconds_bucket", kBucket05) == 1000.0;
      },
      kSeries, "http_request_duration_seconds_bucket{le=0.5} 1000 re-exported", &scrape));
  EXPECT_EQ(sampleValue(scrape, "http_requests_total", {{"status_code", "503"}}), 50.0);
  EXPECT_EQ(sampleValue(scrape, "websocket_active_connections"), 42.0);
  EXPECT_EQ(sampleValue(scrape, "dbpulse_companion_up"), 1.0);
  // Histogram pieces are untyped families; counters keep their type.
  EXPECT_NE(scrape.find("# TYPE http_request_duration_seconds_bucket untyped"), std::string::npos);
  EXPECT_NE(scrape.find("# TYPE http_requests_total counter"), std::string::npos);
  EXPECT_NE(scrape.find("# TYPE websocket_active_connections gauge"), std::string::npos);
  // Connection reuse in the daemon too: many runs, one connection.
  ASSERT_TRUE(pollUntil([&] { return stub.requests("/metrics") >= 4; }, kSeries));
  EXPECT_EQ(stub.connectionsAccepted(), 1);
}

TEST(CompanionCollectorBinaryTest, RulesQueryTheHistogramThatMetricsDoesNotShow) {
  ChatServerStub stub;
  serveChat(stub);
  DbpulseProcess agent;
  // The DESIGN's two example rules, on the scraped values themselves (no rate(): the stub's
  // counters do not move): p95 of http_request_duration_seconds is 0.4026 s, the 5xx share
  // of http_requests_total is 5 %.
  const auto rules = agent.writeConfig(R"(groups:
  - name: chat-test
    rules:
      - alert: ChatP95Above300ms
        expr: histogram_quantile(0.95, sum by (le) (http_request_duration_seconds_bucket)) > 0.3
        annotations:
          summary: "p95 is {{ $value }}"
      - alert: ChatErrorRatioAbove1Percent
        expr: sum(http_requests_total{status_code=~"5.."}) / sum(http_requests_total) > 0.01
      - alert: ChatP95Above1s
        expr: histogram_quantile(0.95, sum by (le) (http_request_duration_seconds_bucket)) > 1
)",
                                       "chat_rules.yml");
  agent.start(configFor(agent, stub, false) + "[rules]\nfiles = [\"" + rules.string() +
              "\"]\nevaluation_interval = \"300ms\"\n");
  ASSERT_TRUE(agent.waitHealthy(kStartup));
  const auto firing = [](const std::string& t, const std::string& alert) {
    return sampleValue(t, "ALERTS", {{"alertname", alert}, {"alertstate", "firing"}}) == 1.0;
  };
  std::string scrape;
  ASSERT_TRUE(agent.waitForMetrics(
      [&](const std::string& t) {
        return firing(t, "ChatP95Above300ms") && firing(t, "ChatErrorRatioAbove1Percent");
      },
      kSeries, "both chat alerts firing", &scrape));
  EXPECT_FALSE(firing(scrape, "ChatP95Above1s")) << scrape;
  EXPECT_TRUE(findSamples(scrape, "http_request_duration_seconds_bucket").empty());
  EXPECT_TRUE(findSamples(scrape, "http_requests_total").empty());
  // ALERTS reach the store during the evaluation; the admin API shows the new state once it
  // is persisted, a moment later.
  HttpResponse alerts;
  EXPECT_TRUE(pollUntil(
      [&] {
        alerts = agent.get("/admin/alerts");
        return alerts.status == 200 && alerts.body.find("p95 is 0.40") != std::string::npos;
      },
      kSeries))
      << alerts.status << " " << alerts.body << agent.logTail();
}

}  // namespace
}  // namespace dbpulse::testing
