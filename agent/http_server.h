#pragma once
// A small HTTP/1.1 server with an explicit route table (Boost.Beast parses, Boost.Asio does
// the I/O; neither header leaves http_server.cpp).
//
// Every response is built by a Handler or by the server itself; every error the server
// produces is a JSON body {"error": "...", "code": "..."} (400 malformed request or path,
// 404, 405 with Allow, 408 request timeout, 413 body too large, 431 header too large,
// 503 overloaded with Retry-After, 505 HTTP version) — never plain text or HTML.
//
// Threads: one I/O thread owns every socket (epoll underneath), so an idle or slow
// connection costs memory (a few KiB), never a thread. A handler is called only once its
// request (head and body) is complete, on one of two pools: RouteKind::kFast handlers
// (probes, /metrics) on `threads` threads, RouteKind::kSlow handlers (admin work that may
// take seconds) on `slow_threads` threads of their own, so a slow handler never delays a
// probe. Handlers run concurrently and must be thread-safe; their threads have the
// process' default (full-size) stack.
//
// Limits: `max_connections` open connections (when full, the oldest connection that has
// not sent a complete request is closed to make room); a request (head and body) must
// arrive within `request_timeout` of its first byte (else 408 and close); a connection
// without a request in progress is closed after `idle_timeout`; bodies over
// `max_body_bytes` (Content-Length or chunked) get 413 before the handler runs, and
// bodies beyond `max_body_bytes_in_flight` altogether get 503.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/config.h"
#include "agent/core/status.h"

namespace dbpulse {

struct HttpRequest {
  std::string method;
  std::string path;   // percent-decoded; may hold any byte but NUL
  std::string query;  // as sent, not decoded
  std::string body;
  std::string authorization;    // the Authorization header, if any
  std::string accept_encoding;  // the Accept-Encoding header, if any
  std::string remote_addr;      // the peer's IP address (IPv4-mapped IPv6 shown as IPv4)
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // {"error": message, "code": code}
  static HttpResponse error(int status, std::string code, const std::string& message);
  static HttpResponse json(int status, std::string body);
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Whether an Accept-Encoding header value admits `coding` (e.g. "gzip"): listed, or
// covered by "*", with a q-value above 0 (RFC 9110 12.5.3). Case-insensitive.
bool acceptsEncoding(std::string_view accept_encoding, std::string_view coding);

// Which pool runs a route's handler (see the file comment).
enum class RouteKind { kFast, kSlow };

struct HttpServerOptions {
  HostPort listen;
  int threads = 4;       // kFast handler threads
  int slow_threads = 4;  // kSlow handler threads
  int max_connections = 2048;
  int64_t max_body_bytes = 64 * 1024;
  int64_t max_header_bytes = 8 * 1024;  // request line + headers
  // Bodies being received or handled, all connections together (a chunked body counts as
  // max_body_bytes until done); a request beyond it gets 503: memory stays bounded however
  // many clients send bodies at once.
  int64_t max_body_bytes_in_flight = 8 << 20;
  Duration request_timeout{10'000};  // first byte to complete request
  Duration idle_timeout{5'000};      // keep-alive and not-yet-started connections
};

class HttpConnection;  // http_server.cpp

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for an exact path and method, before start().
  void route(const std::string& method, const std::string& path, HttpHandler handler,
             RouteKind kind = RouteKind::kFast);

  // Binds and starts serving. Port 0 picks a free port (see port()). Raises the process'
  // soft RLIMIT_NOFILE (up to the hard limit) so that max_connections fit; when the hard
  // limit is lower, fewer connections are allowed and a warning says so.
  Status start(const HttpServerOptions& options);
  // Closes the listener and every connection, waits for running handlers to return (queued
  // ones are dropped) and joins every thread. Idempotent; no timeout to wait out.
  void stop();
  int port() const { return port_; }

  // Dispatch without sockets (used by the connection code and by tests). Never throws:
  // a handler's exception becomes a JSON 500.
  HttpResponse handle(const HttpRequest& request) const;

 private:
  friend class HttpConnection;
  struct Route {
    HttpHandler handler;
    RouteKind kind;
  };
  // The route that serves `request` (HEAD is served by GET), or nullptr (404/405).
  const Route* match(const HttpRequest& request) const;
  HttpResponse dispatch(const HttpRequest& request) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::map<std::string, std::map<std::string, Route>> routes_;  // path -> method -> route
  HttpServerOptions options_;
  int port_ = 0;
};

}  // namespace dbpulse
