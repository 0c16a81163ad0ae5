#include "agent/http_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CivetServer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

namespace dbpulse {
namespace {

const char* reasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

// Opens and closes one TCP connection to host:port; failures are irrelevant here.
void wakeListener(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return;
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    (void)connect(fd, res->ai_addr, res->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(res);
}

void send(mg_connection* conn, const HttpResponse& r) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + reasonPhrase(r.status) + "\r\n";
  head += "Content-Type: " + r.content_type + "\r\n";
  head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  head += "Cache-Control: no-store\r\n";
  for (const auto& [k, v] : r.headers) head += k + ": " + v + "\r\n";
  head += "\r\n";
  // One write for head and body: two small writes meet Nagle and delayed ACK and cost
  // ~40 ms per response on a keep-alive connection.
  head += r.body;
  mg_write(conn, head.data(), head.size());
}

}  // namespace

HttpResponse HttpResponse::error(int status, std::string code, const std::string& message) {
  nlohmann::json j{{"error", message}, {"code", std::move(code)}};
  // The message may quote client input (a path, a header) that is not valid UTF-8:
  // replace such bytes rather than throw (an uncaught throw here ended the process).
  return HttpResponse{status, "application/json",
                      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", {}};
}

HttpResponse HttpResponse::json(int status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body), {}};
}

// One catch-all CivetWeb handler; routing is ours, so unknown paths and methods get
// JSON 404/405 instead of CivetWeb's HTML.
struct HttpServer::Impl final : public CivetHandler {
  explicit Impl(HttpServer& owner) : owner_(owner) {}

  // CivetWeb is C: a C++ exception must never unwind through it (std::terminate).
  bool handleAll(const char* method, CivetServer* civet, mg_connection* conn) {
    try {
      return handleRequest(method, civet, conn);
    } catch (const std::exception& e) {
      spdlog::error("http {}: {}", method, e.what());
    } catch (...) {
      spdlog::error("http {}: unknown exception", method);
    }
    try {
      send(conn, HttpResponse::error(500, "internal", "internal error"));
    } catch (...) {  // out of memory while answering: the connection just closes
    }
    return true;
  }

  bool handleRequest(const char* method, CivetServer* /*server*/, mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    HttpRequest req;
    req.method = method;
    req.path = info->local_uri ? info->local_uri : "/";
    req.query = info->query_string ? info->query_string : "";
    req.remote_addr = info->remote_addr;
    if (const char* auth = mg_get_header(conn, "Authorization")) req.authorization = auth;

    const int64_t max = owner_.options_.max_body_bytes;
    if (info->content_length > max) {
      send(conn, HttpResponse::error(413, "body_too_large",
                                     "request body exceeds " + std::to_string(max) + " bytes"));
      return true;
    }
    if (info->content_length != 0) {
      char buf[8192];
      int n;
      while ((n = mg_read(conn, buf, sizeof(buf))) > 0) {
        req.body.append(buf, static_cast<size_t>(n));
        if (static_cast<int64_t>(req.body.size()) > max) {
          send(conn, HttpResponse::error(413, "body_too_large",
                                         "request body exceeds " + std::to_string(max) + " bytes"));
          return true;
        }
      }
    }
    send(conn, owner_.handle(req));
    return true;
  }

  bool handleGet(CivetServer* s, mg_connection* c) override { return handleAll("GET", s, c); }
  bool handlePost(CivetServer* s, mg_connection* c) override { return handleAll("POST", s, c); }
  bool handleHead(CivetServer* s, mg_connection* c) override { return handleAll("HEAD", s, c); }
  bool handlePut(CivetServer* s, mg_connection* c) override { return handleAll("PUT", s, c); }
  bool handleDelete(CivetServer* s, mg_connection* c) override { return handleAll("DELETE", s, c); }
  bool handleOptions(CivetServer* s, mg_connection* c) override {
    return handleAll("OPTIONS", s, c);
  }
  bool handlePatch(CivetServer* s, mg_connection* c) override { return handleAll("PATCH", s, c); }

  HttpServer& owner_;
  std::unique_ptr<CivetServer> server;
};

HttpServer::HttpServer() = default;

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler) {
  routes_[path][method] = std::move(handler);
}

HttpResponse HttpServer::handle(const HttpRequest& request) const {
  // Nothing a client sends may end the process: every throw becomes a JSON 500 here.
  try {
    return dispatch(request);
  } catch (const std::exception& e) {
    spdlog::error("http {}: {}", request.method, e.what());
  } catch (...) {
    spdlog::error("http {}: unknown exception", request.method);
  }
  return HttpResponse::error(500, "internal", "internal error");
}

HttpResponse HttpServer::dispatch(const HttpRequest& request) const {
  auto path_it = routes_.find(request.path);
  if (path_it == routes_.end()) {
    return HttpResponse::error(404, "not_found", "no such endpoint: " + request.path);
  }
  const auto& methods = path_it->second;
  auto it = methods.find(request.method == "HEAD" ? "GET" : request.method);
  if (it == methods.end()) {
    std::string allow;
    for (const auto& [m, h] : methods) allow += (allow.empty() ? "" : ", ") + m;
    auto r = HttpResponse::error(405, "method_not_allowed",
                                 request.method + " is not allowed on " + request.path);
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  try {
    HttpResponse r = it->second(request);
    if (request.method == "HEAD") r.body.clear();
    return r;
  } catch (const std::exception& e) {
    // Handlers validate their input; an exception here is our bug, not the caller's.
    spdlog::error("http {} {}: {}", request.method, request.path, e.what());
    return HttpResponse::error(500, "internal", "internal error");
  } catch (...) {
    spdlog::error("http {} {}: unknown exception", request.method, request.path);
    return HttpResponse::error(500, "internal", "internal error");
  }
}

Status HttpServer::start(const HttpServerOptions& options) {
  options_ = options;
  std::string host = options.listen.host;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  std::vector<std::string> civet_options = {
      "listening_ports", host + ":" + std::to_string(options.listen.port),
      "num_threads", std::to_string(options.threads),
      "request_timeout_ms", std::to_string(options.request_timeout.count()),
      "enable_keep_alive", "yes",
      "keep_alive_timeout_ms", "5000",
      "listen_backlog", "128",
  };
  impl_ = std::make_unique<Impl>(*this);
  try {
    impl_->server = std::make_unique<CivetServer>(civet_options);
  } catch (const std::exception& e) {
    impl_.reset();
    return unavailable("cannot listen on " + host + ":" + std::to_string(options.listen.port) +
                       ": " + e.what());
  }
  impl_->server->addHandler("/", impl_.get());
  auto ports = impl_->server->getListeningPorts();
  port_ = ports.empty() ? options.listen.port : ports.front();
  return okStatus();
}

void HttpServer::stop() {
  if (impl_ && impl_->server) {
    // CivetWeb's accept loop polls its sockets in 2 s quanta before it sees the stop flag;
    // a connection to our own port wakes it, so shutdown takes milliseconds, not seconds.
    std::atomic<bool> closed{false};
    std::thread closer([&] {
      impl_->server->close();
      closed = true;
    });
    std::string host = options_.listen.host;
    if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
    if (host == "::") host = "::1";
    for (int i = 0; i < 200 && !closed; ++i) {
      wakeListener(host, port_);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    closer.join();
    impl_->server.reset();
  }
  impl_.reset();
}

}  // namespace dbpulse
