#pragma once

// A real Prometheus (Debian's `prometheus` 2.42) on a free loopback port, in a temporary
// directory of its own, scraping the given targets; for tests that query what Prometheus
// itself makes of an exposition (dashboards, upstream rule files, rates).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "integration/harness/child_process.h"
#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

inline constexpr std::string_view kPrometheusBinary = "/usr/bin/prometheus";

struct ScrapeJob {
  std::string name;                  // the job label
  std::vector<std::string> targets;  // host:port
};

struct PrometheusOptions {
  std::vector<ScrapeJob> jobs;
  std::string scrape_interval = "500ms";
  std::string scrape_timeout = "400ms";
  std::string evaluation_interval = "1s";
  std::vector<std::filesystem::path> rule_files;
};

// Options for one job with one target, scraped every 500 ms.
PrometheusOptions scrapeOne(const std::string& job, const std::string& target);

class PrometheusServer {
 public:
  // Starts it (ready is not awaited: queries before the first scrape find nothing).
  explicit PrometheusServer(const PrometheusOptions& options);
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Series returned by an instant query (a scalar or string counts as one); -1 with
  // `error` set when Prometheus rejects the query.
  int seriesCount(const std::string& expr, std::string* error);
  // The values of the first series of a range query from `start_s` to `end_s` (Unix
  // seconds) every `step_s`; empty when there is none.
  std::vector<double> rangeValues(const std::string& expr, double start_s, double end_s,
                                  double step_s);
  // Grafana's label_values(): the values of `label` among the series matching `match`
  // (every series when `match` is empty), sorted.
  std::vector<std::string> labelValues(const std::string& match, const std::string& label);
  // The rule groups' rules as /api/v1/rules lists them: "name health [lastError]".
  std::vector<std::string> ruleHealth();

 private:
  TempDir dir_{"dbpulse-prometheus-"};
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace dbpulse::testing
