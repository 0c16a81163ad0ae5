// libFuzzer target: the HTTP layer's dispatch without sockets, HttpServer::handle, as the
// CivetWeb callback calls it: any method, path, query, Authorization header, peer address
// and body (what CivetWeb hands over after its own parsing; percent-decoding already done,
// so the path may hold any byte). A few routes are registered like the agent's: plain GETs,
// a POST whose handler reads the body as JSON the way the admin handlers do, and one whose
// handler throws (a bug in a handler must become a 500, never end the process).
// Checks: every answer is a known status; JSON answers parse as JSON; 405 names what is
// allowed; HEAD answers have no body.
//
// Input layout: method, path, query, authorization, remote address, each ending with '\n';
// the rest is the body (capped at the default agent.max_request_body_bytes, 64 KiB, as the
// server refuses larger bodies before dispatch).

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

#include "agent/http_server.h"

namespace {

using dbpulse::HttpRequest;
using dbpulse::HttpResponse;
using dbpulse::HttpServer;

void check(bool ok) {
  if (!ok) std::abort();
}

constexpr size_t kMaxBody = 64 * 1024;
constexpr size_t kMaxInput = kMaxBody + 4096;

std::string_view takeLine(std::string_view& in) {
  const size_t nl = in.find('\n');
  std::string_view line = in.substr(0, nl);
  in.remove_prefix(nl == std::string_view::npos ? in.size() : nl + 1);
  return line;
}

HttpServer& server() {
  static HttpServer* s = [] {
    spdlog::set_level(spdlog::level::off);
    auto* srv = new HttpServer();
    srv->route("GET", "/health",
               [](const HttpRequest&) { return HttpResponse::json(200, "{\"status\":\"ok\"}\n"); });
    srv->route("GET", "/metrics", [](const HttpRequest&) {
      HttpResponse r{200, "text/plain; version=0.0.4", "up 1\n", {}};
      return r;
    });
    srv->route("POST", "/admin/reload", [](const HttpRequest&) {
      return HttpResponse::json(200, "{\"status\":\"reloaded\"}\n");
    });
    srv->route("GET", "/admin/rules", [](const HttpRequest& r) {
      // Handlers quote client input in their answers.
      return HttpResponse::error(400, "invalid_request", "bad query: " + r.query);
    });
    srv->route("POST", "/admin/database/optimize", [](const HttpRequest& r) {
      const auto body = nlohmann::json::parse(r.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return HttpResponse::error(400, "invalid_json", "the body must be a JSON object");
      }
      for (const auto& [key, value] : body.items()) {
        return HttpResponse::error(400, "invalid_request", "unknown field \"" + key + "\"");
      }
      return HttpResponse::json(202, "{\"run_id\":1}\n");
    });
    srv->route("POST", "/admin/database/analyze-query", [](const HttpRequest& r) -> HttpResponse {
      // A handler with a bug: parse() with exceptions on, and a throw of its own.
      const auto body = nlohmann::json::parse(r.body);
      if (body.is_string()) throw std::runtime_error("unexpected string");
      if (body.is_number()) throw 42;
      return HttpResponse::json(
          200, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    });
    return srv;
  }();
  return *s;
}

bool knownStatus(int status) {
  switch (status) {
    case 200:
    case 202:
    case 400:
    case 401:
    case 403:
    case 404:
    case 405:
    case 413:
    case 429:
    case 500:
    case 503:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return -1;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  HttpRequest req;
  req.method = std::string(takeLine(in));
  req.path = std::string(takeLine(in));
  req.query = std::string(takeLine(in));
  req.authorization = std::string(takeLine(in));
  req.remote_addr = std::string(takeLine(in));
  if (in.size() > kMaxBody) return -1;
  req.body = std::string(in);

  const HttpResponse r = server().handle(req);
  check(knownStatus(r.status));
  if (r.content_type == "application/json" && !(req.method == "HEAD" && r.status < 300)) {
    check(!nlohmann::json::parse(r.body, nullptr, false).is_discarded());
  }
  if (r.status == 405) {
    bool allow = false;
    for (const auto& [k, v] : r.headers) allow = allow || (k == "Allow" && !v.empty());
    check(allow);
  }
  if (req.method == "HEAD" && r.status < 300) check(r.body.empty());
  return 0;
}
