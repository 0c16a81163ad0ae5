#include "integration/harness/prometheus_server.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "agent/core/text.h"
#include "integration/harness/http_client.h"
#include "integration/harness/net.h"

namespace dbpulse::testing {

using namespace std::chrono_literals;

namespace {

nlohmann::json apiGet(const std::string& url, std::string* error) {
  const HttpResponse r = httpGet(url, 10s);
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") {
    if (error != nullptr) *error = j.is_discarded() ? r.body + r.error : j.value("error", r.body);
    return nullptr;
  }
  return j["data"];
}

}  // namespace

PrometheusOptions scrapeOne(const std::string& job, const std::string& target) {
  PrometheusOptions o;
  o.jobs.push_back({job, {target}});
  return o;
}

PrometheusServer::PrometheusServer(const PrometheusOptions& options) : port_(freeLoopbackPort()) {
  std::string yml = "global:\n  scrape_interval: " + options.scrape_interval +
                    "\n  scrape_timeout: " + options.scrape_timeout +
                    "\n  evaluation_interval: " + options.evaluation_interval + "\n";
  if (!options.rule_files.empty()) {
    yml += "rule_files:\n";
    for (const auto& f : options.rule_files) yml += "  - \"" + f.string() + "\"\n";
  }
  yml += "scrape_configs:\n";
  for (const auto& job : options.jobs) {
    yml += "  - job_name: \"" + job.name + "\"\n    static_configs:\n      - targets: [";
    for (std::size_t i = 0; i < job.targets.size(); ++i) {
      yml += (i ? ", \"" : "\"") + job.targets[i] + "\"";
    }
    yml += "]\n";
  }
  writeFile(dir_.path() / "prometheus.yml", yml);
  ProcessOptions o;
  o.argv = {std::string(kPrometheusBinary),
            "--config.file=" + (dir_.path() / "prometheus.yml").string(),
            "--storage.tsdb.path=" + (dir_.path() / "data").string(),
            "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
  o.log_file = dir_.path() / "prometheus.log";
  process_ = std::make_unique<ChildProcess>(o);
}

int PrometheusServer::seriesCount(const std::string& expr, std::string* error) {
  const auto data = apiGet(url() + "/api/v1/query?query=" + percentEncode(expr), error);
  if (data.is_null()) return -1;
  const auto& result = data["result"];
  return result.is_array() ? static_cast<int>(result.size()) : 1;
}

std::vector<double> PrometheusServer::rangeValues(const std::string& expr, double start_s,
                                                  double end_s, double step_s) {
  const auto data = apiGet(url() + "/api/v1/query_range?query=" + percentEncode(expr) +
                               "&start=" + std::to_string(start_s) +
                               "&end=" + std::to_string(end_s) + "&step=" + std::to_string(step_s),
                           nullptr);
  std::vector<double> out;
  if (data.is_null()) return out;
  const auto& result = data["result"];
  if (!result.is_array() || result.empty()) return out;
  for (const auto& v : result[0]["values"]) out.push_back(std::stod(v[1].get<std::string>()));
  return out;
}

std::vector<std::string> PrometheusServer::labelValues(const std::string& match,
                                                       const std::string& label) {
  std::set<std::string> values;
  if (match.empty()) {
    const auto data = apiGet(url() + "/api/v1/label/" + percentEncode(label) + "/values", nullptr);
    if (data.is_array()) {
      for (const auto& v : data) values.insert(v.get<std::string>());
    }
  } else {
    const auto data = apiGet(url() + "/api/v1/series?match[]=" + percentEncode(match), nullptr);
    if (data.is_array()) {
      for (const auto& s : data) {
        if (s.contains(label)) values.insert(s[label].get<std::string>());
      }
    }
  }
  return {values.begin(), values.end()};
}

std::vector<std::string> PrometheusServer::ruleHealth() {
  std::vector<std::string> out;
  const auto data = apiGet(url() + "/api/v1/rules", nullptr);
  if (data.is_null()) return out;
  for (const auto& g : data["groups"]) {
    for (const auto& r : g["rules"]) {
      std::string line = r.value("name", "") + " " + r.value("health", "");
      if (!r.value("lastError", "").empty()) line += " " + r.value("lastError", "");
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace dbpulse::testing
