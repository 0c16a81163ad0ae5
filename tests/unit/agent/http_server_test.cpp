#include "agent/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace dbpulse {
namespace {

HttpRequest request(std::string method, std::string path) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  return r;
}

std::string header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

// Checks that `r` is a JSON error {"error": non-empty string, "code": code}.
void expectJsonError(const HttpResponse& r, int status, const std::string& code) {
  EXPECT_EQ(r.status, status);
  EXPECT_EQ(r.content_type, "application/json");
  const auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(j.is_object()) << r.body;
  ASSERT_TRUE(j.contains("error") && j["error"].is_string()) << r.body;
  EXPECT_FALSE(j["error"].get<std::string>().empty());
  ASSERT_TRUE(j.contains("code") && j["code"].is_string()) << r.body;
  EXPECT_EQ(j["code"].get<std::string>(), code);
}

HttpHandler text(std::string body) {
  return [body](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = body;
    r.headers.emplace_back("X-Test", "yes");
    return r;
  };
}

TEST(HttpServerTest, UnknownPathIsJson404) {
  HttpServer server;
  server.route("GET", "/metrics", text("m"));
  const HttpResponse r = server.handle(request("GET", "/nope"));
  expectJsonError(r, 404, "not_found");
  EXPECT_NE(r.body.find("/nope"), std::string::npos) << r.body;
  // Exact paths: a prefix or a trailing slash is another path.
  EXPECT_EQ(server.handle(request("GET", "/metrics/")).status, 404);
  EXPECT_EQ(server.handle(request("GET", "/metric")).status, 404);
}

TEST(HttpServerTest, RoutesByPathAndMethod) {
  HttpServer server;
  server.route("GET", "/a", text("get a"));
  server.route("POST", "/a", text("post a"));
  server.route("GET", "/b", text("get b"));
  EXPECT_EQ(server.handle(request("GET", "/a")).body, "get a");
  EXPECT_EQ(server.handle(request("POST", "/a")).body, "post a");
  EXPECT_EQ(server.handle(request("GET", "/b")).body, "get b");
  const HttpResponse r = server.handle(request("GET", "/a"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4");
  EXPECT_EQ(header(r, "X-Test"), "yes");
}

TEST(HttpServerTest, WrongMethodIs405WithAllowHeader) {
  HttpServer server;
  server.route("GET", "/health", text("ok"));
  server.route("POST", "/admin/reload", text("ok"));
  server.route("GET", "/admin/reload", text("ok"));

  const HttpResponse r = server.handle(request("POST", "/health"));
  expectJsonError(r, 405, "method_not_allowed");
  EXPECT_EQ(header(r, "Allow"), "GET");

  const HttpResponse both = server.handle(request("DELETE", "/admin/reload"));
  expectJsonError(both, 405, "method_not_allowed");
  EXPECT_EQ(header(both, "Allow"), "GET, POST");
}

TEST(HttpServerTest, HeadIsServedByGetHandlerWithEmptyBody) {
  HttpServer server;
  std::string seen_method;
  server.route("GET", "/metrics", [&](const HttpRequest& req) {
    seen_method = req.method;
    HttpResponse r;
    r.content_type = "text/plain";
    r.body = "pg_up 1\n";
    return r;
  });
  const HttpResponse r = server.handle(request("HEAD", "/metrics"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(seen_method, "HEAD");

  // HEAD on a path without GET is not allowed either.
  server.route("POST", "/only-post", text("x"));
  const HttpResponse post_only = server.handle(request("HEAD", "/only-post"));
  EXPECT_EQ(post_only.status, 405);
  EXPECT_EQ(header(post_only, "Allow"), "POST");
}

TEST(HttpServerTest, ThrowingHandlerGivesJson500) {
  HttpServer server;
  server.route("GET", "/boom", [](const HttpRequest&) -> HttpResponse {
    throw std::runtime_error("secret detail from deep inside");
  });
  HttpResponse r;
  ASSERT_NO_THROW(r = server.handle(request("GET", "/boom")));
  expectJsonError(r, 500, "internal");
  EXPECT_EQ(r.body.find("secret detail"), std::string::npos) << "internals are logged, not sent";
}

// DESIGN: "No exception crosses a folder boundary; no HTTP handler lets one escape."
// On a CivetWeb worker thread an escaping exception terminates the process.
TEST(HttpServerTest, HandlerThrowingANonStdExceptionGivesJson500) {
  HttpServer server;
  server.route("GET", "/boom", [](const HttpRequest&) -> HttpResponse { throw 42; });
  HttpResponse r;
  EXPECT_NO_THROW(r = server.handle(request("GET", "/boom")));
  EXPECT_EQ(r.status, 500);
}

TEST(HttpServerTest, ErrorHelperEscapesTheMessage) {
  const HttpResponse r = HttpResponse::error(400, "bad_request", "quote \" and \\ and\nnewline");
  expectJsonError(r, 400, "bad_request");
  EXPECT_EQ(nlohmann::json::parse(r.body)["error"], "quote \" and \\ and\nnewline");
}

// Regression: the 404 body quoted the path, and the JSON library threw on invalid UTF-8
// (GET /%ff aborted the process).
TEST(HttpServerTest, InvalidUtf8PathIsAJson404NotACrash) {
  HttpServer server;
  server.route("GET", "/metrics", text("m"));
  for (const std::string path : {"/\xff", "/a\xc3", "/\xed\xa0\x80", "/\xf8\x88\x80\x80\x80"}) {
    const HttpResponse r = server.handle(request("GET", path));
    expectJsonError(r, 404, "not_found");
  }
}

TEST(HttpServerTest, ErrorWithInvalidUtf8MessageIsStillValidJson) {
  const HttpResponse r = HttpResponse::error(400, "bad_request", std::string("bad \xff\xfe byte"));
  expectJsonError(r, 400, "bad_request");
}

// ---- over a real socket ------------------------------------------------------------

struct RawResponse {
  int status = 0;
  std::string head;
  std::string body;
};

// A blocking connection to 127.0.0.1:port with 5 s send/receive timeouts; -1 on failure.
int connectTo(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    ADD_FAILURE() << "socket: " << std::strerror(errno);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ADD_FAILURE() << "connect: " << std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// Sends `raw` to 127.0.0.1:port and reads until the server closes the connection.
RawResponse exchange(int port, const std::string& raw) {
  RawResponse out;
  const int fd = connectTo(port);
  if (fd < 0) return out;
  size_t sent = 0;
  while (sent < raw.size()) {
    const ssize_t n = ::send(fd, raw.data() + sent, raw.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may answer (413) and close before reading it all
    sent += static_cast<size_t>(n);
  }
  std::string all;
  char buf[4096];
  while (true) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t end = all.find("\r\n\r\n");
  if (end == std::string::npos) {
    ADD_FAILURE() << "no complete response head in: " << all;
    return out;
  }
  out.head = all.substr(0, end);
  out.body = all.substr(end + 4);
  if (out.head.rfind("HTTP/1.1 ", 0) == 0) out.status = std::stoi(out.head.substr(9, 3));
  return out;
}

// One server for the socket tests (stop() is fast now; one server just keeps them short).
class HttpServerSocketTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new HttpServer();
    server_->route("GET", "/x", [](const HttpRequest& req) {
      std::lock_guard lock(mu_);
      last_query_ = req.query;
      return HttpResponse::json(200, "{\"ok\":true}\n");
    });
    server_->route("POST", "/echo", [](const HttpRequest& req) {
      ++posts_;
      return HttpResponse::json(200, nlohmann::json{{"size", req.body.size()}}.dump());
    });
    HttpServerOptions options;
    options.listen = HostPort{"127.0.0.1", 0};
    options.threads = 2;
    options.max_body_bytes = 1024;
    start_status_ = server_->start(options);
  }
  static void TearDownTestSuite() {
    delete server_;  // stops it
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(start_status_.ok()) << start_status_.toString();
    ASSERT_GT(server_->port(), 0);
    posts_ = 0;
  }
  static int port() { return server_->port(); }
  static std::string lastQuery() {
    std::lock_guard lock(mu_);
    return last_query_;
  }

  static inline HttpServer* server_ = nullptr;
  static inline Status start_status_;
  static inline std::mutex mu_;
  static inline std::string last_query_;
  static inline std::atomic<int> posts_{0};
};

TEST_F(HttpServerSocketTest, ServesGetOnAnEphemeralPort) {
  const RawResponse r =
      exchange(port(), "GET /x?a=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(r.body, "{\"ok\":true}\n");
  EXPECT_NE(r.head.find("Content-Type: application/json"), std::string::npos) << r.head;
  EXPECT_EQ(lastQuery(), "a=1");
}

TEST_F(HttpServerSocketTest, UnknownPathOverSocketIsJsonNotHtml) {
  const RawResponse r =
      exchange(port(), "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 404) << r.head;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j.value("code", ""), "not_found");
}

TEST_F(HttpServerSocketTest, PercentEncodedInvalidUtf8PathIsJson404AndTheServerLives) {
  for (const std::string path : {"/%ff", "/%c3", "/x%80%80", "/%ed%a0%80?q=%ff"}) {
    const RawResponse r =
        exchange(port(), "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(r.status, 404) << path << ": " << r.head;
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j.value("code", ""), "not_found");
  }
  const RawResponse after =
      exchange(port(), "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(after.status, 200) << "the server still answers";
}

TEST_F(HttpServerSocketTest, BodyWithinLimitIsDelivered) {
  const std::string body(1000, 'a');
  const RawResponse r = exchange(port(),
                                 "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                 "Content-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("size", 0), 1000) << r.body;
}

TEST_F(HttpServerSocketTest, OversizedBodyGets413Json) {
  const std::string body(4096, 'b');
  const RawResponse r = exchange(port(),
                                 "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                 "Content-Length: " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 413) << r.head;
  const auto j = nlohmann::json::parse(r.body, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.body;
  EXPECT_EQ(j.value("code", ""), "body_too_large");
  EXPECT_NE(j.value("error", "").find("1024"), std::string::npos) << r.body;
  EXPECT_EQ(posts_, 0) << "the handler never sees an oversized body";
}

TEST_F(HttpServerSocketTest, OversizedChunkedBodyGets413Json) {
  const std::string chunk(2000, 'c');
  char size_hex[16];
  std::snprintf(size_hex, sizeof(size_hex), "%zx", chunk.size());
  const RawResponse r = exchange(port(),
                                 "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                 "Transfer-Encoding: chunked\r\n\r\n" +
                                     std::string(size_hex) + "\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 413) << r.head;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("code", ""), "body_too_large")
      << r.body;
  EXPECT_EQ(posts_, 0);
}

// Every status the HTTP layer produces by itself is a JSON error, never plain text or HTML.
struct LayerErrorCase {
  const char* name;
  std::string raw;
  int status;
  const char* code;
};

TEST_F(HttpServerSocketTest, ErrorsOfTheHttpLayerAreJson) {
  const std::string big_header = "X-Big: " + std::string(20 * 1024, 'h') + "\r\n";
  const std::vector<LayerErrorCase> cases = {
      {"malformed request line", "GARBAGE\r\n\r\n", 400, "malformed_request"},
      {"space in the method", "GE T /x HTTP/1.1\r\nHost: t\r\n\r\n", 400, "malformed_request"},
      {"bad header line", "GET /x HTTP/1.1\r\nno colon here\r\n\r\n", 400, "malformed_request"},
      {"header too large", "GET /x HTTP/1.1\r\nHost: t\r\n" + big_header + "\r\n", 431,
       "headers_too_large"},
      {"bad percent-encoding", "GET /%zz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 400,
       "invalid_path"},
      {"truncated percent-encoding", "GET /x% HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
       400, "invalid_path"},
      {"encoded NUL", "GET /x%00 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 400,
       "invalid_path"},
      {"not an absolute path", "GET x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 400,
       "invalid_path"},
      {"unsupported HTTP version", "GET /x HTTP/2.0\r\nHost: t\r\n\r\n", 505,
       "http_version_not_supported"},
      {"unknown method", "BREW /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 405,
       "method_not_allowed"},
      {"bad Content-Length", "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n", 400,
       "malformed_request"},
      {"bad chunk size",
       "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
       "malformed_request"},
      {"Content-Length over the limit",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999\r\n\r\n", 413, "body_too_large"},
  };
  for (const auto& c : cases) {
    const RawResponse r = exchange(port(), c.raw);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.head;
    EXPECT_NE(r.head.find("Content-Type: application/json"), std::string::npos)
        << c.name << ": " << r.head;
    const auto j = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << c.name << ": " << r.body;
    EXPECT_EQ(j.value("code", ""), c.code) << c.name << ": " << r.body;
    EXPECT_FALSE(j.value("error", "").empty()) << c.name;
  }
  EXPECT_EQ(posts_, 0) << "no handler saw a broken request";
  EXPECT_EQ(exchange(port(), "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status,
            200);
}

// Reads responses (head + Content-Length body) one by one from a connection that stays
// open; bytes of the next response read with this one are kept for it.
class ResponseReader {
 public:
  explicit ResponseReader(int fd) : fd_(fd) {}
  RawResponse next() {
    RawResponse out;
    while (true) {
      const size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        out.head = pending_.substr(0, end);
        const size_t cl = out.head.find("Content-Length: ");
        const size_t length = cl == std::string::npos ? 0 : std::stoul(out.head.substr(cl + 16));
        if (pending_.size() >= end + 4 + length) {
          out.body = pending_.substr(end + 4, length);
          pending_.erase(0, end + 4 + length);
          if (out.head.rfind("HTTP/1.1 ", 0) == 0) out.status = std::stoi(out.head.substr(9, 3));
          return out;
        }
      }
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) return RawResponse{};
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string pending_;
};

RawResponse readOne(int fd) { return ResponseReader(fd).next(); }

void sendAll(int fd, const std::string& s) {
  size_t sent = 0;
  while (sent < s.size()) {
    const ssize_t n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

TEST_F(HttpServerSocketTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  const int fd = connectTo(port());
  ASSERT_GE(fd, 0);
  ResponseReader reader(fd);
  for (int i = 0; i < 3; ++i) {
    sendAll(fd, "GET /x?i=" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n");
    const RawResponse r = reader.next();
    EXPECT_EQ(r.status, 200) << r.head;
    EXPECT_EQ(r.body, "{\"ok\":true}\n");
    EXPECT_EQ(lastQuery(), "i=" + std::to_string(i));
  }
  // Two pipelined requests are answered in order.
  sendAll(fd, "GET /x?p=1 HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(reader.next().status, 200);
  EXPECT_EQ(reader.next().status, 404);
  ::close(fd);
}

TEST_F(HttpServerSocketTest, HeadAnswersWithoutABody) {
  const int fd = connectTo(port());
  ASSERT_GE(fd, 0);
  sendAll(fd, "HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n");
  ResponseReader reader(fd);
  const RawResponse head = reader.next();
  EXPECT_EQ(head.status, 200) << head.head;
  EXPECT_NE(head.head.find("Content-Length: 0"), std::string::npos) << head.head;
  const RawResponse get = reader.next();  // the next bytes are the GET's answer, not a body
  EXPECT_EQ(get.status, 200) << get.head;
  EXPECT_EQ(get.body, "{\"ok\":true}\n");
  ::close(fd);
}

TEST_F(HttpServerSocketTest, ExpectContinueGetsTheBodyDelivered) {
  const int fd = connectTo(port());
  ASSERT_GE(fd, 0);
  sendAll(fd,
          "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  char buf[64];
  const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "HTTP/1.1 100 Continue\r\n\r\n");
  sendAll(fd, "hello");
  const RawResponse r = readOne(fd);
  EXPECT_EQ(r.status, 200) << r.head;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("size", 0), 5) << r.body;
  ::close(fd);
}

HttpServerOptions shortTimeouts() {
  HttpServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  options.threads = 1;
  options.request_timeout = Duration{300};
  options.idle_timeout = Duration{200};
  return options;
}

TEST(HttpServerTimeoutTest, ARequestThatDoesNotCompleteInTimeGets408Json) {
  HttpServer server;
  server.route("GET", "/x", [](const HttpRequest&) { return HttpResponse::json(200, "{}"); });
  ASSERT_TRUE(server.start(shortTimeouts()).ok());
  const int fd = connectTo(server.port());
  ASSERT_GE(fd, 0);
  sendAll(fd, "GET /x HTTP/1.1\r\nHo");  // and nothing more
  const RawResponse r = readOne(fd);
  EXPECT_EQ(r.status, 408) << r.head;
  EXPECT_EQ(nlohmann::json::parse(r.body, nullptr, false).value("code", ""), "request_timeout")
      << r.body;
  EXPECT_NE(r.head.find("Connection: close"), std::string::npos) << r.head;
  ::close(fd);
}

TEST(HttpServerTimeoutTest, AnIdleConnectionIsClosedWithoutAnAnswer) {
  HttpServer server;
  server.route("GET", "/x", [](const HttpRequest&) { return HttpResponse::json(200, "{}"); });
  ASSERT_TRUE(server.start(shortTimeouts()).ok());
  const int fd = connectTo(server.port());
  ASSERT_GE(fd, 0);
  char buf[16];
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(fd, buf, sizeof(buf), 0), 0) << "closed, nothing sent";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  ::close(fd);
}

TEST(HttpServerStopTest, StopIsFastWithConnectionsOpenAndPortZeroPicksAPort) {
  HttpServer server;
  server.route("GET", "/x", [](const HttpRequest&) { return HttpResponse::json(200, "{}"); });
  HttpServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  ASSERT_TRUE(server.start(options).ok());
  ASSERT_GT(server.port(), 0);
  const int idle = connectTo(server.port());
  const int kept = connectTo(server.port());
  ASSERT_GE(idle, 0);
  ASSERT_GE(kept, 0);
  sendAll(kept, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(readOne(kept).status, 200);
  const auto start = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  char buf[16];
  EXPECT_EQ(::recv(kept, buf, sizeof(buf), 0), 0) << "the connection was closed";
  ::close(idle);
  ::close(kept);
}

// A slow (admin) handler runs on a pool of its own: fast routes answer meanwhile.
TEST(HttpServerPoolTest, SlowHandlersDoNotDelayFastRoutes) {
  HttpServer server;
  std::mutex gate;
  std::unique_lock hold(gate);
  std::atomic<int> slow_running{0};
  server.route(
      "GET", "/slow",
      [&](const HttpRequest&) {
        ++slow_running;
        std::lock_guard wait(gate);  // blocked until the test lets go
        return HttpResponse::json(200, "{}");
      },
      RouteKind::kSlow);
  server.route("GET", "/fast", [](const HttpRequest&) { return HttpResponse::json(200, "{}"); });
  HttpServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  options.threads = 1;
  options.slow_threads = 2;
  ASSERT_TRUE(server.start(options).ok());
  std::vector<int> slow;
  for (int i = 0; i < 4; ++i) {  // more than the slow pool's threads
    slow.push_back(connectTo(server.port()));
    sendAll(slow.back(), "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  }
  for (int i = 0; i < 500 && slow_running < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_GE(slow_running.load(), 1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(
      exchange(server.port(), "GET /fast HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").status,
      200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  hold.unlock();
  for (int fd : slow) {
    EXPECT_EQ(readOne(fd).status, 200);
    ::close(fd);
  }
}

// At max_connections, the connection that has waited longest without completing a request
// makes room: a new client is served, the idle one is closed.
TEST(HttpServerLimitTest, AtMaxConnectionsTheLongestWaitingConnectionMakesRoom) {
  HttpServer server;
  server.route("GET", "/x", [](const HttpRequest&) { return HttpResponse::json(200, "{}"); });
  HttpServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  options.max_connections = 16;
  ASSERT_TRUE(server.start(options).ok());
  std::vector<int> idle;
  for (int i = 0; i < 16; ++i) {
    idle.push_back(connectTo(server.port()));
    ASSERT_GE(idle.back(), 0);
  }
  // The 16 are accepted (the server answers a request on the newest of them).
  sendAll(idle.back(), "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_EQ(readOne(idle.back()).status, 200);
  const RawResponse r =
      exchange(server.port(), "GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(r.status, 200) << r.head;
  char buf[16];
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(::recv(idle.front(), buf, sizeof(buf), 0), 0) << "the oldest idle one was closed";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1))
      << "closed to make room, not by the 5 s idle timeout";
  for (int fd : idle) ::close(fd);
}

// Bodies in progress share one memory budget: beyond it a request gets 503 at once.
TEST(HttpServerLimitTest, BodiesBeyondTheInFlightBudgetGet503Json) {
  HttpServer server;
  server.route("POST", "/echo", [](const HttpRequest& req) {
    return HttpResponse::json(200, nlohmann::json{{"size", req.body.size()}}.dump());
  });
  HttpServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  options.max_body_bytes = 1024;
  options.max_body_bytes_in_flight = 2048;
  ASSERT_TRUE(server.start(options).ok());
  const std::string head = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n";
  const int a = connectTo(server.port());
  const int b = connectTo(server.port());
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  sendAll(a, head + std::string(10, 'a'));  // 1000 reserved, body still arriving
  sendAll(b, head + std::string(10, 'b'));  // 2000 reserved
  // A third body does not fit (poll: the two heads may still be on their way).
  RawResponse third;
  for (int i = 0; i < 200 && third.status != 503; ++i) {
    third = exchange(server.port(), head + std::string(1000, 'c'));
  }
  EXPECT_EQ(third.status, 503) << third.head;
  EXPECT_EQ(nlohmann::json::parse(third.body, nullptr, false).value("code", ""), "overloaded")
      << third.body;
  EXPECT_NE(third.head.find("Retry-After: 1"), std::string::npos) << third.head;
  sendAll(a, std::string(990, 'a'));
  EXPECT_EQ(readOne(a).status, 200);  // a's reservation is released with its answer
  const RawResponse next = exchange(server.port(), head + std::string(1000, 'd'));
  EXPECT_EQ(next.status, 200) << next.head;
  ::close(a);
  ::close(b);
}

TEST(HttpServerStartTest, PortInUseIsAnError) {
  HttpServer first;
  HttpServerOptions options;
  options.listen = HostPort{"127.0.0.1", 0};
  options.threads = 1;
  ASSERT_TRUE(first.start(options).ok());
  HttpServer second;
  options.listen.port = first.port();
  const Status s = second.start(options);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find(std::to_string(first.port())), std::string::npos) << s.message();
}

}  // namespace
}  // namespace dbpulse

namespace dbpulse {
namespace {

TEST(AcceptsEncodingTest, FollowsTheHeadersPreferences) {
  struct Case {
    const char* header;
    bool gzip;
  };
  const Case cases[] = {
      {"", false},
      {"gzip", true},
      {"GZip", true},
      {"deflate, gzip", true},
      {"gzip;q=1.0, identity; q=0.5, *;q=0", true},
      {"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
      {"gzip;q=0", false},
      {"gzip; q=0.000", false},
      {"gzip;q=0.001", true},
      {"*", true},
      {"*;q=0", false},
      {"*, gzip;q=0", false},  // the named coding's own q wins over *
      {"deflate", false},
      {"x-gzip", false},
      {"gzipx", false},
      {"identity", false},
      {"gzip;q=2", false},  // not a q-value: no encoding rather than a guess
      {"gzip;q=abc", false},
      {" , ,gzip , ", true},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(acceptsEncoding(c.header, "gzip"), c.gzip) << "Accept-Encoding: " << c.header;
  }
}

}  // namespace
}  // namespace dbpulse
