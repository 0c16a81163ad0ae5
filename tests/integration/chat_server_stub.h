#pragma once
// ChatServerStub: a small HTTP/1.1 server on a free loopback port that plays the chat
// server's endpoints (/health, /metrics, ...) for the companion collector's tests. Plain
// POSIX sockets, one thread per connection, keep-alive (so connection reuse is visible in
// connectionsAccepted()). Responses are set per path and may be changed while it runs.
// Header-only: integration test files are the only sources globbed into that target.
// Thread-safe; the destructor stops and joins every thread.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace dbpulse::testing {

class ChatServerStub {
 public:
  struct Response {
    int status = 200;
    std::string content_type = "text/plain; version=0.0.4; charset=utf-8";
    std::string body;
    std::chrono::milliseconds delay{0};  // before answering
  };

  ChatServerStub() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("stub: socket failed");
    const int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 64) != 0) {
      ::close(listen_fd_);
      throw std::runtime_error("stub: bind/listen failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }

  ~ChatServerStub() {
    stop_ = true;
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mu_);
      workers.swap(workers_);
    }
    for (auto& t : workers) t.join();
    ::close(listen_fd_);
  }

  ChatServerStub(const ChatServerStub&) = delete;
  ChatServerStub& operator=(const ChatServerStub&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  void set(const std::string& path, Response r) {
    std::lock_guard lock(mu_);
    routes_[path] = std::move(r);
    raw_.erase(path);
  }
  // Answers `path` with `bytes` as they are (no HTTP framing), then closes the connection.
  void setRaw(const std::string& path, std::string bytes) {
    std::lock_guard lock(mu_);
    raw_[path] = std::move(bytes);
  }

  int connectionsAccepted() const { return accepted_.load(); }
  int requests(const std::string& path) const {
    std::lock_guard lock(mu_);
    auto it = request_counts_.find(path);
    return it == request_counts_.end() ? 0 : it->second;
  }

 private:
  // Waits up to 50 ms for `events` on `fd`; false on timeout (so stop_ is checked often).
  static bool ready(int fd, short events) {
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, 50) > 0;
  }

  void acceptLoop() {
    while (!stop_) {
      if (!ready(listen_fd_, POLLIN)) continue;
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      ++accepted_;
      std::lock_guard lock(mu_);
      workers_.emplace_back([this, fd] { serve(fd); });
    }
  }

  void serve(int fd) {
    std::string buffer;
    while (!stop_) {
      const size_t end = buffer.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (!ready(fd, POLLIN)) continue;
        char chunk[4096];
        const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0) break;  // the client closed the connection
        buffer.append(chunk, static_cast<size_t>(n));
        continue;
      }
      const std::string head = buffer.substr(0, end);
      buffer.erase(0, end + 4);
      // "GET /path HTTP/1.1"
      const size_t sp1 = head.find(' ');
      const size_t sp2 = head.find(' ', sp1 + 1);
      const std::string path = sp1 == std::string::npos ? "" : head.substr(sp1 + 1, sp2 - sp1 - 1);
      Response r;
      bool found = false;
      std::string raw;
      {
        std::lock_guard lock(mu_);
        ++request_counts_[path];
        if (auto it = raw_.find(path); it != raw_.end()) raw = it->second;
        if (auto it = routes_.find(path); it != routes_.end()) {
          r = it->second;
          found = true;
        }
      }
      if (!found) r = Response{404, "text/plain", "not found\n", {}};
      const auto until = std::chrono::steady_clock::now() + r.delay;
      while (!stop_ && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      const std::string out =
          !raw.empty()
              ? raw
              : "HTTP/1.1 " + std::to_string(r.status) + " X\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
      size_t sent = 0;
      while (sent < out.size() && !stop_) {
        const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      if (sent < out.size() || !raw.empty()) break;
    }
    ::close(fd);
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  std::map<std::string, Response> routes_;
  std::map<std::string, std::string> raw_;
  std::map<std::string, int> request_counts_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

}  // namespace dbpulse::testing
