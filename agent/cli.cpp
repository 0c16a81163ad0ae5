#include "agent/cli.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <ostream>

#include "agent/advisor.h"
#include "agent/pipeline.h"
#include "exporters/prometheus/exposition.h"

namespace dbpulse {

int suggestIndexesCommand(const Config& config, bool json, std::ostream& out, std::ostream& err) {
  auto result = dbpulse::suggestIndexes(advisorOptions(config), [&err](const std::string& line) {
    err << "advisor: " << line << "\n";
  });
  if (!result.ok()) {
    err << "dbpulse suggest-indexes: " << result.status().toString() << "\n";
    return 1;
  }
  out << (json ? suggestionsJson(*result) : suggestionsTable(*result));
  return 0;
}

int runOnceCommand(const Config& config, OutputFormat format, std::ostream& out) {
  SystemClock clock;
  SampleStore store(clock);
  auto p = buildPipeline(config, store, clock, nullptr);
  p->scheduler->runAllOnce();
  bool all_ok = true;
  for (const auto& s : p->scheduler->status()) {
    if (s.last_success) continue;
    if (!s.disabled_reason.empty()) {
      // Switched off by a missing prerequisite: a fact about the server, not a failure.
      spdlog::warn("collector {} is off: {}", s.name, s.last_error);
      continue;
    }
    all_ok = false;
    spdlog::error("collector {}: {}", s.name, s.last_error);
  }
  auto snap = store.snapshot();
  if (format == OutputFormat::kPrometheus) {
    out << exporters::renderText(*snap);
  } else {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& fam : snap->families) {
      for (const auto& s : fam.series) {
        nlohmann::json labels = nlohmann::json::object();
        for (const auto& l : s.labels.items()) labels[l.name] = l.value;
        j.push_back({{"name", fam.name}, {"labels", labels}, {"value", s.value}});
      }
    }
    out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  return all_ok ? 0 : 1;
}

}  // namespace dbpulse
