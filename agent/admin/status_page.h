#pragma once
// The public routes: GET / (the operator's page: health checks, queries, indexes, space,
// maintenance, alerts, collectors, sparklines; status_html.h), /metrics, /health (the
// process answers) and /health/ready (the collectors have reported once). None of them
// does database I/O: the page reads the store, the collectors' last results, the advisor's
// last answer and the maintenance history.

#include <functional>
#include <memory>

#include "agent/admin/agent_view.h"
#include "agent/http_server.h"

namespace dbpulse {
class AdvisorGate;
namespace exporters {
class Exposition;
}

namespace admin {

class HealthChecker;

class StatusPage {
 public:
  // `detailed` says whether a caller may see statement texts, alert labels and summaries
  // (they may carry literals, database and user names) and the maintenance actions: the
  // admin routes' rule. `advisor_gate` (may be null) holds the advisor's latest answer.
  StatusPage(AgentView& view, exporters::Exposition& exposition,
             std::function<bool(const HttpRequest&)> detailed,
             std::shared_ptr<AdvisorGate> advisor_gate);
  ~StatusPage();

  HttpResponse page(const HttpRequest& request) const;
  HttpResponse metrics(const HttpRequest& request) const;
  HttpResponse health(const HttpRequest& request) const;
  // 200 "ready" once every collector (not on standby, not a background job) has finished
  // its first run; 503 "not_ready" with reasons before. Per-collector details either way.
  HttpResponse ready(const HttpRequest& request) const;

 private:
  AgentView& view_;
  exporters::Exposition& exposition_;
  const std::function<bool(const HttpRequest&)> detailed_;
  const std::shared_ptr<AdvisorGate> advisor_gate_;
  const std::unique_ptr<const HealthChecker> checker_;
};

}  // namespace admin
}  // namespace dbpulse
