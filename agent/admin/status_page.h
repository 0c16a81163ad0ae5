#pragma once
// The public routes: GET / (an HTML page: readiness, alerts, collectors), /metrics,
// /health (the process answers) and /health/ready (the collectors have reported once).

#include <functional>

#include "agent/admin/agent_view.h"
#include "agent/http_server.h"

namespace dbpulse {
namespace exporters {
class Exposition;
}

namespace admin {

class StatusPage {
 public:
  // `detailed` says whether a caller may see alert labels and summaries (they may carry
  // database and user names): the admin routes' rule.
  StatusPage(AgentView& view, exporters::Exposition& exposition,
             std::function<bool(const HttpRequest&)> detailed)
      : view_(view), exposition_(exposition), detailed_(std::move(detailed)) {}

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
};

}  // namespace admin
}  // namespace dbpulse
