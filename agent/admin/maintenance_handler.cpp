#include "agent/admin/maintenance_handler.h"

#include <nlohmann/json.hpp>

#include "agent/admin/responses.h"
#include "agent/maintenance.h"

namespace dbpulse::admin {

HttpResponse MaintenanceHandler::status(const HttpRequest&) const {
  std::shared_ptr<MaintenanceEngine> m = view_.maintenance();
  if (!m) {
    return HttpResponse::json(
        200, "{\"enabled\": false, \"reason\": \"no [postgres] dsn\", \"history\": []}\n");
  }
  return HttpResponse::json(200, m->statusJson());
}

HttpResponse MaintenanceHandler::optimize(const HttpRequest& request) const {
  nlohmann::json body = request.body.empty() ? nlohmann::json::object()
                                             : nlohmann::json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return HttpResponse::error(
        400, "invalid_json",
        "the body must be a JSON object: {\"tables\": [\"public.messages\"], "
        "\"dry_run\": false}");
  }
  std::vector<std::string> tables;
  for (const auto& [key, value] : body.items()) {
    if (key == "tables") {
      if (!value.is_array()) {
        return HttpResponse::error(400, "invalid_request", "\"tables\" must be an array of names");
      }
      for (const auto& t : value) {
        if (!t.is_string() || t.get<std::string>().empty() || t.get<std::string>().size() > 200) {
          return HttpResponse::error(400, "invalid_request",
                                     "\"tables\" must hold table names (\"schema.table\")");
        }
        tables.push_back(t.get<std::string>());
      }
    } else if (key == "dry_run") {
      if (!value.is_boolean()) {
        return HttpResponse::error(400, "invalid_request", "\"dry_run\" must be true or false");
      }
    } else {
      return HttpResponse::error(400, "invalid_request",
                                 "unknown field \"" + key + "\" (tables, dry_run)");
    }
  }
  std::shared_ptr<MaintenanceEngine> m = view_.maintenance();
  if (!m) return HttpResponse::error(503, "not_configured", "maintenance needs [postgres] dsn");
  if (!view_.isLeader()) {
    return HttpResponse::error(503, "not_leader",
                               "another agent is the elected leader for this database; send the "
                               "request to it (dbpulse_leader == 1)");
  }
  auto id = m->requestRun(tables, body.value("dry_run", false));
  if (!id.ok()) {
    const Status& s = id.status();
    if (s.code() == StatusCode::kInvalidArgument) {
      return HttpResponse::error(400, "unknown_tables", s.message());
    }
    if (s.code() == StatusCode::kUnavailable && s.reason() == "busy") {
      return tooBusy(s.message(), "30");
    }
    return statusError(s);
  }
  nlohmann::json out{{"run_id", *id}, {"status", "/admin/maintenance"}};
  return HttpResponse::json(
      202, out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace dbpulse::admin
