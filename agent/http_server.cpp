#include "agent/http_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <list>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "agent/core/mutex.h"

namespace dbpulse {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

// Bytes the read buffer may hold beyond the header limit: one read of body or of a
// pipelined next request.
constexpr std::size_t kReadSlack = 64 * 1024;
// File descriptors kept free for everything else (PostgreSQL, Redis, curl, state files).
constexpr rlim_t kReservedFds = 128;
// How long a connection that is being closed after an error may keep sending before the
// close: long enough for the client to read our answer instead of a reset.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::chrono::milliseconds kAcceptRetry{20};

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

// Head and body in one buffer, written at once: two small writes meet Nagle and delayed
// ACK and cost ~40 ms per response on a keep-alive connection.
std::string serialize(const HttpResponse& r, bool head_only, bool close, bool http10) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reasonPhrase(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += "Cache-Control: no-store\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  if (close) {
    out += "Connection: close\r\n";
  } else if (http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path. nullopt for a '%' without two hex digits or an encoded NUL;
// any other byte (invalid UTF-8 included) is kept: routing is exact, and error bodies
// replace what is not UTF-8.
std::optional<std::string> decodePath(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out += raw[i];
      continue;
    }
    if (i + 2 >= raw.size()) return std::nullopt;
    const int hi = hexValue(raw[i + 1]);
    const int lo = hexValue(raw[i + 2]);
    if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string str(beast::string_view s) { return std::string(s.data(), s.size()); }

std::string peerAddress(const tcp::socket& socket) {
  ErrorCode ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "";
  const asio::ip::address a = peer.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  return a.to_string();
}

void setCloseOnExec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

// Raises the soft limit on open files towards `wanted` (never above the hard limit) and
// returns the soft limit now in force.
rlim_t raiseFdLimit(rlim_t wanted) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur < wanted) {
    rlimit raised = rl;
    raised.rlim_cur = std::min(wanted, rl.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  return rl.rlim_cur;
}

// A fixed set of threads running queued tasks in order. The queue is bounded: submit()
// refuses work beyond `max_queue` waiting tasks, so overload is answered, not buffered.
class WorkerPool {
 public:
  WorkerPool(int threads, size_t max_queue) : max_queue_(max_queue) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkerPool() { stop(); }
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  bool submit(std::function<void()> task) {
    {
      MutexLock lock(mu_);
      if (stopping_ || queue_.size() >= max_queue_) return false;
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

  // Drops queued tasks, waits for running ones, joins. The dropped tasks are destroyed on
  // the calling thread, after the lock.
  void stop() {
    std::deque<std::function<void()>> dropped;
    {
      MutexLock lock(mu_);
      stopping_ = true;
      dropped.swap(queue_);
    }
    cv_.notify_all();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void run() {
    while (true) {
      std::function<void()> task;
      {
        MutexLock lock(mu_);
        cv_.wait(lock, [this]() REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  const size_t max_queue_;
  Mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::function<void()>> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

bool acceptsEncoding(std::string_view accept_encoding, std::string_view coding) {
  const auto trim = [](std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
  };
  const auto iequals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  // q is "0" or "1" or 0.ddd / 1.000: positive unless every digit is 0. Anything that is
  // not a q-value counts as 0 (a malformed preference never gets an encoding).
  const auto positiveQ = [&](std::string_view params) {
    while (!params.empty()) {
      const size_t semi = params.find(';');
      std::string_view p = trim(params.substr(0, semi));
      params = semi == std::string_view::npos ? std::string_view() : params.substr(semi + 1);
      if (p.size() < 2 || !iequals(p.substr(0, 2), "q=")) continue;
      std::string_view q = p.substr(2);
      if (q.empty() || (q[0] != '0' && q[0] != '1')) return false;
      if (q.size() > 1 && (q[1] != '.' || q.size() > 5)) return false;
      bool positive = q[0] == '1';
      for (size_t i = 2; i < q.size(); ++i) {
        if (q[i] < '0' || q[i] > '9') return false;
        positive = positive || q[i] != '0';
      }
      return positive;
    }
    return true;  // no q: 1
  };
  std::optional<bool> named, star;
  while (!accept_encoding.empty()) {
    const size_t comma = accept_encoding.find(',');
    std::string_view element = accept_encoding.substr(0, comma);
    accept_encoding =
        comma == std::string_view::npos ? std::string_view() : accept_encoding.substr(comma + 1);
    const size_t semi = element.find(';');
    const std::string_view name = trim(element.substr(0, semi));
    const std::string_view params =
        semi == std::string_view::npos ? std::string_view() : element.substr(semi + 1);
    if (iequals(name, coding)) named = positiveQ(params);
    if (name == "*") star = positiveQ(params);
  }
  return named.value_or(star.value_or(false));
}

HttpResponse HttpResponse::error(int status, std::string code, const std::string& message) {
  nlohmann::json j{{"error", message}, {"code", std::move(code)}};
  // The message may quote client input (a path, a header) that is not valid UTF-8:
  // replace such bytes rather than throw (an uncaught throw here ended the process).
  return HttpResponse{status,
                      "application/json",
                      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                      {}};
}

HttpResponse HttpResponse::json(int status, std::string body) {
  return HttpResponse{status, "application/json", std::move(body), {}};
}

struct HttpServer::Impl {
  // A connection has at most one request in a handler, so the fast queue refuses nothing
  // below max_connections; beyond 64 waiting admin calls, the next gets 503.
  Impl(const HttpServer& o, const HttpServerOptions& opts)
      : owner(o),
        options(opts),
        fast(std::max(1, opts.threads), static_cast<size_t>(std::max(16, opts.max_connections))),
        slow(std::max(1, opts.slow_threads), 64) {}

  void accept();
  // Closes the connection that has waited longest for a request to complete; false when
  // every connection has a request in a handler or on its way out.
  bool evictOldestWaiting();
  void shutdown();  // I/O thread

  const HttpServer& owner;
  const HttpServerOptions options;
  size_t max_connections = 0;
  int64_t body_bytes = 0;  // I/O thread only: reserved by bodies being received or handled
  std::list<HttpConnection*> connections;  // I/O thread only; outlives io (see ~HttpConnection)
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  bool stopping = false;  // I/O thread only
  WorkerPool fast;
  WorkerPool slow;
  std::thread io_thread;
};

// One client connection; every member function runs on the I/O thread. Kept alive by the
// operations in flight (shared_from_this), listed in Impl::connections while open.
class HttpConnection final : public std::enable_shared_from_this<HttpConnection> {
 public:
  HttpConnection(HttpServer::Impl& server, tcp::socket socket)
      : server_(server),
        socket_(std::move(socket)),
        timer_(server.io),
        buffer_(static_cast<size_t>(server.options.max_header_bytes) + kReadSlack) {}
  ~HttpConnection() { unlist(); }

  void start() {
    remote_ = peerAddress(socket_);
    server_.connections.push_back(this);
    pos_ = std::prev(server_.connections.end());
    listed_ = true;
    waitForRequest();
  }

  // Waiting for a request to start or to complete: may be closed to make room.
  bool evictable() const { return state_ == State::kIdle || state_ == State::kReading; }
  std::chrono::steady_clock::time_point waitingSince() const { return since_; }

  void close() {
    if (state_ == State::kClosed) return;
    release();
    state_ = State::kClosed;
    ++timer_gen_;
    timer_.cancel();
    ErrorCode ignored;
    socket_.close(ignored);
    unlist();
  }

  // Called (posted) when a handler finished.
  void reply(const HttpResponse& response, bool close_after) {
    if (state_ == State::kClosed) return;
    release();  // the handler is done with the body
    const bool close = close_after || !keep_alive_ || server_.stopping;
    out_ = serialize(response, head_only_, close, http10_);
    state_ = State::kWriting;
    arm(server_.options.request_timeout);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), close](const ErrorCode& ec, size_t) {
                        self->onWritten(ec, close);
                      });
  }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kLingering, kClosed };

  void release() {
    server_.body_bytes -= reserved_;
    reserved_ = 0;
  }

  void unlist() {
    if (!listed_) return;
    server_.connections.erase(pos_);
    listed_ = false;
  }

  // Starts a timer for the current state; a later arm() or disarm() makes it moot.
  void arm(Duration d) {
    const uint64_t gen = ++timer_gen_;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this(), gen](const ErrorCode& ec) {
      if (!ec && gen == self->timer_gen_) self->onTimeout();
    });
  }
  void disarm() {
    ++timer_gen_;
    timer_.cancel();
  }

  void onTimeout() {
    switch (state_) {
      case State::kReading:
        // The read fails with operation_aborted and fail() answers 408.
        timed_out_ = true;
        socket_.cancel();
        break;
      case State::kIdle:
      case State::kWriting:
      case State::kLingering:
        close();
        break;
      case State::kHandling:
      case State::kClosed:
        break;
    }
  }

  void waitForRequest() {
    state_ = State::kIdle;
    since_ = std::chrono::steady_clock::now();
    timed_out_ = false;
    head_only_ = false;
    http10_ = false;
    keep_alive_ = false;
    if (buffer_.size() > 0) {  // a pipelined request is already here
      readHead();
      return;
    }
    // An idle connection holds no buffers: a thousand of them cost a few MiB.
    buffer_.shrink_to_fit();
    out_ = std::string();
    arm(server_.options.idle_timeout);
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](const ErrorCode& ec) {
      if (self->state_ != State::kIdle) return;
      if (ec) {
        self->close();
        return;
      }
      self->readHead();
    });
  }

  // The request's first byte is here (or EOF): from now on it has request_timeout to
  // arrive completely, however slowly it trickles in.
  void readHead() {
    state_ = State::kReading;
    arm(server_.options.request_timeout);
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_.options.max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(server_.options.max_body_bytes));
    http::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](const ErrorCode& ec, size_t) { self->onHead(ec); });
  }

  void onHead(const ErrorCode& ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      fail(ec);
      return;
    }
    const auto& req = parser_->get();
    http10_ = req.version() == 10;
    head_only_ = req.method() == http::verb::head;
    if (req.version() != 10 && req.version() != 11) {
      answerAndClose(HttpResponse::error(505, "http_version_not_supported",
                                         "only HTTP/1.0 and HTTP/1.1 are served"));
      return;
    }
    const int64_t max = server_.options.max_body_bytes;
    const auto length = parser_->content_length();
    if (length && *length > static_cast<uint64_t>(max)) {
      answerAndClose(bodyTooLarge());
      return;
    }
    if (parser_->is_done()) {
      onBody({});
      return;
    }
    const int64_t need = length ? static_cast<int64_t>(*length) : max;  // chunked: at most max
    if (server_.body_bytes + need > server_.options.max_body_bytes_in_flight) {
      auto busy =
          HttpResponse::error(503, "overloaded", "too many request bodies in progress; retry");
      busy.headers.emplace_back("Retry-After", "1");
      answerAndClose(busy);
      return;
    }
    reserved_ = need;
    server_.body_bytes += need;
    const auto expect = req[http::field::expect];
    if (!http10_ && beast::iequals(expect, "100-continue")) {
      // curl and others wait for this before sending a body.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(socket_, asio::buffer(kContinue),
                        [self = shared_from_this()](const ErrorCode& write_ec, size_t) {
                          if (self->state_ == State::kClosed) return;
                          if (write_ec) {
                            self->fail(write_ec);
                            return;
                          }
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    http::async_read(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](const ErrorCode& ec, size_t) { self->onBody(ec); });
  }

  void onBody(const ErrorCode& ec) {
    if (state_ == State::kClosed) return;
    if (ec) {
      fail(ec);
      return;
    }
    disarm();
    dispatch();
  }

  HttpResponse bodyTooLarge() const {
    return HttpResponse::error(
        413, "body_too_large",
        "request body exceeds " + std::to_string(server_.options.max_body_bytes) + " bytes");
  }

  // A read that ended without a complete request: answer what can be answered (JSON), or
  // just close when the client went away.
  void fail(const ErrorCode& ec) {
    if (timed_out_) {
      answerAndClose(
          HttpResponse::error(408, "request_timeout",
                              "the request did not arrive completely within " +
                                  std::to_string(server_.options.request_timeout.count()) + " ms"));
    } else if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
               ec == asio::error::eof || ec == asio::error::connection_reset ||
               ec == asio::error::operation_aborted || ec == asio::error::broken_pipe) {
      close();
    } else if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      answerAndClose(HttpResponse::error(431, "headers_too_large",
                                         "request line and headers exceed " +
                                             std::to_string(server_.options.max_header_bytes) +
                                             " bytes"));
    } else if (ec == http::error::bad_version && wellFormedVersion()) {  // HTTP/2.0, HTTP/0.9
      answerAndClose(HttpResponse::error(505, "http_version_not_supported",
                                         "only HTTP/1.0 and HTTP/1.1 are served"));
    } else if (ec == http::error::body_limit) {
      answerAndClose(bodyTooLarge());
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      answerAndClose(
          HttpResponse::error(400, "malformed_request", "malformed HTTP request: " + ec.message()));
    } else {
      close();  // a socket error: nobody to answer
    }
  }

  // Whether the request line still in the buffer is "METHOD TARGET HTTP/d.d": Beast reports a
  // version it does not serve and a garbled request line alike as bad_version.
  bool wellFormedVersion() const {
    const auto data = buffer_.data();
    const std::string_view head(static_cast<const char*>(data.data()), data.size());
    const std::string_view line = head.substr(0, head.find("\r\n"));
    const size_t space = line.rfind(' ');
    if (std::count(line.begin(), line.end(), ' ') != 2) return false;  // method target version
    const std::string_view v = line.substr(space + 1);
    return v.size() == 8 && v.substr(0, 5) == "HTTP/" &&
           std::isdigit(static_cast<unsigned char>(v[5])) && v[6] == '.' &&
           std::isdigit(static_cast<unsigned char>(v[7]));
  }

  // Answers and closes: after this error the rest of the stream cannot be trusted.
  void answerAndClose(const HttpResponse& response) {
    disarm();
    parser_.reset();
    reply(response, /*close_after=*/true);
  }

  void dispatch() {
    state_ = State::kHandling;
    auto& req = parser_->get();
    keep_alive_ = req.keep_alive();
    HttpRequest request;
    request.method = str(req.method_string());
    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    const std::string_view raw_path = target.substr(0, q);
    if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
    request.remote_addr = remote_;
    request.authorization = str(req[http::field::authorization]);
    request.accept_encoding = str(req[http::field::accept_encoding]);
    request.body = std::move(req.body());
    std::optional<std::string> path = decodePath(raw_path);
    const bool absolute = !raw_path.empty() && raw_path.front() == '/';
    parser_.reset();  // raw_path and target point into it
    if (!absolute || !path) {
      reply(HttpResponse::error(400, "invalid_path",
                                "the request target must be an absolute path with valid "
                                "percent-encoding"),
            false);
      return;
    }
    request.path = std::move(*path);

    const HttpServer::Route* route = server_.owner.match(request);
    if (route == nullptr) {  // 404 or 405: no handler to wait for
      reply(server_.owner.handle(request), false);
      return;
    }
    WorkerPool& pool = route->kind == RouteKind::kSlow ? server_.slow : server_.fast;
    HttpServer::Impl& server = server_;
    const bool queued =
        pool.submit([self = shared_from_this(), &server, request = std::move(request)]() mutable {
          HttpResponse response = server.owner.handle(request);
          asio::post(server.io, [self, response = std::move(response)]() mutable {
            self->reply(response, false);
          });
        });
    if (!queued) {
      auto busy = HttpResponse::error(503, "overloaded", "too many requests in progress; retry");
      busy.headers.emplace_back("Retry-After", "1");
      reply(busy, false);
    }
  }

  void onWritten(const ErrorCode& ec, bool close_after) {
    if (state_ == State::kClosed) return;
    if (ec) {
      close();
      return;
    }
    if (close_after) {
      linger();
      return;
    }
    waitForRequest();
  }

  // Half-closes and reads (and drops) what the client still sends, briefly: closing with
  // unread data would send a reset that can destroy our answer before the client reads it.
  void linger() {
    state_ = State::kLingering;
    ErrorCode ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    unlist();  // not a connection to count or evict any more
    arm(kLingerTime);
    drain();
  }
  void drain() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(4096),
                            [self = shared_from_this()](const ErrorCode& ec, size_t) {
                              if (self->state_ != State::kLingering) return;
                              if (ec) {
                                self->close();
                                return;
                              }
                              self->drain();
                            });
  }

  HttpServer::Impl& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  uint64_t timer_gen_ = 0;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;
  std::string remote_;
  State state_ = State::kIdle;
  std::chrono::steady_clock::time_point since_;
  bool timed_out_ = false;
  bool head_only_ = false;
  bool http10_ = false;
  bool keep_alive_ = false;
  bool listed_ = false;
  int64_t reserved_ = 0;  // of server_.body_bytes
  std::list<HttpConnection*>::iterator pos_;
};

void HttpServer::Impl::accept() {
  acceptor.async_accept(io, [this](const ErrorCode& ec, tcp::socket socket) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors (EMFILE) or memory: make room, and retry after a pause rather
      // than spin on a listener that stays readable.
      if (ec != asio::error::connection_aborted) {
        spdlog::warn("http: accept: {}", ec.message());
        evictOldestWaiting();
      }
      accept_retry.expires_after(kAcceptRetry);
      accept_retry.async_wait([this](const ErrorCode& wait_ec) {
        if (!wait_ec && !stopping) accept();
      });
      return;
    }
    setCloseOnExec(socket.native_handle());
    ErrorCode ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (connections.size() >= max_connections && !evictOldestWaiting()) {
      // Every connection has a request being handled: refuse this one, without waiting.
      socket.non_blocking(true, ignored);
      auto busy = HttpResponse::error(503, "overloaded", "too many open connections; retry");
      busy.headers.emplace_back("Retry-After", "1");
      const std::string out = serialize(busy, false, true, false);
      socket.write_some(asio::buffer(out), ignored);
      socket.close(ignored);
    } else {
      std::make_shared<HttpConnection>(*this, std::move(socket))->start();
    }
    accept();
  });
}

bool HttpServer::Impl::evictOldestWaiting() {
  HttpConnection* oldest = nullptr;
  for (HttpConnection* c : connections) {
    if (c->evictable() && (oldest == nullptr || c->waitingSince() < oldest->waitingSince())) {
      oldest = c;
    }
  }
  if (oldest == nullptr) return false;
  oldest->close();
  return true;
}

void HttpServer::Impl::shutdown() {
  stopping = true;
  ErrorCode ignored;
  acceptor.close(ignored);
  accept_retry.cancel();
  // close() unlists: iterate over a copy.
  const std::vector<HttpConnection*> open(connections.begin(), connections.end());
  for (HttpConnection* c : open) c->close();
}

HttpServer::HttpServer() = default;

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& method, const std::string& path, HttpHandler handler,
                       RouteKind kind) {
  routes_[path][method] = Route{std::move(handler), kind};
}

const HttpServer::Route* HttpServer::match(const HttpRequest& request) const {
  auto path_it = routes_.find(request.path);
  if (path_it == routes_.end()) return nullptr;
  auto it = path_it->second.find(request.method == "HEAD" ? "GET" : request.method);
  return it == path_it->second.end() ? nullptr : &it->second;
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
  const Route* route = match(request);
  if (route == nullptr) {
    std::string allow;
    for (const auto& [m, r] : path_it->second) allow += (allow.empty() ? "" : ", ") + m;
    auto r = HttpResponse::error(405, "method_not_allowed",
                                 request.method + " is not allowed on " + request.path);
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  try {
    HttpResponse r = route->handler(request);
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
  stop();
  options_ = options;
  const std::string host = options.listen.host.empty() ? "0.0.0.0" : options.listen.host;
  const std::string where = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                            std::to_string(options.listen.port);
  ErrorCode ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) return invalidArgument("cannot listen on " + where + ": not an IP address");

  auto impl = std::make_unique<Impl>(*this, options);
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(options.listen.port));
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    impl->fast.stop();
    impl->slow.stop();
    return unavailable("cannot listen on " + where + ": " + ec.message());
  }
  setCloseOnExec(impl->acceptor.native_handle());
  port_ = impl->acceptor.local_endpoint().port();

  const auto wanted = static_cast<rlim_t>(std::max(1, options.max_connections));
  const rlim_t fds = raiseFdLimit(wanted + kReservedFds);
  impl->max_connections = static_cast<size_t>(
      fds > 2 * kReservedFds ? std::min(wanted, fds - kReservedFds) : kReservedFds);
  if (impl->max_connections < static_cast<size_t>(wanted)) {
    spdlog::warn("http: the open-file limit ({}) allows {} connections, not max_connections = {}",
                 fds, impl->max_connections, wanted);
  }
  impl->accept();
  impl->io_thread = std::thread([io = &impl->io] {
    auto work = asio::make_work_guard(*io);
    io->run();
  });
  impl_ = std::move(impl);
  return okStatus();
}

void HttpServer::stop() {
  if (!impl_) return;
  if (impl_->io_thread.joinable()) {
    std::promise<void> closed;
    asio::post(impl_->io, [this, &closed] {
      impl_->shutdown();
      closed.set_value();
    });
    closed.get_future().wait();
    impl_->io.stop();
    impl_->io_thread.join();
  }
  // Running handlers finish (their answers go nowhere); queued ones are dropped. Only then
  // may the io_context (which they post to) go.
  impl_->fast.stop();
  impl_->slow.stop();
  impl_.reset();
}

}  // namespace dbpulse
