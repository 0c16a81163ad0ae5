// libFuzzer target: the admin API's JSON bodies (POST /admin/database/optimize and
// /admin/database/analyze-query) as their handlers read them: nlohmann::json::parse with
// exceptions off, then the accessors the handlers use on an object's fields, and error
// answers that quote a field name (HttpResponse::error). The handlers themselves live in
// Agent and need a database; this covers the parsing and quoting they rely on.
// Checks: a parsed body dumps (bad bytes replaced) to JSON that parses again to the same
// value; every error answer is JSON.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/http_server.h"

namespace {

using Json = nlohmann::json;

void check(bool ok) {
  if (!ok) std::abort();
}

// Bodies over agent.max_request_body_bytes (64 KiB by default) are refused with 413 before
// any handler runs.
constexpr size_t kMaxBody = 64 * 1024;

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void checkIsJson(const dbpulse::HttpResponse& r) {
  check(!Json::parse(r.body, nullptr, false).is_discarded());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxBody) return -1;
  const std::string body(reinterpret_cast<const char*>(data), size);
  const Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    checkIsJson(dbpulse::HttpResponse::error(400, "invalid_json", "the body must be an object"));
    return 0;
  }
  const std::string text = dump(j);
  check(Json::parse(text, nullptr, false) == j);

  for (const auto& [key, value] : j.items()) {
    checkIsJson(
        dbpulse::HttpResponse::error(400, "invalid_request", "unknown field \"" + key + "\""));
    if (value.is_string()) {
      const std::string s = value.get<std::string>();
      checkIsJson(dbpulse::HttpResponse::error(400, "unknown_tables", "unknown table " + s));
    } else if (value.is_array()) {
      for (const auto& t : value) {
        if (t.is_string()) (void)t.get<std::string>().size();
      }
    } else if (value.is_boolean()) {
      (void)value.get<bool>();
    }
  }
  (void)j.contains("query");
  (void)j.value("analyze", Json(false));
  (void)j.value("dry_run", Json(false));
  return 0;
}
