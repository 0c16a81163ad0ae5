#pragma once
// HttpClient: outbound HTTP for every part of dbpulse (the companion collector's GETs, the
// Alertmanager notifier's POSTs), the one adapter around libcurl (curl headers stay in
// http_client.cpp, and libcurl's global init happens once, here).
//
// One easy handle is created with the client and kept for its lifetime, so consecutive
// requests to the same host reuse one keep-alive connection (curl's per-handle cache).
// Every request carries a total timeout and a connect timeout; redirects are not followed;
// only http and https are allowed; proxy environment variables are ignored (the companion
// is beside us and Alertmanagers are addressed directly, never through a proxy).
//
// Threading: requests must not overlap (one user, one client); cancel() and shutdown() may
// be called from any thread and abort the request in flight at curl's next progress
// callback (frequent during a transfer, about once a second while waiting; the request
// timeout bounds it in any case).
//
// Errors: Unavailable (connection refused, reset, DNS, GET body over the cap),
// DeadlineExceeded (timeout), Cancelled (cancel(), shutdown()), InvalidArgument (malformed
// or non-http URL). Any HTTP status is a successful request: the caller judges 503.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/core/status.h"

namespace dbpulse::collectors {

struct HttpClientOptions {
  size_t max_body_bytes = 8 * 1024 * 1024;  // get(): a longer answer is an error
  std::string accept = "*/*";
  std::string user_agent = "dbpulse";
};

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
  std::chrono::duration<double> elapsed{0};  // request start to last byte
};

class HttpClient {
 public:
  // Fails only when libcurl cannot create a handle (out of memory); requests then report it.
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // GET; the body is capped at max_body_bytes (decoded size, so a compressed bomb is capped
  // too): a longer one is Unavailable.
  Result<HttpResponse> get(const std::string& url, std::chrono::milliseconds timeout,
                           std::chrono::milliseconds connect_timeout);

  // POST `body` as `content_type`. The first `keep_body_bytes` of the answer are kept, the
  // rest is read and discarded (so the connection stays reusable). Error messages are
  // curl's own, without the URL (the caller names its peer).
  Result<HttpResponse> post(const std::string& url, const std::string& body,
                            const std::string& content_type, std::chrono::milliseconds timeout,
                            std::chrono::milliseconds connect_timeout, size_t keep_body_bytes);

  // Aborts the request in flight, if any (the next one runs normally).
  void cancel() { cancel_requested_ = true; }
  // Aborts the request in flight and every later one (shutdown).
  void shutdown() { shut_down_ = true; }

  // New TCP connections opened so far (CURLINFO_NUM_CONNECTS summed): stays at 1 while
  // requests to one server reuse their connection.
  uint64_t connectionsOpened() const { return connections_opened_.load(); }

 private:
  struct Handle;  // owns the CURL easy handle and the header lists (RAII)
  struct Outcome;
  Outcome perform(const std::string& url, std::chrono::milliseconds timeout,
                  std::chrono::milliseconds connect_timeout, HttpResponse& response);

  const HttpClientOptions options_;
  std::unique_ptr<Handle> handle_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> shut_down_{false};
  std::atomic<uint64_t> connections_opened_{0};
};

// The URL with any user:password@ part replaced by ***@, for messages and logs.
std::string redactUrl(const std::string& url);

}  // namespace dbpulse::collectors
