#pragma once
// A small HTTP server (CivetWeb underneath) with an explicit route table.
// Every response is built by a Handler; errors are JSON bodies
// {"error": "...", "code": "..."}. Limits: request body size (413 beyond it),
// worker threads (= concurrent connections), request timeout.
// Handlers run on CivetWeb's worker threads, concurrently: they must be thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/config.h"
#include "agent/core/status.h"

namespace dbpulse {

struct HttpRequest {
  std::string method;
  std::string path;
  std::string query;
  std::string body;
  std::string authorization;  // the Authorization header, if any
  std::string remote_addr;
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

struct HttpServerOptions {
  HostPort listen;
  int threads = 4;
  int64_t max_body_bytes = 64 * 1024;
  Duration request_timeout{10'000};
};

class HttpServer {
 public:
  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for an exact path and method, before start().
  void route(const std::string& method, const std::string& path, HttpHandler handler);

  // Binds and starts serving. Port 0 picks a free port (see port()).
  Status start(const HttpServerOptions& options);
  void stop();
  int port() const { return port_; }

  // Dispatch without sockets (used by the CivetWeb callback and by tests). Never throws:
  // a handler's exception becomes a JSON 500.
  HttpResponse handle(const HttpRequest& request) const;

 private:
  HttpResponse dispatch(const HttpRequest& request) const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::map<std::string, std::map<std::string, HttpHandler>> routes_;  // path -> method -> handler
  HttpServerOptions options_;
  int port_ = 0;
};

}  // namespace dbpulse
