#include "agent/admin/rules_handler.h"

#include <nlohmann/json.hpp>

#include "rules/rule_manager.h"

namespace dbpulse::admin {

HttpResponse RulesHandler::rules(const HttpRequest&) const {
  return HttpResponse::json(200, view_.rules().rulesJson());
}

HttpResponse RulesHandler::alerts(const HttpRequest&) const {
  return HttpResponse::json(200, view_.rules().alertsJson());
}

HttpResponse RulesHandler::reload(const HttpRequest&) const {
  auto errors = view_.reloadFromFile();
  if (errors.empty()) return HttpResponse::json(200, "{\"status\":\"reloaded\"}\n");
  nlohmann::json j{{"error", "config rejected; the running configuration stays"},
                   {"code", "invalid_config"}};
  for (const auto& e : errors) j["details"].push_back(e.toString());
  return HttpResponse::json(
      400, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace dbpulse::admin
