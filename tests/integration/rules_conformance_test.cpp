// Conformance of dbpulse's rule engine with Prometheus (Debian package prometheus, 2.42).
//
// A real Prometheus scrapes the real dbpulse binary every 250 ms. dbpulse exposes its own
// series (pg_up and redis_up at 0 against closed ports, collector self-metrics, process
// metrics) plus, re-exported by the companion collector, a chat server played by an in-test
// HTTP stub whose counters, gauges and histograms the test moves tick by tick (with a
// counter reset). Afterwards the test reads every raw sample Prometheus stored (timestamps
// included), loads them into a SampleStore at those exact times, and evaluates a table of
// expressions, plus every shipped rule's expr (rules/default/*.yml), through dbpulse's
// engine and through Prometheus's /api/v1/query at the same instant. Results must have
// the same label sets and values within 1e-6 relative (NaN equals NaN), or both must fail.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/core/sample.h"
#include "agent/core/sample_store.h"
#include "agent/core/text.h"
#include "integration/chat_server_stub.h"
#include "integration/harness/harness.h"
#include "rules/evaluator.h"
#include "rules/promql_parser.h"
#include "rules/rule_file.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

constexpr std::string_view kPrometheusBinary = "/usr/bin/prometheus";

std::string secondsParam(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000),
                static_cast<long long>(ms % 1000));
  return buf;
}

int64_t nowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A throwaway Prometheus scraping one target.
class PrometheusServer {
 public:
  explicit PrometheusServer(int target_port) : port_(freeLoopbackPort()) {
    writeFile(dir_ / "prometheus.yml",
              "global:\n  scrape_interval: 250ms\n  scrape_timeout: 200ms\n"
              "scrape_configs:\n  - job_name: dbpulse\n    static_configs:\n"
              "      - targets: [\"127.0.0.1:" +
                  std::to_string(target_port) + "\"]\n");
    ProcessOptions o;
    o.argv = {std::string(kPrometheusBinary), "--config.file=" + (dir_ / "prometheus.yml").string(),
              "--storage.tsdb.path=" + (dir_ / "data").string(),
              "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    o.log_file = dir_ / "prometheus.log";
    process_ = std::make_unique<ChildProcess>(o);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string logTail() const { return process_->logTail(); }

  bool waitReady(milliseconds timeout) {
    return pollUntil([&] { return httpGet(url() + "/-/ready", 1s).status == 200; }, timeout);
  }

  // GET /api/v1/query; the parsed "data" object, or the error text in `error`.
  nlohmann::json query(const std::string& expr, std::optional<int64_t> at_ms,
                       std::string* error = nullptr) {
    std::string u = url() + "/api/v1/query?query=" + percentEncode(expr);
    if (at_ms) u += "&time=" + secondsParam(*at_ms);
    HttpResponse r = httpGet(u, 10s);
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") {
      if (error) *error = j.is_discarded() ? r.body + r.error : j.value("error", r.body);
      return nullptr;
    }
    return j["data"];
  }

 private:
  TempDir dir_{"dbpulse-prometheus-"};
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

// One tick of the chat server's exposition.
std::string chatExposition(int i) {
  auto num = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  std::string t;
  t += "# TYPE conformance_tick gauge\nconformance_tick " + num(i) + "\n";
  t += "# TYPE http_requests_total counter\n";
  t += "http_requests_total{method=\"GET\",route=\"/messages\",status_code=\"200\"} " +
       num(100 + 37 * i) + "\n";
  // A restart of the chat server's counter at tick 9.
  t += "http_requests_total{method=\"GET\",route=\"/messages\",status_code=\"500\"} " +
       num(i < 9 ? 40 + 3 * i : 2 * (i - 8)) + "\n";
  t += "http_requests_total{method=\"POST\",route=\"/login\",status_code=\"200\"} " +
       num(50 + 11 * i) + "\n";
  t += "http_requests_total{method=\"POST\",route=\"/login\",status_code=\"503\"} " + num(i / 2) +
       "\n";
  static const int kConnections[] = {7, 9, 12, 8, 15, 11, 7, 7, 20, 14, 9, 13, 10, 6};
  t += "# TYPE websocket_active_connections gauge\nwebsocket_active_connections " +
       num(kConnections[i % 14]) + "\n";
  t += "# TYPE http_request_duration_seconds histogram\n";
  const struct {
    const char* route;
    double per_bucket[5];
  } kRoutes[] = {{"/messages", {10, 25, 28, 30, 30}}, {"/login", {1, 2, 5, 9, 10}}};
  const char* kLe[] = {"0.1", "0.5", "1", "2.5", "+Inf"};
  for (const auto& r : kRoutes) {
    for (int b = 0; b < 5; ++b) {
      t += std::string("http_request_duration_seconds_bucket{route=\"") + r.route + "\",le=\"" +
           kLe[b] + "\"} " + num(r.per_bucket[b] * i) + "\n";
    }
    t += std::string("http_request_duration_seconds_sum{route=\"") + r.route + "\"} " +
         num(0.3 * r.per_bucket[4] * i) + "\n";
    t += std::string("http_request_duration_seconds_count{route=\"") + r.route + "\"} " +
         num(r.per_bucket[4] * i) + "\n";
  }
  t += "# TYPE chat_route_owner gauge\n";
  t += "chat_route_owner{route=\"/messages\",team=\"chat\"} 1\n";
  t += "chat_route_owner{route=\"/login\",team=\"auth\"} 1\n";
  t += "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes " +
       num(5e7 + 1.5e6 * i) + "\n";
  t +=
      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total " + num(0.37 * i) + "\n";
  return t;
}

class FixedClock final : public Clock {
 public:
  WallTime now() const override { return WallTime(milliseconds(now_ms)); }
  int64_t now_ms = 0;
};

// Every raw sample Prometheus holds for the job up to `at_ms`, written into `store` at its
// own timestamp (the store's clock is moved along).
size_t loadRawSamples(PrometheusServer& prom, int64_t at_ms, SampleStore& store, FixedClock& clock,
                      std::string& error) {
  nlohmann::json data = prom.query("{job=\"dbpulse\"}[1h]", at_ms, &error);
  if (data.is_null()) return 0;
  // timestamp -> batch, so each scrape is one write, in time order.
  std::map<int64_t, SampleBatch> by_time;
  size_t points = 0;
  for (const auto& series : data["result"]) {
    std::string name;
    Labels labels;
    for (const auto& [k, v] : series["metric"].items()) {
      if (k == "__name__") {
        name = v.get<std::string>();
      } else {
        labels.set(k, v.get<std::string>());
      }
    }
    for (const auto& p : series["values"]) {
      const auto ts = static_cast<int64_t>(std::llround(p[0].get<double>() * 1000));
      by_time[ts].add(name, labels, std::strtod(p[1].get<std::string>().c_str(), nullptr));
      ++points;
    }
  }
  for (const auto& [ts, batch] : by_time) {
    clock.now_ms = ts;
    store.write("prometheus", batch, std::chrono::hours(2));
  }
  return points;
}

using ValueMap = std::map<std::string, double>;  // "{a="b",...}" -> value

std::string key(const std::map<std::string, std::string>& labels) {
  std::string k = "{";
  for (const auto& [n, v] : labels) k += (k.size() > 1 ? "," : "") + n + "=\"" + v + "\"";
  return k + "}";
}

struct Outcome {
  bool ok = false;
  std::string error;
  bool scalar = false;
  ValueMap values;
};

Outcome fromPrometheus(const nlohmann::json& data, const std::string& error) {
  Outcome o;
  if (data.is_null()) {
    o.error = error;
    return o;
  }
  o.ok = true;
  auto parse = [](const nlohmann::json& v) {
    return std::strtod(v[1].get<std::string>().c_str(), nullptr);
  };
  if (data["resultType"] == "scalar") {
    o.scalar = true;
    o.values["{}"] = parse(data["result"]);
    return o;
  }
  for (const auto& el : data["result"]) {
    std::map<std::string, std::string> labels;
    for (const auto& [k, v] : el["metric"].items()) labels[k] = v.get<std::string>();
    o.values[key(labels)] = parse(el["value"]);
  }
  return o;
}

Outcome fromDbpulse(const std::string& expr, const SampleStore& store, int64_t at_ms) {
  Outcome o;
  auto parsed = rules::parseExpr(expr);
  if (!parsed.ok()) {
    o.error = parsed.status().message();
    return o;
  }
  auto r = rules::evaluate(**parsed, store, at_ms);
  if (!r.ok()) {
    o.error = r.status().message();
    return o;
  }
  o.ok = true;
  if (r->type == rules::ValueType::kScalar) {
    o.scalar = true;
    o.values["{}"] = r->scalar;
    return o;
  }
  for (const auto& el : r->vector) {
    std::map<std::string, std::string> labels;
    for (const auto& l : el.labels.items()) labels[l.name] = l.value;
    o.values[key(labels)] = el.value;
  }
  return o;
}

bool sameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= 1e-6 * std::max({1e-12, std::fabs(a), std::fabs(b)}) ||
         std::fabs(a - b) < 1e-12;
}

// "" when both agree; otherwise what differs.
std::string compare(const Outcome& prom, const Outcome& ours) {
  if (!prom.ok || !ours.ok) {
    if (!prom.ok && !ours.ok) return "";
    return "Prometheus: " + (prom.ok ? std::string("ok") : "error " + prom.error) +
           "; dbpulse: " + (ours.ok ? std::string("ok") : "error " + ours.error);
  }
  std::string diff;
  if (prom.scalar != ours.scalar) diff += "result types differ; ";
  for (const auto& [k, v] : prom.values) {
    auto it = ours.values.find(k);
    if (it == ours.values.end()) {
      diff += "missing in dbpulse: " + k + "; ";
    } else if (!sameValue(v, it->second)) {
      char buf[128];
      std::snprintf(buf, sizeof buf, " Prometheus %.17g dbpulse %.17g; ", v, it->second);
      diff += k + buf;
    }
  }
  for (const auto& [k, v] : ours.values) {
    if (!prom.values.count(k)) diff += "only in dbpulse: " + k + "; ";
  }
  return diff;
}

struct Case {
  std::string expr;
  bool must_have_result;  // the data is built so that the result is not empty
};

const std::vector<Case>& tableCases() {
  static const std::vector<Case> cases = {
      // counters, with the reset of status_code="500" at tick 9 inside the ranges
      {"rate(http_requests_total[3s])", true},
      {"increase(http_requests_total[4s])", true},
      {"irate(http_requests_total[2s])", true},
      {"rate(http_requests_total{status_code=\"500\"}[10m])", true},
      {"increase(process_cpu_seconds_total[5s])", true},
      {"delta(websocket_active_connections[3s])", true},
      {"deriv(websocket_active_connections[4s])", true},
      {"deriv(process_resident_memory_bytes[1h])", true},
      {"avg_over_time(websocket_active_connections[3s])", true},
      {"min_over_time(websocket_active_connections[3s])", true},
      {"max_over_time(websocket_active_connections[3s])", true},
      {"sum_over_time(websocket_active_connections[3s])", true},
      {"count_over_time(websocket_active_connections[3s])", true},
      {"stddev_over_time(websocket_active_connections[3s])", true},
      {"stdvar_over_time(websocket_active_connections[4s])", true},
      {"last_over_time(websocket_active_connections[3s])", true},
      {"last_over_time(http_requests_total[2s] offset 1s)", true},
      {"present_over_time(http_requests_total{method=\"GET\"}[3s])", true},
      {"changes(websocket_active_connections[4s])", true},
      {"changes(http_requests_total[3s])", true},
      {"resets(http_requests_total[10m])", true},
      // element-wise math, metric name dropped
      {"ceil(rate(http_requests_total[3s]))", true},
      {"floor(rate(http_requests_total[3s]))", true},
      {"sqrt(websocket_active_connections)", true},
      {"exp(websocket_active_connections / 10)", true},
      {"ln(http_requests_total)", true},
      {"log2(http_requests_total)", true},
      {"log10(http_requests_total)", true},
      {"sgn(delta(websocket_active_connections[3s]))", true},
      {"sgn(-websocket_active_connections)", true},
      {"sin(websocket_active_connections)", true},
      {"cos(websocket_active_connections)", true},
      {"tan(websocket_active_connections)", true},
      {"asin(websocket_active_connections / 100)", true},
      {"acos(websocket_active_connections / 100)", true},
      {"atan(websocket_active_connections)", true},
      {"sinh(websocket_active_connections / 10)", true},
      {"cosh(websocket_active_connections / 10)", true},
      {"tanh(websocket_active_connections / 10)", true},
      {"asinh(websocket_active_connections)", true},
      {"acosh(websocket_active_connections)", true},
      {"atanh(websocket_active_connections / 100)", true},
      {"atanh(websocket_active_connections)", true},  // NaN (or Inf) outside (-1, 1)
      {"deg(websocket_active_connections)", true},
      {"rad(websocket_active_connections)", true},
      {"pi() * 2", true},
      {"round(rate(http_requests_total[3s]))", true},
      {"round(rate(http_requests_total[3s]), 0.25)", true},
      {"round(websocket_active_connections / 4, 5)", true},
      {"clamp(websocket_active_connections, 8, 12)", true},
      {"clamp(websocket_active_connections, 12, 8)", false},  // max < min: empty
      {"sort(http_requests_total)", true},
      {"timestamp(websocket_active_connections)", true},
      {"timestamp(http_requests_total offset 1s)", true},
      {"time() - timestamp(http_requests_total{method=\"GET\"})", true},
      {"timestamp(sum by (route) (http_requests_total))", true},
      {"sort_desc(rate(http_requests_total[3s]))", true},
      // date functions: of the evaluation time, and of values (process start time)
      {"minute()", true},
      {"hour()", true},
      {"day_of_month()", true},
      {"day_of_week()", true},
      {"day_of_year()", true},
      {"days_in_month()", true},
      {"month()", true},
      {"year()", true},
      {"hour(dbpulse_collector_last_run_timestamp_seconds)", true},
      {"day_of_week(dbpulse_collector_last_run_timestamp_seconds)", true},
      {"days_in_month(vector(1709251200))", true},  // 2024-03-01: a leap year's March
      {"day_of_year(vector(1709164800))", true},    // 2024-02-29
      {"month(websocket_active_connections * 1e7)", true},
      // aggregations, by and without
      {"sum by (status_code) (rate(http_requests_total[3s]))", true},
      {"sum without (method, instance) (rate(http_requests_total[3s]))", true},
      {"sum(rate(http_requests_total[3s])) by (route)", true},
      {"avg by (route) (http_requests_total)", true},
      {"min without (status_code) (http_requests_total)", true},
      {"max(http_requests_total)", true},
      {"count by (method) (http_requests_total)", true},
      {"group by (route) (http_requests_total)", true},
      {"group(rate(http_requests_total[3s]))", true},
      {"stddev by (method) (http_requests_total)", true},
      {"stdvar without (status_code) (rate(http_requests_total[3s]))", true},
      {"stddev(websocket_active_connections)", true},  // one element: 0
      {"sum(rate(http_requests_total{status_code=~\"5..\"}[4s])) / "
       "sum(rate(http_requests_total[4s]))",
       true},
      // vector matching
      {"http_requests_total / on(route) group_left(team) chat_route_owner", true},
      {"chat_route_owner * on(route) group_right(team) http_requests_total", true},
      {"rate(http_requests_total[3s]) / ignoring(status_code) group_left "
       "sum without (status_code) (rate(http_requests_total[3s]))",
       true},
      {"http_requests_total{status_code=\"500\"} / ignoring(status_code) "
       "http_requests_total{status_code=\"200\"}",
       true},
      {"http_requests_total / on(route) http_requests_total", false},  // many-to-many: error
      {"http_requests_total and on(route) chat_route_owner{team=\"chat\"}", true},
      {"http_requests_total unless on(route) chat_route_owner{team=\"chat\"}", true},
      {"chat_route_owner or http_requests_total", true},
      // comparisons, bool, scalars
      {"http_requests_total > 100", true},
      {"100 < http_requests_total", true},
      {"http_requests_total > bool 100", true},
      {"websocket_active_connections == bool 7", true},
      {"websocket_active_connections != 7", false},
      {"rate(http_requests_total[3s]) >= bool on(route, method, status_code, instance, job) "
       "rate(http_requests_total[3s] offset 1s)",
       true},
      {"1 + 2 * 3 ^ 2 % 5", true},
      {"-websocket_active_connections ^ 2", true},
      {"scalar(sum(websocket_active_connections)) * 2", true},
      {"vector(time() > bool 0)", true},
      {"time() - process_resident_memory_bytes / 1e6", true},
      {"abs(delta(websocket_active_connections[3s]))", true},
      {"clamp_min(websocket_active_connections, 10)", true},
      {"clamp_max(websocket_active_connections, 10)", true},
      // absent
      {"absent(nonexistent_metric{job=\"dbpulse\", route=~\"/x.*\", team=\"a\"})", true},
      {"absent(http_requests_total)", false},
      {"absent(nothing{a=\"1\",a=\"2\"})", true},
      // histograms
      {"histogram_quantile(0.9, sum by (le, route) "
       "(rate(http_request_duration_seconds_bucket[3s])))",
       true},
      {"histogram_quantile(0.5, http_request_duration_seconds_bucket)", true},
      {"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[4s])))",
       true},
      // selectors
      {"{__name__=~\"http_requests_.*\", status_code=\"500\"}", true},
      {"http_requests_total offset 2s", true},
      {"http_requests_total{route!=\"/login\", method=~\"G.*\"}", true},
      // dbpulse's own series
      {"pg_up == 0", true},
      {"redis_up", true},
      {"sum by (collector) (dbpulse_collector_success)", true},
      {"rate(dbpulse_collector_duration_seconds[10m]) >= 0", false},
  };
  return cases;
}

TEST(RulesConformanceTest, EngineAgreesWithPrometheus) {
  if (!requireBinary(std::filesystem::path(kPrometheusBinary), "prometheus")) return;
  const auto started = std::chrono::steady_clock::now();

  ChatServerStub chat;
  auto serve = [&](const std::string& path, std::string body) {
    ChatServerStub::Response r;
    r.body = std::move(body);
    chat.set(path, std::move(r));
  };
  serve("/health", "{}");
  serve("/metrics", chatExposition(0));
  const int closed_port = freeLoopbackPort();  // nothing listens: pg_up 0, redis_up 0

  DbpulseProcess agent;
  agent.start("[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
              agent.stateDir().string() + "\"\nlog_format = \"text\"\n" +
              "[postgres]\ndsn = \"host=127.0.0.1 port=" + std::to_string(closed_port) +
              " dbname=chat user=dbpulse connect_timeout=1\"\n[redis]\naddress = \"127.0.0.1:" +
              std::to_string(closed_port) + "\"\n[companion]\nmetrics_url = \"" +
              chat.url("/metrics") + "\"\nhealth_url = \"" + chat.url("/health") +
              "\"\nreexport = true\n[collectors.companion]\ninterval = \"250ms\"\n"
              "timeout = \"200ms\"\n[rules]\nfiles = []\n");
  ASSERT_TRUE(agent.waitHealthy(15s));

  PrometheusServer prom(agent.port());
  ASSERT_TRUE(prom.waitReady(20s)) << prom.logTail();

  // Tick by tick: each value must have reached Prometheus before the next one is served.
  auto tickSeen = [&](int i) {
    nlohmann::json d = prom.query("conformance_tick", std::nullopt);
    return !d.is_null() && !d["result"].empty() &&
           d["result"][0]["value"][1].get<std::string>() == std::to_string(i);
  };
  constexpr int kTicks = 13;
  for (int i = 0; i < kTicks; ++i) {
    serve("/metrics", chatExposition(i));
    ASSERT_TRUE(pollUntil([&] { return tickSeen(i); }, 10s, 25ms))
        << "tick " << i << " never reached Prometheus\n"
        << prom.logTail() << agent.logTail();
  }

  // The instant compared: half a second ago, so every scrape up to it has been stored.
  const int64_t at_ms = nowMs() - 500;
  FixedClock clock;
  SampleStore store(clock, SampleStoreOptions{20'000});
  std::string error;
  const size_t points = loadRawSamples(prom, at_ms, store, clock, error);
  // Counters carry their collection time, so Prometheus stores one point per collector
  // run for them rather than one per scrape.
  ASSERT_GT(points, 500u) << error;
  clock.now_ms = at_ms;

  auto check = [&](const std::string& expr, bool must_have_result, int& non_empty) {
    std::string prom_error;
    Outcome p = fromPrometheus(prom.query(expr, at_ms, &prom_error), prom_error);
    Outcome d = fromDbpulse(expr, store, at_ms);
    EXPECT_EQ(compare(p, d), "") << "expr: " << expr;
    if (p.ok && !p.values.empty()) ++non_empty;
    if (must_have_result) {
      EXPECT_TRUE(p.ok && !p.values.empty())
          << "expected a non-empty result for " << expr << (p.ok ? "" : ": " + p.error);
    }
  };

  int non_empty = 0;
  for (const auto& c : tableCases()) check(c.expr, c.must_have_result, non_empty);

  // Every shipped rule's expression, on the same data.
  const auto pack = std::filesystem::path(DBPULSE_SOURCE_DIR) / "rules" / "default";
  rules::RuleSet set = rules::loadRuleFiles({"*.yml"}, pack.string());
  for (const auto& e : set.errors) ADD_FAILURE() << e.toString();
  int rules_checked = 0, rules_non_empty = 0;
  for (const auto& g : set.groups) {
    for (const auto& r : g.rules) {
      check(r.expr_text, false, rules_non_empty);
      ++rules_checked;
    }
  }
  std::printf(
      "conformance: %zu raw samples; %zu table expressions (%d non-empty), %d shipped "
      "rule expressions (%d non-empty) compared in %.1f s\n",
      points, tableCases().size(), non_empty, rules_checked, rules_non_empty,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

}  // namespace
}  // namespace dbpulse::testing
