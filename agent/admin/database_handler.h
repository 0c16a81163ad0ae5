#pragma once
// The /admin/database/* routes. metrics and size read what the collectors found on their
// last run (no database I/O; null collectors give empty sections); index-suggestions and
// analyze-query query the database at request time, one at a time with the hourly advisor
// job (AdvisorGate: 429 when busy).

#include <memory>
#include <string>

#include "agent/admin/agent_view.h"
#include "agent/http_server.h"

namespace dbpulse {

class AdvisorGate;
struct Snapshot;
namespace collectors {
class StatementsCollector;
class LocksCollector;
class SizeCollector;
}  // namespace collectors

namespace admin {

class DatabaseHandler {
 public:
  DatabaseHandler(AgentView& view, std::shared_ptr<AdvisorGate> advisor_gate)
      : view_(view), advisor_gate_(std::move(advisor_gate)) {}

  // GET /admin/database/metrics: connections by state, utilization, cache hit ratios, top
  // slow statements (with text), longest transaction, blocked sessions.
  HttpResponse metrics(const HttpRequest& request) const;
  // GET /admin/database/size: databases, tables and indexes by size.
  HttpResponse size(const HttpRequest& request) const;
  // GET /admin/database/index-suggestions: the advisor once; its counts replace the hourly
  // job's dbpulse_index_suggestions.
  HttpResponse indexSuggestions(const HttpRequest& request) const;
  // POST /admin/database/analyze-query {"query": "SELECT ...", "analyze": false}.
  HttpResponse analyzeQuery(const HttpRequest& request) const;

 private:
  AgentView& view_;
  const std::shared_ptr<AdvisorGate> advisor_gate_;
};

// The JSON bodies of metrics and size, from a snapshot and the collectors' details.
std::string databaseMetricsJson(const Snapshot& snapshot,
                                const collectors::StatementsCollector* statements,
                                const collectors::LocksCollector* locks);
std::string databaseSizeJson(const collectors::SizeCollector* size);

}  // namespace admin
}  // namespace dbpulse
