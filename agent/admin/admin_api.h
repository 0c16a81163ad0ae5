#pragma once
// AdminApi: the agent's HTTP route table — the public routes (/, /metrics, /health,
// /health/ready) and the /admin/* routes with their authentication, rate limit and audit
// line — and the handlers behind them, one class per concern (database_handler.h,
// maintenance_handler.h, rules_handler.h, status_page.h), each reading the agent through
// an AgentView. Adding an endpoint: a handler method, one line in install(), a unit test.

#include <functional>
#include <memory>
#include <string>

#include "agent/admin/agent_view.h"
#include "agent/admin/database_handler.h"
#include "agent/admin/maintenance_handler.h"
#include "agent/admin/responses.h"
#include "agent/admin/rules_handler.h"
#include "agent/admin/status_page.h"
#include "agent/admin_audit.h"
#include "agent/core/clock.h"
#include "agent/core/status.h"
#include "agent/http_server.h"
#include "agent/rate_limiter.h"

namespace dbpulse {

class AdvisorGate;
namespace exporters {
class Exposition;
}

namespace admin {

class AdminApi {
 public:
  // `view` and `exposition` must outlive the HttpServer the routes are installed on.
  AdminApi(AgentView& view, const Clock& clock, exporters::Exposition& exposition,
           std::shared_ptr<AdvisorGate> advisor_gate);
  AdminApi(const AdminApi&) = delete;
  AdminApi& operator=(const AdminApi&) = delete;

  // Registers every route on `http` (before it starts).
  void install(HttpServer& http);

  // Whether the admin routes would let `request` in (token or loopback rule), rate limit
  // aside. The status page shows alert details only to such callers.
  bool admits(const HttpRequest& request) const { return checkAdmin(request).denial.status == 0; }

 private:
  struct AdminCheck {
    HttpResponse denial;  // status 0 = allowed
    AdminToken token;
  };
  // Needs `Authorization: Bearer <token>` when agent.admin_token_file is set; without a
  // token it answers only when the agent listens on a loopback address (403 otherwise).
  AdminCheck checkAdmin(const HttpRequest& request) const;
  // An /admin/* route: checked as above, rate-limited per client address
  // (agent.admin_rate_limit/_burst: 429 with Retry-After), run on the HTTP server's slow
  // pool (never delaying probes), each call leaving one audit log line.
  void adminRoute(HttpServer& http, const std::string& method, const std::string& path,
                  HttpHandler handler);

  AgentView& view_;
  RateLimiter limiter_;
  DatabaseHandler database_;
  MaintenanceHandler maintenance_;
  RulesHandler rules_;
  StatusPage status_;
};

}  // namespace admin
}  // namespace dbpulse
