#include "agent/admin_audit.h"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace dbpulse {

const char* adminTokenName(AdminToken token) {
  switch (token) {
    case AdminToken::kAbsent:
      return "absent";
    case AdminToken::kValid:
      return "valid";
    case AdminToken::kInvalid:
      return "invalid";
    case AdminToken::kUnchecked:
      return "unchecked";
  }
  return "?";
}

std::string auditLine(const AdminCall& call) {
  char ms[32];
  std::snprintf(ms, sizeof(ms), "%.3f", static_cast<double>(call.duration.count()) / 1000.0);
  return "admin call: client=" + (call.remote_addr.empty() ? "-" : call.remote_addr) +
         " token=" + adminTokenName(call.token) + " method=" + call.method + " path=" + call.path +
         " status=" + std::to_string(call.status) + " duration_ms=" + ms;
}

void logAdminCall(const AdminCall& call) {
  const bool refused = call.status == 401 || call.status == 403 || call.status == 429;
  spdlog::log(refused ? spdlog::level::warn : spdlog::level::info, "{}", auditLine(call));
}

}  // namespace dbpulse
