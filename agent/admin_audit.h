#pragma once
// The audit record of one /admin/* call and the one log line it becomes. The line names the
// caller (remote address, whether a bearer token was presented and whether it was valid),
// method, path, status and duration — never the token, the query string or the body.

#include <chrono>
#include <string>

namespace dbpulse {

enum class AdminToken {
  kAbsent,     // no Authorization header
  kValid,      // the configured bearer token
  kInvalid,    // a header that is not the configured token
  kUnchecked,  // a header, but no token configured (loopback listener)
};

const char* adminTokenName(AdminToken token);

struct AdminCall {
  std::string remote_addr;
  AdminToken token = AdminToken::kAbsent;
  std::string method;
  std::string path;  // a registered route's path: not client-chosen text
  int status = 0;
  std::chrono::microseconds duration{0};
};

// "admin call: client=127.0.0.1 token=valid method=POST path=/admin/reload status=200
// duration_ms=12.345"
std::string auditLine(const AdminCall& call);

// Writes auditLine(call) to the log (info; warn for 401, 403 and 429).
void logAdminCall(const AdminCall& call);

}  // namespace dbpulse
