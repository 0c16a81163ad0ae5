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
// A differential test does the same for random expressions built from a seed (printed on
// failure; DBPULSE_PROMQL_SEED replays one, DBPULSE_PROMQL_CASES sets how many), and
// RuleFilesLoadExactlyWhenPromtoolAcceptsThem checks rule files against promtool.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
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
constexpr std::string_view kPromtoolBinary = "/usr/bin/promtool";

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
  if (data["resultType"] != "scalar" && data["resultType"] != "vector") {
    // A range vector or string: dbpulse's evaluate() refuses those as rule results.
    o.ok = false;
    o.error = "result type " + data["resultType"].dump();
    return o;
  }
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

// count_values puts values into a label, as text: libm and Go's math may differ in the
// last bit of a transcendental result, so such labels are compared to 9 digits.
ValueMap roundValueLabels(const ValueMap& m) {
  ValueMap out;
  for (const auto& [k, v] : m) {
    std::string key = k;
    const std::string marker = "value=\"";
    if (const size_t at = key.find(marker); at != std::string::npos) {
      const size_t start = at + marker.size();
      const size_t end = key.find('"', start);
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g",
                    std::strtod(key.substr(start, end - start).c_str(), nullptr));
      key.replace(start, end - start, buf);
    }
    out[key] = v;
  }
  return out;
}

// The values alone, sorted (NaN first).
std::vector<double> sortedValues(const ValueMap& m) {
  std::vector<double> v;
  for (const auto& [k, x] : m) v.push_back(x);
  std::sort(v.begin(), v.end(),
            [](double a, double b) { return std::isnan(a) ? !std::isnan(b) : a < b; });
  return v;
}

// "" when both agree; otherwise what differs. With `ties_free`, which series topk/bottomk
// keep among equal values may differ (Prometheus breaks ties by series creation order):
// then only the values are compared.
std::string compare(const Outcome& prom, const Outcome& ours, bool ties_free = false) {
  if (ties_free && prom.ok && ours.ok && prom.values.size() == ours.values.size()) {
    const auto a = sortedValues(prom.values), b = sortedValues(ours.values);
    bool same = true;
    for (size_t i = 0; i < a.size(); ++i) same = same && sameValue(a[i], b[i]);
    if (same) return "";
  }
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

// compare() with the allowances an expression needs: topk/bottomk ties, count_values labels.
std::string compareFor(const std::string& expr, Outcome prom, Outcome ours) {
  const bool ties_free =
      expr.find("topk") != std::string::npos || expr.find("bottomk") != std::string::npos;
  if (expr.find("count_values") != std::string::npos) {
    prom.values = roundValueLabels(prom.values);
    ours.values = roundValueLabels(ours.values);
  }
  return compare(prom, ours, ties_free);
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
      // aggregations with a parameter
      {"topk(2, http_requests_total)", true},
      {"bottomk by (route) (1, http_requests_total)", true},
      {"topk by (method) (1, rate(http_requests_total[3s]))", true},
      {"bottomk(2, chat_route_owner)", true},
      {"quantile(0.5, http_requests_total)", true},
      {"quantile by (route) (0.9, rate(http_requests_total[3s]))", true},
      {"quantile(1.5, http_requests_total)", true},
      {"count_values(\"connections\", websocket_active_connections)", true},
      {"count_values by (route) (\"owners\", chat_route_owner)", true},
      {"count_values without (status_code) (\"v\", rate(http_requests_total[3s]))", true},
      {"count_values(\"bad-name\", chat_route_owner)", false},
      // labels
      {"label_replace(http_requests_total, \"class\", \"${1}xx\", \"status_code\", \"(.).*\")",
       true},
      {"label_replace(http_requests_total, \"route\", \"\", \"method\", \"GET\")", true},
      {"label_replace(chat_route_owner, \"team\", \"$2\", \"route\", \"/(.*)\")", true},
      {"label_replace(http_requests_total, \"x\", \"$1\", \"route\", \"(\")", false},
      {"label_replace(http_requests_total, \"route\", \"same\", \"job\", \".*\")", false},
      {"label_join(http_requests_total, \"id\", \"/\", \"method\", \"route\", \"none\")", true},
      {"label_join(chat_route_owner, \"team\", \",\")", true},
      // more range functions
      {"quantile_over_time(0.9, websocket_active_connections[3s])", true},
      {"quantile_over_time(0, http_requests_total[2s])", true},
      {"absent_over_time(websocket_active_connections[3s])", false},
      {"absent_over_time(nonexistent_metric{job=\"x\", a=~\"b\"}[1m])", true},
      {"predict_linear(process_resident_memory_bytes[5s], 60)", true},
      {"predict_linear(websocket_active_connections[3s] offset 1s, 3600)", true},
      {"holt_winters(websocket_active_connections[4s], 0.5, 0.3)", true},
      {"holt_winters(websocket_active_connections[4s], 1, 0.3)", false},
      {"idelta(websocket_active_connections[3s])", true},
      {"idelta(http_requests_total[2s])", true},
      {"histogram_count(http_request_duration_seconds_bucket)", false},
      {"histogram_sum(http_request_duration_seconds_bucket)", false},
      {"histogram_fraction(0, 0.5, http_request_duration_seconds_bucket)", false},
      // atan2
      {"websocket_active_connections atan2 2", true},  // 2.42 keeps the name
      {"http_requests_total atan2 ignoring(status_code) group_left "
       "http_requests_total{status_code=\"200\"}",
       false},
      {"1 atan2 -1", true},
      // subqueries, @, negative offsets
      {"max_over_time(rate(http_requests_total[2s])[5s:500ms])", true},
      {"rate(http_requests_total[5s:250ms])", true},
      {"avg_over_time(websocket_active_connections[3s:1s] offset 1s)", true},
      {"last_over_time(websocket_active_connections[2m:1s])", true},
      {"last_over_time(websocket_active_connections[2m:])", false},  // 1m steps: maybe none
      {"min_over_time(sum by (route) (rate(http_requests_total[2s]))[4s:1s])", true},
      {"sum_over_time(max_over_time(websocket_active_connections[2s:500ms])[4s:1s])", true},
      {"deriv(process_resident_memory_bytes[4s:250ms])", true},
      {"websocket_active_connections @ end()", true},
      {"rate(http_requests_total[3s] @ start())", true},
      {"max_over_time(websocket_active_connections[3s:1s] @ end())", true},
      // dbpulse's own series
      {"pg_up == 0", true},
      {"redis_up", true},
      {"sum by (collector) (dbpulse_collector_success)", true},
      {"rate(dbpulse_collector_duration_seconds[10m]) >= 0", false},
  };
  return cases;
}

// dbpulse and Prometheus scraping it, ticked through the chat exposition, and a store
// holding every raw sample Prometheus stored: built once for the tests below.
struct Environment {
  ChatServerStub chat;
  DbpulseProcess agent;
  std::unique_ptr<PrometheusServer> prom;
  FixedClock clock;
  std::unique_ptr<SampleStore> store;
  int64_t at_ms = 0;  // the instant compared
  size_t points = 0;
};

// How far past the compared instant the store holds samples.
constexpr int64_t kFutureMs = 6000;

class RulesConformanceTest : public ::testing::Test {
 protected:
  static void TearDownTestSuite() { env_.reset(); }

  // The shared environment, built by the first test that needs it; null after a failure.
  static Environment* environment() {
    if (env_ || built_) return env_.get();
    built_ = true;
    auto env = std::make_unique<Environment>();
    build(*env);
    if (::testing::Test::HasFatalFailure()) return nullptr;
    env_ = std::move(env);
    return env_.get();
  }

  // Compares one expression; counts non-empty Prometheus results in `non_empty`.
  static void check(Environment& env, const std::string& expr, bool must_have_result,
                    int& non_empty) {
    std::string prom_error;
    Outcome p = fromPrometheus(env.prom->query(expr, env.at_ms, &prom_error), prom_error);
    Outcome d = fromDbpulse(expr, *env.store, env.at_ms);
    EXPECT_EQ(compareFor(expr, p, d), "") << "expr: " << expr;
    if (p.ok && !p.values.empty()) ++non_empty;
    if (must_have_result) {
      EXPECT_TRUE(p.ok && !p.values.empty())
          << "expected a non-empty result for " << expr << (p.ok ? "" : ": " + p.error);
    }
  }

 private:
  static void build(Environment& env) {
    auto serve = [&](const std::string& path, std::string body) {
      ChatServerStub::Response r;
      r.body = std::move(body);
      env.chat.set(path, std::move(r));
    };
    serve("/health", "{}");
    serve("/metrics", chatExposition(0));
    const int closed_port = freeLoopbackPort();  // nothing listens: pg_up 0, redis_up 0

    DbpulseProcess& agent = env.agent;
    agent.start("[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
                agent.stateDir().string() + "\"\nlog_format = \"text\"\n" +
                "[postgres]\ndsn = \"host=127.0.0.1 port=" + std::to_string(closed_port) +
                " dbname=chat user=dbpulse connect_timeout=1\"\n[redis]\naddress = \"127.0.0.1:" +
                std::to_string(closed_port) + "\"\n[companion]\nmetrics_url = \"" +
                env.chat.url("/metrics") + "\"\nhealth_url = \"" + env.chat.url("/health") +
                "\"\nreexport = true\n[collectors.companion]\ninterval = \"250ms\"\n"
                "timeout = \"200ms\"\n[rules]\nfiles = []\n");
    ASSERT_TRUE(agent.waitHealthy(15s));

    env.prom = std::make_unique<PrometheusServer>(agent.port());
    PrometheusServer& prom = *env.prom;
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
    // The store also gets what Prometheus stores in the next seconds: negative offsets and
    // @ reach past the instant.
    env.at_ms = nowMs() - 500;
    const int64_t load_ms = env.at_ms + kFutureMs;
    ASSERT_TRUE(pollUntil(
        [&] {
          nlohmann::json d = prom.query("timestamp(conformance_tick)", std::nullopt);
          return !d.is_null() && !d["result"].empty() &&
                 std::strtod(d["result"][0]["value"][1].get<std::string>().c_str(), nullptr) *
                         1000 >=
                     static_cast<double>(load_ms);
        },
        20s, 50ms))
        << prom.logTail();
    env.store = std::make_unique<SampleStore>(env.clock, SampleStoreOptions{20'000});
    std::string error;
    env.points = loadRawSamples(prom, load_ms, *env.store, env.clock, error);
    // Counters carry their collection time, so Prometheus stores one point per collector
    // run for them rather than one per scrape.
    ASSERT_GT(env.points, 500u) << error;
    env.clock.now_ms = env.at_ms;
  }

  static inline std::unique_ptr<Environment> env_;
  static inline bool built_ = false;
};

TEST_F(RulesConformanceTest, EngineAgreesWithPrometheus) {
  if (!requireBinary(std::filesystem::path(kPrometheusBinary), "prometheus")) return;
  const auto started = std::chrono::steady_clock::now();
  Environment* env = environment();
  ASSERT_NE(env, nullptr);

  int non_empty = 0;
  for (const auto& c : tableCases()) check(*env, c.expr, c.must_have_result, non_empty);

  // @ at a fixed time, and negative offsets from there (the store holds nothing after
  // at_ms, so a negative offset must look at an earlier pinned time).
  const std::string pinned = secondsParam(env->at_ms - 1500);
  for (const std::string& expr :
       {"websocket_active_connections @ " + pinned,
        "websocket_active_connections @ " + pinned + " offset -1s",
        "rate(http_requests_total[2s] @ " + pinned + " offset -500ms)",
        "max_over_time(websocket_active_connections[3s:250ms] @ " + pinned + ")",
        "sum_over_time(http_requests_total[2s:500ms] offset -1s @ " + pinned + ")",
        "timestamp(websocket_active_connections @ " + pinned + ")",
        "predict_linear(websocket_active_connections[1s] @ " + pinned + " offset -1s, 10)"}) {
    check(*env, expr, true, non_empty);
  }

  // Every shipped rule's expression, on the same data.
  const auto pack = std::filesystem::path(DBPULSE_SOURCE_DIR) / "rules" / "default";
  rules::RuleSet set = rules::loadRuleFiles({"*.yml"}, pack.string());
  for (const auto& e : set.errors) ADD_FAILURE() << e.toString();
  int rules_checked = 0, rules_non_empty = 0;
  for (const auto& g : set.groups) {
    for (const auto& r : g.rules) {
      check(*env, r.expr_text, false, rules_non_empty);
      ++rules_checked;
    }
  }
  std::printf(
      "conformance: %zu raw samples; %zu table expressions (%d non-empty), %d shipped "
      "rule expressions (%d non-empty) compared in %.1f s\n",
      env->points, tableCases().size(), non_empty, rules_checked, rules_non_empty,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

// Random expressions over the conformance data, typed as Prometheus types them, so most
// parse; each is built from `seed` alone (replay with DBPULSE_PROMQL_SEED).
class ExprGenerator {
 public:
  ExprGenerator(uint64_t seed, int64_t at_ms) : rng_(seed), pinned_(secondsParam(at_ms - 2500)) {}

  std::string vector(int depth) {
    if (depth <= 0) return selector();
    switch (pick(12)) {
      case 0:
      case 1:
        return selector();
      case 2:
      case 3:
        return rangeCall(depth);
      case 4:
        return instantCall(depth);
      case 5:
      case 6:
        return aggregation(depth);
      case 7:
        return vector(depth - 1) + " " + arithmetic() + " " + scalar(depth - 1);
      case 8:
        return scalar(depth - 1) + " " + arithmetic() + " " + vector(depth - 1);
      case 9:
        return vector(depth - 1) + " " + comparison() + " " + scalar(depth - 1);
      case 10:
        return vectorBinary(depth);
      default:
        return "(" + vector(depth - 1) + ")";
    }
  }

  std::string scalar(int depth) {
    static const char* const kNumbers[] = {"0", "1", "2", "0.5", "-1", "3.7", "100", "1e3"};
    if (depth <= 0) return one(kNumbers);
    switch (pick(6)) {
      case 0:
        return "scalar(" + vector(depth - 1) + ")";
      case 1:
        return "(" + scalar(depth - 1) + " " + arithmetic() + " " + scalar(depth - 1) + ")";
      case 2:
        return "time()";
      case 3:
        return "pi()";
      default:
        return one(kNumbers);
    }
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  template <size_t N>
  const char* one(const char* const (&items)[N]) {
    return items[pick(static_cast<int>(N))];
  }

  std::string metric() {
    static const char* const kSelectors[] = {
        "http_requests_total",
        "http_requests_total{method=\"GET\"}",
        "http_requests_total{status_code=~\"5..\"}",
        "websocket_active_connections",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "chat_route_owner",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_count{route=\"/login\"}",
        "conformance_tick",
        "{__name__=~\"http_request_duration_seconds_(sum|count)\"}",
        "nonexistent_metric",
    };
    return one(kSelectors);
  }

  std::string modifiers() {
    switch (pick(8)) {
      case 0:
        return " offset 1s";
      case 1:
        return " @ end()";
      case 2:
        return " @ " + pinned_;
      case 3:
        return " offset -500ms @ " + pinned_;
      default:
        return "";
    }
  }

  std::string selector() { return metric() + modifiers(); }

  std::string range(int depth) {
    static const char* const kRanges[] = {"1s", "2s", "3s", "5s", "10m"};
    static const char* const kSubRanges[] = {"2s", "3s", "5s"};
    static const char* const kSteps[] = {"250ms", "500ms", "1s", ""};
    if (depth > 1 && pick(3) == 0) {
      ++in_subquery_;
      const std::string body = vector(depth - 2);
      --in_subquery_;
      return "(" + body + ")[" + one(kSubRanges) + ":" + one(kSteps) + "]" + modifiers();
    }
    // Inside a subquery, Prometheus 2.42 moves an @-pinned range with the steps when the
    // function is not step-invariant; dbpulse keeps it pinned (README): not compared.
    const std::string mods = in_subquery_ > 0 ? (pick(4) == 0 ? " offset 1s" : "") : modifiers();
    return metric() + "[" + one(kRanges) + "]" + mods;
  }

  std::string rangeCall(int depth) {
    static const char* const kFunctions[] = {"rate",
                                             "irate",
                                             "increase",
                                             "delta",
                                             "idelta",
                                             "deriv",
                                             "avg_over_time",
                                             "min_over_time",
                                             "max_over_time",
                                             "sum_over_time",
                                             "count_over_time",
                                             "stddev_over_time",
                                             "stdvar_over_time",
                                             "last_over_time",
                                             "present_over_time",
                                             "absent_over_time",
                                             "changes",
                                             "resets"};
    static const char* const kQuantiles[] = {"0", "0.25", "0.5", "0.9", "1"};
    switch (pick(8)) {
      case 0:
        return std::string("quantile_over_time(") + one(kQuantiles) + ", " + range(depth) + ")";
      case 1:
        return "predict_linear(" + range(depth) + ", 30)";
      case 2:
        return "holt_winters(" + range(depth) + ", 0.5, 0.3)";
      default:
        return std::string(one(kFunctions)) + "(" + range(depth) + ")";
    }
  }

  std::string instantCall(int depth) {
    static const char* const kMath[] = {
        "abs",   "ceil",  "floor", "exp",  "ln",   "log2", "log10",     "sqrt",      "sgn",
        "sin",   "cos",   "tan",   "asin", "acos", "atan", "sinh",      "cosh",      "tanh",
        "asinh", "acosh", "atanh", "deg",  "rad",  "sort", "sort_desc", "timestamp", "absent"};
    static const char* const kDate[] = {"hour",        "minute",      "day_of_month",
                                        "day_of_week", "day_of_year", "days_in_month",
                                        "month",       "year"};
    static const char* const kLabels[] = {"route", "method", "status_code", "job", "le", "none"};
    const std::string v = vector(depth - 1);
    switch (pick(10)) {
      case 0:
        return std::string("round(") + v + (pick(2) ? ", 0.5)" : ")");
      case 1:
        return "clamp(" + v + ", 1, 50)";
      case 2:
        return std::string(pick(2) ? "clamp_min(" : "clamp_max(") + v + ", 10)";
      case 3:
        return std::string(one(kDate)) + "(timestamp(" + v + "))";
      case 4:
        return "label_replace(" + v + ", \"" + one(kLabels) + "\", \"x$1\", \"" + one(kLabels) +
               "\", \"(.).*\")";
      case 5:
        return "label_join(" + v + ", \"" + one(kLabels) + "\", \"-\", \"" + one(kLabels) +
               "\", \"" + one(kLabels) + "\")";
      case 6:
        return "histogram_quantile(" + std::string(pick(2) ? "0.9" : "0.5") +
               (pick(2) ? ", http_request_duration_seconds_bucket)"
                        : ", sum by (le, route) (rate(http_request_duration_seconds_bucket[3s])))");
      case 7:
        return "vector(" + scalar(depth - 1) + ")";
      default:
        return std::string(one(kMath)) + "(" + v + ")";
    }
  }

  std::string grouping() {
    static const char* const kLabels[] = {"route", "method", "status_code", "instance",
                                          "le",    "team",   "__name__"};
    switch (pick(4)) {
      case 0:
        return "";
      case 1:
        return std::string(" by (") + one(kLabels) + ") ";
      case 2:
        return std::string(" without (") + one(kLabels) + ") ";
      default:
        return std::string(" by (") + one(kLabels) + ", " + one(kLabels) + ") ";
    }
  }

  std::string aggregation(int depth) {
    static const char* const kOps[] = {"sum",   "avg",     "min",      "max",
                                       "count", "group",   "stddev",   "stdvar",
                                       "topk",  "bottomk", "quantile", "count_values"};
    const std::string op = one(kOps);
    std::string param;
    if (op == "topk" || op == "bottomk") param = std::to_string(1 + pick(3)) + ", ";
    if (op == "quantile") param = std::string(pick(2) ? "0.5" : "0.9") + ", ";
    if (op == "count_values") param = "\"value\", ";
    return op + grouping() + "(" + param + vector(depth - 1) + ")";
  }

  std::string vectorBinary(int depth) {
    static const char* const kMatching[] = {"", " on(route) ", " ignoring(status_code) ",
                                            " on(route, method) ", " on() "};
    static const char* const kSets[] = {"and", "or", "unless"};
    const std::string l = vector(depth - 1), r = vector(depth - 1);
    if (pick(3) == 0) return l + " " + one(kSets) + one(kMatching) + " " + r;
    const std::string op = pick(2) ? arithmetic() : comparison();
    std::string matching = one(kMatching);
    if (!matching.empty() && pick(3) == 0) matching += "group_left ";
    return l + " " + op + matching + " " + r;
  }

  std::string arithmetic() {
    // No %: a last-bit difference between libm and Go (sin, atan2, ...) becomes any
    // difference after it (the table covers %).
    static const char* const kOps[] = {"+", "-", "*", "/", "^", "atan2"};
    return one(kOps);
  }
  std::string comparison() {
    static const char* const kOps[] = {"==", "!=", ">", "<", ">=", "<=", "> bool", "== bool"};
    return one(kOps);
  }

  std::mt19937_64 rng_;
  std::string pinned_;
  int in_subquery_ = 0;
};

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find('\n', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

uint64_t envNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

TEST_F(RulesConformanceTest, RandomExpressionsAgreeWithPrometheus) {
  if (!requireBinary(std::filesystem::path(kPrometheusBinary), "prometheus")) return;
  Environment* env = environment();
  ASSERT_NE(env, nullptr);
  // DBPULSE_PROMQL_EXPR: compare these expressions (one per line) and print both results.
  if (const char* exprs = std::getenv("DBPULSE_PROMQL_EXPR")) {
    for (const std::string& expr : lines(exprs)) {
      std::string prom_error;
      Outcome p = fromPrometheus(env->prom->query(expr, env->at_ms, &prom_error), prom_error);
      Outcome d = fromDbpulse(expr, *env->store, env->at_ms);
      auto show = [](const Outcome& o) {
        std::string out = o.ok ? "" : "error " + o.error;
        for (const auto& [k, v] : o.values) out += "\n  " + k + " " + std::to_string(v);
        return out;
      };
      std::printf("%s\nPrometheus:%s\ndbpulse:%s\n", expr.c_str(), show(p).c_str(),
                  show(d).c_str());
      EXPECT_EQ(compareFor(expr, p, d), "") << expr;
    }
    return;
  }
  const uint64_t seed = envNumber("DBPULSE_PROMQL_SEED", std::random_device{}());
  const uint64_t cases = envNumber("DBPULSE_PROMQL_CASES", 400);
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (replay: DBPULSE_PROMQL_SEED=" + std::to_string(seed) + ")");
  ExprGenerator gen(seed, env->at_ms);
  int non_empty = 0, both_failed = 0;
  const auto started = std::chrono::steady_clock::now();
  for (uint64_t i = 0; i < cases; ++i) {
    const std::string expr = gen.vector(3);
    std::string prom_error;
    Outcome p = fromPrometheus(env->prom->query(expr, env->at_ms, &prom_error), prom_error);
    Outcome d = fromDbpulse(expr, *env->store, env->at_ms);
    EXPECT_EQ(compareFor(expr, p, d), "") << "expr #" << i << ": " << expr;
    if (p.ok && !p.values.empty()) ++non_empty;
    if (!p.ok && !d.ok) ++both_failed;
  }
  std::printf(
      "differential: seed %llu, %llu expressions, %d non-empty, %d errors in both, "
      "%.1f s\n",
      static_cast<unsigned long long>(seed), static_cast<unsigned long long>(cases), non_empty,
      both_failed,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  // Guards the generator: most expressions must produce something to compare.
  EXPECT_GT(non_empty, static_cast<int>(cases / 4));
}

// Rule files, each loaded by promtool check rules and by dbpulse: both accept or both reject.
struct RuleFileCase {
  std::string name;
  std::string yaml;
};

std::string recordFile(const std::string& expr) {
  return "groups:\n- name: g\n  rules:\n  - record: r:x\n    expr: '" + expr + "'\n";
}

std::string alertFile(const std::string& expr, const std::string& label_template,
                      const std::string& annotation_template) {
  return "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: '" + expr +
         "'\n    labels:\n      l: '" + label_template + "'\n    annotations:\n      a: '" +
         annotation_template + "'\n";
}

std::vector<RuleFileCase> ruleFileCases() {
  std::vector<RuleFileCase> out;
  const char* const kExprs[] = {
      // every function
      "abs(m)", "absent(m{a=\"b\"})", "absent_over_time(m[5m])", "acos(m)", "acosh(m)", "asin(m)",
      "asinh(m)", "atan(m)", "atanh(m)", "avg_over_time(m[5m])", "ceil(m)", "changes(m[5m])",
      "clamp(m, 0, 1)", "clamp_max(m, 1)", "clamp_min(m, 0)", "cos(m)", "cosh(m)",
      "count_over_time(m[5m])", "days_in_month()", "day_of_month(m)", "day_of_week()",
      "day_of_year(m)", "deg(m)", "delta(m[5m])", "deriv(m[5m])", "exp(m)", "floor(m)",
      "histogram_count(m)", "histogram_sum(m)", "histogram_fraction(0, 1, m)",
      "histogram_quantile(0.9, rate(m_bucket[5m]))", "holt_winters(m[5m], 0.5, 0.5)", "hour()",
      "idelta(m[5m])", "increase(m[5m])", "irate(m[5m])",
      "label_replace(m, \"a\", \"$1\", \"b\", \"(.*)\")",
      "label_join(m, \"a\", \",\", \"b\", \"c\")", "label_join(m, \"a\", \",\")",
      "last_over_time(m[5m])", "ln(m)", "log10(m)", "log2(m)", "max_over_time(m[5m])",
      "min_over_time(m[5m])", "minute(m)", "month()", "pi()", "predict_linear(m[1h], 3600)",
      "present_over_time(m[5m])", "quantile_over_time(0.9, m[5m])", "rad(m)", "rate(m[5m])",
      "resets(m[5m])", "round(m)", "round(m, 0.1)", "scalar(m)", "sgn(m)", "sin(m)", "sinh(m)",
      "sort(m)", "sort_desc(m)", "sqrt(m)", "stddev_over_time(m[5m])", "stdvar_over_time(m[5m])",
      "sum_over_time(m[5m])", "tan(m)", "tanh(m)", "time()", "timestamp(m)", "vector(1)", "year(m)",
      // every aggregation
      "sum by (a) (m)", "avg without (a) (m)", "min(m)", "max(m) by (a)", "count(m)", "group(m)",
      "stddev(m)", "stdvar(m)", "topk(3, m)", "bottomk by (a) (1, m)", "quantile(0.5, m)",
      "count_values(\"v\", m)",
      // operators, subqueries, @, offsets
      "a atan2 b", "1 atan2 2", "a / on(x) group_left(y) b", "a > bool 1", "a unless on() b",
      "max_over_time(rate(m[1m])[1h:5m])", "m[5m:]", "rate(m[5m:1m] @ 100)", "m @ start()",
      "m @ end() offset 1m", "m offset -5m", "m offset - 5m", "m @ -10", "m @ 0x10",
      "m offset 1m [5m:1m]", "m[5m]", "\"text\"", "1",
      "label_replace(m, \"1bad\", \"\", \"b\", \"(\")",
      // what Prometheus rejects
      "topk(m)", "quantile(0.5, m, 1)", "count_values(1, m)", "rate(m)", "rate(m[0s])",
      "m offset 0s", "m[5m:1m:1m]", "m[5m][5m:]", "(m) @ 10", "sum(m) @ 10", "m @ 1 @ 2",
      "m @ 1e20", "m offset 1m [5m]", "label_join(m, \"a\")", "label_join(m, \"a\", \",\", 1)",
      "limitk(1, m)", "histogram_stddev(m)", "mad_over_time(m[5m])", "sort_by_label(m, \"a\")",
      "1 > 2", "m{a=~\"(\"}", "{}", "m and 1", "sum(m) by (a) by (b)", "-m[5m]", "time()[5m:]"};
  for (const char* e : kExprs) out.push_back({std::string("expr ") + e, recordFile(e)});
  // Alert templates: label and annotation, accepted and rejected as Go's parser does.
  const char* const kTemplates[] = {
      "{{ $labels.instance }} {{ $value }} {{ .Labels.job }} {{ .Value }}",
      "{{ $externalLabels.cluster }} {{ $externalURL }}",
      "{{ if gt $value 1.0 }}big{{ else if lt $value 0.5 }}small{{ else }}mid{{ end }}",
      "{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}",
      "{{ range $labels }}{{ if eq . \"x\" }}{{ break }}{{ end }}{{ continue }}{{ end }}",
      "{{ with $labels.db }}{{ . }}{{ else }}none{{ end }}", "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
      "{{ with query \"up == 0\" }}{{ . | first | label \"instance\" }}{{ end }}",
      "{{ query \"up\" | first | value | humanize }} {{ (query \"up\" | first).Value }}",
      "{{ range query \"up\" | sortByLabel \"job\" }}{{ .Labels.job }} {{ strvalue . }}{{ end }}",
      "{{ humanize1024 $value }} {{ humanizeDuration $value }} {{ humanizePercentage $value }}",
      "{{ humanizeTimestamp $value }} {{ printf \"%.2f %s\" $value \"x\" }}",
      "{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }} {{ match \"a.*\" \"abc\" }}",
      "{{ title \"a b\" }} {{ toUpper \"a\" }} {{ toLower \"A\" }} {{ safeHtml \"<b>\" }}",
      "{{ (args 1 2).arg0 }} {{ graphLink \"up\" }} {{ tableLink \"up\" }}",
      "{{ and 1 0 }} {{ or 0 1 }} {{ not true }} {{ len $labels }} {{ index $labels \"a\" }}",
      "{{ html \"<\" }} {{ js \"x\" }} {{ urlquery \"a b\" }} {{ print 1 }} {{ println 2 }}",
      "{{ pathPrefix }} {{ externalURL }} {{- /* a comment */ -}}",
      // rejected
      "{{ nope }}", "{{ $labels.x", "{{ end }}", "{{ if true }}x", "{{ $undefined }}",
      "{{ $x = 1 }}", "{{ else }}", "{{ break }}", "{{ 1 | 2 }}", "{{ \"unterminated }}"};
  for (const char* t : kTemplates) {
    out.push_back({std::string("label template ") + t, alertFile("up == 0", t, "x")});
    out.push_back({std::string("annotation template ") + t, alertFile("up == 0", "x", t)});
  }
  return out;
}

TEST_F(RulesConformanceTest, RuleFilesLoadExactlyWhenPromtoolAcceptsThem) {
  if (!requireBinary(std::filesystem::path(kPromtoolBinary), "prometheus")) return;
  TempDir dir("dbpulse-promtool-");
  int accepted = 0, rejected = 0;
  for (const auto& c : ruleFileCases()) {
    const auto file = dir.path() / "rules.yml";
    writeFile(file, c.yaml);
    CommandResult check =
        runCommand({std::string(kPromtoolBinary), "check", "rules", file.string()}, 30s);
    ASSERT_TRUE(check.exit_code.has_value()) << "promtool timed out on " << c.name;
    const bool promtool_ok = *check.exit_code == 0;
    rules::RuleSet set = rules::parseRuleFile(c.yaml, "rules.yml");
    EXPECT_EQ(set.ok(), promtool_ok)
        << c.name << "\n"
        << c.yaml << "promtool: " << check.describe()
        << "\ndbpulse: " << (set.errors.empty() ? std::string("loaded") : set.errors[0].toString());
    (promtool_ok ? accepted : rejected)++;
  }
  std::printf("rule files: %d accepted and %d rejected by promtool, dbpulse agreeing\n", accepted,
              rejected);
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace dbpulse::testing
