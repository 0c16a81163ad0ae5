#include "integration/harness/metric_names.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "integration/harness/child_process.h"
#include "integration/harness/harness_error.h"
#include "integration/harness/require.h"

namespace dbpulse::testing {
namespace {

std::vector<std::string> splitTabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  return out;
}

}  // namespace

bool MetricNameRow::onMajor(int major) const {
  if (pg.empty()) return true;
  const size_t dash = pg.find('-');
  const int low = std::stoi(pg.substr(0, dash));
  const int high = dash == std::string::npos ? low : std::stoi(pg.substr(dash + 1));
  return major >= low && major <= high;
}

bool MetricNameRow::matches(std::string_view family) const {
  if (!name.empty() && name.back() == '*') {
    return family.substr(0, name.size() - 1) == std::string_view(name).substr(0, name.size() - 1);
  }
  return family == name;
}

std::vector<MetricNameRow> readMetricNames() {
  const std::string path = std::string(DBPULSE_SOURCE_DIR) + "/collectors/metric_names.tsv";
  std::ifstream in(path);
  if (!in) throw HarnessError("cannot read " + path);
  std::vector<MetricNameRow> rows;
  std::string line;
  bool header = true;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (header) {
      header = false;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const auto f = splitTabs(line);
    if (f.size() != 8) throw HarnessError(path + ":" + std::to_string(n) + ": not 8 columns");
    rows.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]});
  }
  return rows;
}

const MetricNameRow* findMetricName(const std::vector<MetricNameRow>& rows, std::string_view name) {
  const MetricNameRow* best = nullptr;
  for (const auto& r : rows) {
    if (r.name == name) return &r;
    if (r.matches(name) && (best == nullptr || r.name.size() > best->name.size())) best = &r;
  }
  return best;
}

std::map<std::string, std::string> exposedTypes(std::string_view exposition) {
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(exposition)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream fields(line.substr(7));
    std::string name, type;
    fields >> name >> type;
    out[name] = type;
  }
  return out;
}

std::optional<std::string> lintProblemsBesidesPeerNames(const std::string& exposition) {
  RunOptions options;
  options.stdin_text = exposition;
  const CommandResult lint =
      runCommand({std::string(kPromtool), "check", "metrics"}, std::chrono::seconds(30), options);
  if (!lint.exit_code) return std::nullopt;
  const auto rows = readMetricNames();
  std::string rest;
  std::istringstream in(lint.out + "\n" + lint.err);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const std::string metric = line.substr(0, line.find(' '));
    const MetricNameRow* row = findMetricName(rows, metric);
    if (row != nullptr && row->peer != "dbpulse") continue;  // the peer's name, as it is
    rest += line + "\n";
  }
  if (rest.empty() && *lint.exit_code != 0 && *lint.exit_code != 3) {
    rest = "promtool exited " + std::to_string(*lint.exit_code) + ": " + lint.describe();
  }
  return rest;
}

}  // namespace dbpulse::testing
