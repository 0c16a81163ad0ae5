#pragma once
// The admin handlers' shared answers: the Status -> HTTP mapping, 429 for one-at-a-time
// work, and the full-stack thread for work that recurses or sits in libpq.

#include <functional>
#include <string>

#include "agent/core/status.h"
#include "agent/http_server.h"

namespace dbpulse::admin {

// Status -> HTTP for work that reaches the database: the database's state is a 503, never
// a 500; a missing prerequisite answers with its reason as the code ("hypopg_missing").
HttpResponse statusError(const Status& s);
// 429 with Retry-After, for work that runs one at a time.
HttpResponse tooBusy(const std::string& message, const std::string& retry_after_seconds);
// Admin work that recurses (rule files, query plans) or sits in libpq runs on a thread of
// its own with a full-size stack, whatever stack the HTTP server's threads have.
HttpResponse onFullStack(const std::function<HttpResponse()>& work);

}  // namespace dbpulse::admin
