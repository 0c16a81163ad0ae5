#include "agent/admin/admin_api.h"

#include <chrono>
#include <utility>

namespace dbpulse::admin {
namespace {

bool isLoopback(const std::string& host) {
  return host.rfind("127.", 0) == 0 || host == "::1" || host == "localhost";
}

// Compares without an early exit, so response time does not reveal a token prefix.
bool constantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

}  // namespace

AdminApi::AdminApi(AgentView& view, const Clock& clock, exporters::Exposition& exposition,
                   std::shared_ptr<AdvisorGate> advisor_gate)
    : view_(view),
      limiter_(clock),
      database_(view, advisor_gate),
      maintenance_(view),
      rules_(view),
      status_(
          view, exposition, [this](const HttpRequest& r) { return admits(r); },
          std::move(advisor_gate)) {}

void AdminApi::install(HttpServer& http) {
  // `handler` of `object`, a member of this AdminApi, bound for the route table.
  auto bind = [](const auto& object, auto handler) {
    return [&object, handler](const HttpRequest& r) { return (object.*handler)(r); };
  };
  // The same on a full-size stack (responses.h).
  auto deep = [](const auto& object, auto handler) {
    return [&object, handler](const HttpRequest& r) {
      return onFullStack([&] { return (object.*handler)(r); });
    };
  };
  adminRoute(http, "GET", "/admin/rules", bind(rules_, &RulesHandler::rules));
  adminRoute(http, "GET", "/admin/alerts", bind(rules_, &RulesHandler::alerts));
  adminRoute(http, "GET", "/admin/database/metrics", bind(database_, &DatabaseHandler::metrics));
  adminRoute(http, "GET", "/admin/database/size", bind(database_, &DatabaseHandler::size));
  adminRoute(http, "GET", "/admin/database/index-suggestions",
             deep(database_, &DatabaseHandler::indexSuggestions));
  adminRoute(http, "POST", "/admin/database/analyze-query",
             deep(database_, &DatabaseHandler::analyzeQuery));
  adminRoute(http, "GET", "/admin/maintenance", bind(maintenance_, &MaintenanceHandler::status));
  adminRoute(http, "POST", "/admin/database/optimize",
             deep(maintenance_, &MaintenanceHandler::optimize));
  adminRoute(http, "POST", "/admin/reload", deep(rules_, &RulesHandler::reload));
  http.route("GET", "/metrics", bind(status_, &StatusPage::metrics));
  http.route("GET", "/health", bind(status_, &StatusPage::health));
  http.route("GET", "/health/ready", bind(status_, &StatusPage::ready));
  http.route("GET", "/", bind(status_, &StatusPage::page));
}

AdminApi::AdminCheck AdminApi::checkAdmin(const HttpRequest& request) const {
  const std::string token = view_.config().agent.admin_token;
  const std::string host = view_.boundHost();  // not the config's: a reload does not move it
  const bool presented = !request.authorization.empty();
  if (token.empty()) {
    const AdminToken seen = presented ? AdminToken::kUnchecked : AdminToken::kAbsent;
    if (isLoopback(host)) return {HttpResponse{0, "", "", {}}, seen};
    return {
        HttpResponse::error(403, "forbidden",
                            "admin routes need agent.admin_token_file when listening on " + host),
        seen};
  }
  const std::string prefix = "Bearer ";
  if (request.authorization.rfind(prefix, 0) != 0 ||
      !constantTimeEquals(request.authorization.substr(prefix.size()), token)) {
    auto r = HttpResponse::error(401, "unauthorized", "missing or wrong bearer token");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return {std::move(r), presented ? AdminToken::kInvalid : AdminToken::kAbsent};
  }
  return {HttpResponse{0, "", "", {}}, AdminToken::kValid};
}

void AdminApi::adminRoute(HttpServer& http, const std::string& method, const std::string& path,
                          HttpHandler handler) {
  auto guarded = [this, method, path, handler = std::move(handler)](const HttpRequest& request) {
    const auto started = std::chrono::steady_clock::now();
    AdminCheck check = checkAdmin(request);
    AdminCall call{request.remote_addr, check.token, method, path, 0, {}};
    const Config config = view_.config();
    const RateLimit limit{static_cast<double>(config.agent.admin_rate_limit),
                          static_cast<double>(config.agent.admin_rate_burst)};
    // Before the token check: guessing tokens is rate-limited too.
    const RateLimiter::Decision decision = limiter_.take(request.remote_addr, limit);
    HttpResponse response;
    if (!decision.allowed) {
      response = HttpResponse::error(429, "rate_limited",
                                     "too many admin calls from " + request.remote_addr);
      response.headers.emplace_back("Retry-After", std::to_string(decision.retry_after_seconds));
    } else if (check.denial.status != 0) {
      response = std::move(check.denial);
    } else {
      try {
        response = handler(request);
      } catch (...) {  // the server answers 500; the call is still audited
        call.status = 500;
        call.duration = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        logAdminCall(call);
        throw;
      }
    }
    call.status = response.status;
    call.duration = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - started);
    logAdminCall(call);
    return response;
  };
  http.route(method, path, std::move(guarded), RouteKind::kSlow);
}

}  // namespace dbpulse::admin
