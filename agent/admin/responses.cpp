#include "agent/admin/responses.h"

#include <thread>

namespace dbpulse::admin {

HttpResponse statusError(const Status& s) {
  switch (s.code()) {
    case StatusCode::kFailedPrecondition:
      return HttpResponse::error(503, s.reason().empty() ? "precondition" : s.reason(),
                                 s.message());
    case StatusCode::kDeadlineExceeded:
      return HttpResponse::error(503, "timeout", s.message());
    default:
      return HttpResponse::error(503, "database_unavailable", s.message());
  }
}

HttpResponse tooBusy(const std::string& message, const std::string& retry_after_seconds) {
  auto r = HttpResponse::error(429, "busy", message);
  r.headers.emplace_back("Retry-After", retry_after_seconds);
  return r;
}

HttpResponse onFullStack(const std::function<HttpResponse()>& work) {
  HttpResponse out;
  std::thread worker([&] { out = work(); });
  worker.join();
  return out;
}

}  // namespace dbpulse::admin
