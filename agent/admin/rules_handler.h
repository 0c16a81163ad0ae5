#pragma once
// The rule engine's routes: GET /admin/rules, GET /admin/alerts, and POST /admin/reload
// (re-reads the config file; 400 invalid_config with the errors when it is rejected).

#include "agent/admin/agent_view.h"
#include "agent/http_server.h"

namespace dbpulse::admin {

class RulesHandler {
 public:
  explicit RulesHandler(AgentView& view) : view_(view) {}

  HttpResponse rules(const HttpRequest& request) const;
  HttpResponse alerts(const HttpRequest& request) const;
  HttpResponse reload(const HttpRequest& request) const;

 private:
  AgentView& view_;
};

}  // namespace dbpulse::admin
