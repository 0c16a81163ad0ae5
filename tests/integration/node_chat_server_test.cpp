// The companion collector against the real chat server: packaging/demo/chat-server/server.js
// (Node's http module and prom-client, the npm packages of its package-lock.json) started
// on a free loopback port. After known requests, what the collector stores must be what
// prom-client wrote: its default process_* and nodejs_* metrics, the request histogram's
// buckets, sum and count, counters under label values that need escaping, the health
// answer. Then the shipped rule pack's chat alerts (rules/default/chat_service.yml) are
// evaluated over those samples by dbpulse's engine: quiet while the server is healthy,
// ChatHttpErrorRatioHigh and ChatHttpLatencyP95High with the right values once its fault
// knob makes every 5th request fail and some requests take over a second. Last, the dbpulse
// binary scrapes it and re-exports what it read, label escapes intact.
//
// Time: the store runs on a fake clock. The three scrapes are written 299 s apart, so each
// rule evaluation's 5-minute window holds exactly the two scrapes around one phase of
// requests (rate() extrapolates both ends alike: ratios and quantiles are exact).

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/sample_store.h"
#include "collectors/catalog.h"
#include "collectors/companion/companion_collector.h"
#include "integration/harness/harness.h"
#include "rules/evaluator.h"
#include "rules/rule_file.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using collectors::CompanionCollector;
using collectors::CompanionCollectorOptions;

const std::filesystem::path kChatServerDir =
    std::filesystem::path(DBPULSE_SOURCE_DIR) / "packaging/demo/chat-server";
constexpr std::string_view kNode = "/usr/bin/node";
constexpr int64_t kStep = 299'000;  // between scrapes, ms: one per 5-minute rule window

// A channel type with a quote, a backslash and a newline: prom-client writes it escaped.
const std::string kOddChannel = "say \"hi\" \\ back\nslash";

class FakeClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(std::chrono::milliseconds(ms)); }
  int64_t ms = 1'800'000'000'000;
};

// The chat server as a child process on a free loopback port.
class NodeChatServer {
 public:
  NodeChatServer() : port_(freeLoopbackPort()) {
    ProcessOptions o;
    o.argv = {std::string(kNode), (kChatServerDir / "server.js").string(), "--port",
              std::to_string(port_)};
    process_ = std::make_unique<ChildProcess>(o);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  ChildProcess& process() { return *process_; }

 private:
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

std::optional<double> value(const SampleBatch& b, const std::string& name,
                            const Labels& labels = {}) {
  for (const auto& s : b.samples()) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return std::nullopt;
}

class NodeChatServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!requireBinary(kNode, "nodejs")) return;
    const CommandResult install =
        runCommand({"bash", (kChatServerDir / "install.sh").string()}, 300s);
    ASSERT_EQ(install.exit_code, 0) << "npm ci of the chat server: " << install.describe();
    chat_ = std::make_unique<NodeChatServer>();
    ASSERT_TRUE(pollUntil([&] { return httpGet(chat_->url("/health"), 1s).status == 200; }, 20s))
        << "the chat server does not answer /health: " << chat_->process().logTail();
    CompanionCollectorOptions o;
    o.health_url = chat_->url("/health");
    o.metrics_url = chat_->url("/metrics");
    o.timeout = 5000ms;
    collector_ = std::make_unique<CompanionCollector>(o);
  }

  // One collector run, written into the store at the fake clock's time, which then moves on.
  SampleBatch scrape() {
    SampleBatch b;
    const collectors::CollectContext ctx{
        std::chrono::system_clock::now(), std::chrono::steady_clock::now() + 10s, {}};
    const Status s = collector_->collect(ctx, b);
    EXPECT_TRUE(s.ok()) << s.toString() << "\n" << chat_->process().logTail();
    store_.write("companion", b, 600s, false);
    clock_.ms += kStep;
    return b;
  }

  // `want` 0: any HTTP answer.
  void request(const std::string& method, const std::string& path, long want,
               const std::string& body = "") {
    const HttpResponse r =
        httpRequest(method, chat_->url(path), body, {{"Content-Type", "application/json"}}, 10s);
    EXPECT_NE(r.status, 0) << method << " " << path << ": " << r.error;
    if (want != 0) {
      EXPECT_EQ(r.status, want) << method << " " << path << ": " << r.body;
    }
  }

  void fault(const std::string& mode) {
    request("POST", "/_demo/fault?mode=" + mode + "&seconds=120", 200);
  }

  // The shipped chat rules' expressions, by alert name, evaluated at `at_ms`.
  std::map<std::string, rules::Vector> evaluateChatRules(int64_t at_ms) {
    const rules::RuleSet set = rules::loadRuleFiles(
        {std::string(DBPULSE_SOURCE_DIR) + "/rules/default/chat_service.yml"}, "");
    EXPECT_TRUE(set.ok());
    std::map<std::string, rules::Vector> out;
    for (const auto& group : set.groups) {
      for (const auto& rule : group.rules) {
        auto r = rules::evaluate(*rule.expr, store_, at_ms);
        EXPECT_TRUE(r.ok()) << rule.name << ": " << r.status().toString();
        if (r.ok()) out[rule.name] = r->vector;
      }
    }
    return out;
  }

  FakeClock clock_;
  SampleStore store_{clock_};
  std::unique_ptr<NodeChatServer> chat_;
  std::unique_ptr<CompanionCollector> collector_;
};

const Labels kList = {{"method", "GET"}, {"route", "/api/conversations"}};

Labels bucket(const std::string& le) {
  return Labels{{"le", le}, {"method", "GET"}, {"route", "/api/conversations"}};
}

TEST_F(NodeChatServerTest, CollectorReadsPromClientAndTheShippedChatRulesEvaluateOnIt) {
  if (!collector_) return;
  // Every series the phases below move exists before the first scrape.
  request("GET", "/api/conversations", 200);
  request("GET", "/api/conversations/1/messages", 200);
  request("POST", "/api/conversations/1/messages", 201,
          nlohmann::json{{"text", "hello"}, {"channel_type", kOddChannel}}.dump());
  fault("errors");  // 10 requests in a row: one 500, one 503
  for (int i = 0; i < 10; ++i) request("GET", "/api/conversations", 0);
  fault("none");
  const SampleBatch first = scrape();
  const int64_t t1 = clock_.ms;

  // Phase 1, healthy: 40 fast list requests, 10 messages, one unknown conversation (404).
  for (int i = 0; i < 40; ++i) request("GET", "/api/conversations", 200);
  for (int i = 0; i < 10; ++i) {
    request("POST", "/api/conversations/2/messages", 201,
            R"({"text":"hi","channel_type":"group"})");
  }
  request("GET", "/api/conversations/9999/messages", 404);
  const SampleBatch second = scrape();
  const int64_t t2 = clock_.ms;

  // Phase 2, faults: 50 list requests with every 5th failing (5 x 500, 5 x 503), then 20
  // concurrent ones that each take more than a second.
  fault("errors");
  for (int i = 0; i < 50; ++i) request("GET", "/api/conversations", 0);
  fault("slow");
  std::vector<std::future<HttpResponse>> slow;
  for (int i = 0; i < 20; ++i) {
    slow.push_back(std::async(std::launch::async,
                              [&] { return httpGet(chat_->url("/api/conversations"), 20s); }));
  }
  for (auto& f : slow) EXPECT_EQ(f.get().status, 200);
  fault("none");
  const SampleBatch third = scrape();

  // ---- what the collector stored: health, the parse, prom-client's default metrics
  for (const SampleBatch* b : {&first, &second, &third}) {
    EXPECT_EQ(value(*b, "dbpulse_companion_up"), 1);
    EXPECT_EQ(value(*b, "dbpulse_companion_health_status_code"), 200);
    for (const char* reason : {"invalid", "duplicate", "reserved_name"}) {
      EXPECT_EQ(value(*b, "dbpulse_companion_scrape_rejected_samples", {{"reason", reason}}), 0)
          << reason;
    }
    EXPECT_EQ(value(*b, "dbpulse_companion_scrape_truncated"), 0);
  }
  EXPECT_GT(value(third, "process_cpu_seconds_total").value_or(0), 0);
  EXPECT_GT(value(third, "process_resident_memory_bytes").value_or(0), 10e6);
  EXPECT_GT(value(third, "process_start_time_seconds").value_or(0), 1.7e9);
  EXPECT_GT(value(third, "nodejs_heap_size_used_bytes").value_or(0), 1e6);
  EXPECT_TRUE(value(third, "nodejs_eventloop_lag_seconds"));
  EXPECT_TRUE(value(third, "nodejs_eventloop_lag_p99_seconds"));
  bool version_info = false;
  for (const auto& s : third.samples()) {
    version_info |= s.name == "nodejs_version_info" && s.value == 1 &&
                    s.labels.get("version").substr(0, 1) == "v" && !s.labels.get("major").empty();
  }
  EXPECT_TRUE(version_info) << "nodejs_version_info{version,major,...} 1";
  EXPECT_GT(value(third, "dbpulse_companion_scrape_samples").value_or(0), 100);

  // ---- the request histogram and counters, exactly
  const auto delta = [](const SampleBatch& a, const SampleBatch& b, const std::string& name,
                        const Labels& labels) {
    return value(b, name, labels).value_or(NAN) - value(a, name, labels).value_or(NAN);
  };
  EXPECT_EQ(delta(first, second, "http_request_duration_seconds_count", kList), 40);
  EXPECT_EQ(delta(first, second, "http_request_duration_seconds_bucket", bucket("+Inf")), 40);
  EXPECT_EQ(delta(first, second, "http_request_duration_seconds_bucket", bucket("1")), 40);
  EXPECT_EQ(delta(second, third, "http_request_duration_seconds_count", kList), 70);
  EXPECT_EQ(delta(second, third, "http_request_duration_seconds_bucket", bucket("+Inf")), 70);
  EXPECT_EQ(delta(second, third, "http_request_duration_seconds_bucket", bucket("1")), 50);
  EXPECT_GE(delta(second, third, "http_request_duration_seconds_sum", kList), 20 * 1.5);
  double previous = 0;
  for (const char* le :
       {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    const auto v = value(third, "http_request_duration_seconds_bucket", bucket(le));
    ASSERT_TRUE(v) << "le=" << le;
    EXPECT_GE(*v, previous) << "le=" << le;
    previous = *v;
  }
  EXPECT_EQ(previous, value(third, "http_request_duration_seconds_count", kList));
  const auto requests = [&](const SampleBatch& b, const char* route, const char* code) {
    return value(b, "http_requests_total",
                 {{"method", "GET"}, {"route", route}, {"status_code", code}})
        .value_or(0);
  };
  EXPECT_EQ(
      requests(third, "/api/conversations", "500") - requests(second, "/api/conversations", "500"),
      5);
  EXPECT_EQ(
      requests(third, "/api/conversations", "503") - requests(second, "/api/conversations", "503"),
      5);
  EXPECT_EQ(requests(second, "/api/conversations/:id/messages", "404"), 1);
  EXPECT_EQ(value(second, "messages_sent_total", {{"channel_type", "group"}}), 10);
  EXPECT_EQ(value(third, "messages_sent_total", {{"channel_type", kOddChannel}}), 1)
      << "the escaped label value did not come through";
  EXPECT_EQ(value(third, "message_delivery_time_ms_count"), 11);

  // ---- the shipped rules: quiet over the healthy phase ...
  auto healthy = evaluateChatRules(t1);
  EXPECT_TRUE(healthy["ChatHttpErrorRatioHigh"].empty());
  EXPECT_TRUE(healthy["ChatHttpLatencyP95High"].empty());
  EXPECT_TRUE(healthy["ChatCompanionDown"].empty());

  // ... and firing over the faulty one, with the values the requests make.
  auto faulty = evaluateChatRules(t2);
  ASSERT_EQ(faulty["ChatHttpErrorRatioHigh"].size(), 1u);
  EXPECT_NEAR(faulty["ChatHttpErrorRatioHigh"][0].value, 10.0 / 70.0, 1e-6);
  ASSERT_EQ(faulty["ChatHttpLatencyP95High"].size(), 1u);
  std::vector<std::pair<double, double>> buckets;
  for (const char* le :
       {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}) {
    buckets.emplace_back(std::string(le) == "+Inf" ? INFINITY : std::stod(le),
                         delta(second, third, "http_request_duration_seconds_bucket", bucket(le)));
  }
  const double p95 = rules::bucketQuantile(0.95, buckets);
  EXPECT_GT(p95, 1.0);
  // (Exact unless a bucket was empty at the first scrape of the window: rate() then
  // extrapolates it less, by at most 1 s of 299.)
  EXPECT_NEAR(faulty["ChatHttpLatencyP95High"][0].value, p95, 0.01 * p95);
  EXPECT_TRUE(faulty["ChatCompanionDown"].empty());
}

// Through the dbpulse binary, re-exporting what it scraped: the odd label value survives
// prom-client's escaping, dbpulse's parser and dbpulse's own exposition.
TEST_F(NodeChatServerTest, DaemonScrapesItAndReexportsEscapedLabelsIntact) {
  if (!collector_) return;
  request("POST", "/api/conversations/3/messages", 201,
          nlohmann::json{{"text", "hello"}, {"channel_type", kOddChannel}}.dump());
  DbpulseProcess agent;
  std::string config = "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                       agent.stateDir().string() + "\"\nlog_format = \"text\"\n\n[companion]\n" +
                       "health_url = \"" + chat_->url("/health") + "\"\nmetrics_url = \"" +
                       chat_->url("/metrics") + "\"\nreexport = true\n";
  for (const auto& entry : collectors::catalog()) {
    config += "[collectors." + entry.name + "]\n" +
              (entry.name == "companion" ? "interval = \"300ms\"\ntimeout = \"250ms\"\n"
                                         : "enabled = false\n");
  }
  agent.start(config);
  ASSERT_TRUE(agent.waitHealthy(15s));
  std::string scrape;
  ASSERT_TRUE(agent.waitForMetrics(
      [](const std::string& t) {
        return sampleValue(t, "dbpulse_companion_up") == 1.0 &&
               sampleValue(t, "dbpulse_companion_scrape_samples").value_or(0) > 100;
      },
      15s, "the chat server scraped", &scrape));
  EXPECT_EQ(
      sampleValue(scrape, "dbpulse_companion_scrape_rejected_samples", {{"reason", "invalid"}}),
      0.0);
  EXPECT_EQ(sampleValue(scrape, "messages_sent_total", {{"channel_type", kOddChannel}}), 1.0)
      << scrape;
  EXPECT_GT(sampleValue(scrape, "nodejs_heap_size_used_bytes").value_or(0), 0) << scrape;
}

}  // namespace
}  // namespace dbpulse::testing
