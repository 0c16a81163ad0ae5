#pragma once
// HttpFetcher: outbound HTTP GET for the companion collector, the adapter around libcurl
// (curl headers stay in http_fetcher.cpp).
//
// One easy handle is created with the fetcher and kept for its lifetime, so consecutive
// requests to the same host reuse one keep-alive connection (curl's per-handle cache).
// Every request carries a total timeout and a connect timeout; the body is capped at
// max_body_bytes (decoded size, so a compressed bomb is capped too); redirects are not
// followed; only http and https are allowed; proxy environment variables are ignored
// (the companion is beside us, never behind a proxy).
//
// Threading: get() calls must not overlap (one collector uses one fetcher); cancel() may
// be called from any thread and aborts the request in flight at curl's next progress
// callback (frequent during a transfer, about once a second while waiting; the request
// timeout bounds it in any case).
//
// Errors: Unavailable (connection refused, reset, DNS, body over the cap), DeadlineExceeded
// (timeout), Cancelled (cancel()), InvalidArgument (malformed or non-http URL). Any HTTP
// status is a successful fetch: the caller judges 503.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/core/status.h"

namespace dbpulse::collectors {

struct HttpFetchOptions {
  size_t max_body_bytes = 8 * 1024 * 1024;
  std::string accept = "*/*";
  std::string user_agent = "dbpulse";
};

struct HttpFetchResult {
  long status = 0;
  std::string body;
  std::string content_type;
  std::chrono::duration<double> elapsed{0};  // request start to last byte
};

class HttpFetcher {
 public:
  // Fails only when libcurl cannot create a handle (out of memory); get() then reports it.
  explicit HttpFetcher(HttpFetchOptions options = {});
  ~HttpFetcher();
  HttpFetcher(const HttpFetcher&) = delete;
  HttpFetcher& operator=(const HttpFetcher&) = delete;

  Result<HttpFetchResult> get(const std::string& url, std::chrono::milliseconds timeout,
                              std::chrono::milliseconds connect_timeout);

  void cancel() { cancel_requested_ = true; }

  // New TCP connections opened so far (CURLINFO_NUM_CONNECTS summed): stays at 1 while
  // requests to one server reuse their connection.
  uint64_t connectionsOpened() const { return connections_opened_.load(); }

 private:
  struct Handle;  // owns the CURL easy handle and the header list (RAII)

  const HttpFetchOptions options_;
  std::unique_ptr<Handle> handle_;
  std::atomic<bool> cancel_requested_{false};
  std::atomic<uint64_t> connections_opened_{0};
};

// The URL with any user:password@ part replaced by ***@, for messages and logs.
std::string redactUrl(const std::string& url);

}  // namespace dbpulse::collectors
