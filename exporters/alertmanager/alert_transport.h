#pragma once
// How the Alertmanager notifier reaches one Alertmanager: a tiny interface so unit
// tests can record requests and script answers, and one libcurl implementation.

#include <memory>
#include <string>

#include "agent/core/duration.h"

namespace dbpulse::exporters {

// The outcome of one POST.
struct TransportResult {
  long status = 0;         // HTTP status; 0 = no HTTP answer (connection refused, timeout, ...)
  std::string detail;      // curl's message when status == 0; else the start of the response body
  bool cancelled = false;  // cancel() ended it: not a failure of the Alertmanager
};

// Posts JSON bodies to one fixed Alertmanager endpoint. post() is called by one thread at a
// time (the URL's delivery thread); cancel() may be called from any thread and makes an
// in-flight or later post() return soon with status 0 (shutdown). Never throws.
class AlertTransport {
 public:
  virtual ~AlertTransport() = default;
  virtual TransportResult post(const std::string& json_body) = 0;
  virtual void cancel() {}
};

struct CurlTransportOptions {
  Duration timeout{10'000};  // the whole request, connect included
  Duration connect_timeout{5'000};
  size_t max_response_bytes = 4096;  // the rest of a response is read and discarded
  std::string user_agent = "dbpulse";
};

// A libcurl transport posting to `alerts_url` (the full URL, e.g.
// "http://127.0.0.1:9093/api/v2/alerts"). One easy handle, reused between posts so the
// connection is kept alive. Proxy variables of the environment are ignored: Alertmanagers
// are addressed directly, as configured.
std::unique_ptr<AlertTransport> makeCurlTransport(const std::string& alerts_url,
                                                  CurlTransportOptions options = {});

}  // namespace dbpulse::exporters
