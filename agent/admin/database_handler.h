#pragma once
// The /admin/database/* routes. metrics and size read what the collectors found on their
// last run (no database I/O; null collectors give empty sections); index-suggestions and
// analyze-query query the database at request time, one at a time with the hourly advisor
// job (AdvisorGate: 429 when busy).

#include <memory>
#include <string>
#include <vector>

#include "agent/admin/agent_view.h"
#include "agent/http_server.h"

namespace dbpulse {

class AdvisorGate;
struct Snapshot;
namespace collectors {
struct BlockedSession;
struct SizeReport;
struct TopStatement;
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

// The JSON bodies of metrics and size, from a snapshot and the collectors' details (empty
// when the collector is off; a null size report gives empty sections).
std::string databaseMetricsJson(const Snapshot& snapshot,
                                const std::vector<collectors::TopStatement>& statements,
                                const std::vector<collectors::BlockedSession>& blocked_sessions);
std::string databaseSizeJson(const collectors::SizeReport* size);

}  // namespace admin
}  // namespace dbpulse
