#pragma once
// The metric name table (collectors/metric_names.tsv, see collectors/metric_names.py) for
// tests that compare a live /metrics with it, and promtool's lint with the peers' names
// excused.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dbpulse::testing {

struct MetricNameRow {
  std::string name;  // a trailing '*' stands for a family of names (pg_settings_*)
  std::string type;  // gauge, counter, untyped
  std::string labels;
  std::string collector;  // catalogue name, or "agent"
  std::string source;
  std::string pg;    // "13-18", "14-18", "13-16", "17-18" or "" (not PostgreSQL)
  std::string peer;  // postgres_exporter, redis_exporter, process-exporter, dbpulse
  std::string when;  // "always" or a condition
  // Whether this row applies to PostgreSQL `major` (true for rows without a range).
  bool onMajor(int major) const;
  bool matches(std::string_view family) const;
};

// The table of the source tree; throws HarnessError when it cannot be read or parsed.
std::vector<MetricNameRow> readMetricNames();

// The row for family `name`: an exact row first, else the longest matching '*' row.
const MetricNameRow* findMetricName(const std::vector<MetricNameRow>& rows, std::string_view name);

// "# TYPE name type" lines of an exposition: family -> type.
std::map<std::string, std::string> exposedTypes(std::string_view exposition);

// `promtool check metrics` on `exposition`, with the problems reported for a peer's name
// (postgres_exporter, redis_exporter and process-exporter break promtool's naming rules
// and dashboards need their names as they are) left out: "" when nothing else was found,
// else promtool's remaining lines. nullopt when promtool did not run to completion.
std::optional<std::string> lintProblemsBesidesPeerNames(const std::string& exposition);

}  // namespace dbpulse::testing
