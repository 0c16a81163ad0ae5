#pragma once
// The maintenance routes: GET /admin/maintenance (the engine's state and run history) and
// POST /admin/database/optimize (a manual run, on the elected leader only).

#include "agent/admin/agent_view.h"
#include "agent/http_server.h"

namespace dbpulse::admin {

class MaintenanceHandler {
 public:
  explicit MaintenanceHandler(AgentView& view) : view_(view) {}

  HttpResponse status(const HttpRequest& request) const;
  // Body {"tables": ["public.messages"], "dry_run": false}, both optional: 202 with the
  // run id, 400 for a bad body or unknown tables, 429 while a run is busy, 503 without a
  // DSN or on a follower.
  HttpResponse optimize(const HttpRequest& request) const;

 private:
  AgentView& view_;
};

}  // namespace dbpulse::admin
