// Liveness under a slowloris attack (issue 11): with 1,000 connections trickling a request
// head one byte at a time, /metrics, /health and /health/ready still answer within 1 s.
// A thread-per-connection server (CivetWeb with 4 threads) failed this: every thread sat in
// a slow connection and the probes waited in the accept queue.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "agent/http_server.h"
#include "test_util/sockets.h"

namespace dbpulse {
namespace {

using namespace std::chrono_literals;
using dbpulse::testing::loopback;
using dbpulse::testing::raiseFdLimit;
using Clock = std::chrono::steady_clock;

constexpr int kAttackers = 1000;
constexpr auto kAttackFor = 3s;          // bounded: the attack stops after this
constexpr auto kTrickleEvery = 250ms;    // one more byte on every connection
constexpr auto kProbeDeadline = 1000ms;  // the liveness requirement
const std::string kSlowHead =
    "GET /metrics HTTP/1.1\r\nHost: victim\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa";

// A connection that never completes its request; -1 when even the socket failed.
int openSlowConnection(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const sockaddr_in addr = loopback(port);
  (void)::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));  // EINPROGRESS
  return fd;
}

struct Probe {
  int status = 0;
  std::chrono::milliseconds took{0};
  std::string error;
};

// GET `path` on a fresh connection; everything (connect, send, answer) within `deadline`.
Probe probe(int port, const std::string& path, std::chrono::milliseconds deadline) {
  Probe out;
  const auto start = Clock::now();
  const auto left = [&] {
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(start + deadline - Clock::now())
            .count());
  };
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.error = std::string("socket: ") + std::strerror(errno);
    return out;
  }
  const sockaddr_in addr = loopback(port);
  std::string answer;
  const std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  bool connected = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) connected = true;
  while (left() > 0) {
    pollfd p{fd, static_cast<short>(!connected || sent < request.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&p, 1, left()) <= 0) continue;
    if (!connected) {
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        out.error = std::string("connect: ") + std::strerror(err);
        break;
      }
      connected = true;
      continue;
    }
    if (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
      continue;
    }
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      answer.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) break;
    if (errno != EAGAIN && errno != EWOULDBLOCK) break;
  }
  ::close(fd);
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (answer.rfind("HTTP/1.1 ", 0) == 0 && answer.size() >= 12) {
    out.status = std::stoi(answer.substr(9, 3));
  } else if (out.error.empty()) {
    out.error =
        answer.empty() ? "no answer within the deadline" : "not HTTP: " + answer.substr(0, 80);
  }
  return out;
}

TEST(HttpServerSlowlorisTest, ProbesAnswerWithinOneSecondWhileAThousandConnectionsTrickle) {
  ASSERT_TRUE(raiseFdLimit(2 * kAttackers + 4096))
      << "cannot raise RLIMIT_NOFILE for " << kAttackers << " connections";

  HttpServer server;
  auto ok = [](const std::string& body) {
    return [body](const HttpRequest&) { return HttpResponse::json(200, body); };
  };
  server.route("GET", "/metrics", [](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = "pg_up 1\n";
    return r;
  });
  server.route("GET", "/health", ok("{\"status\":\"ok\"}\n"));
  server.route("GET", "/health/ready", ok("{\"ready\":true}\n"));
  HttpServerOptions options;  // the agent's defaults: 4 handler threads, 10 s request timeout
  options.listen = HostPort{"127.0.0.1", 0};
  ASSERT_TRUE(server.start(options).ok());
  const int port = server.port();

  std::vector<int> slow;
  slow.reserve(kAttackers);
  for (int i = 0; i < kAttackers; ++i) {
    const int fd = openSlowConnection(port);
    ASSERT_GE(fd, 0) << "attacker " << i << ": " << std::strerror(errno);
    slow.push_back(fd);
  }

  // The attack: one more byte on every connection each kTrickleEvery, for kAttackFor.
  std::atomic<bool> attacking{true};
  std::atomic<size_t> bytes_sent{0};
  std::atomic<int> passes{0};
  std::thread attacker([&] {
    size_t next = 0;
    const auto until = Clock::now() + kAttackFor;
    while (Clock::now() < until && next < kSlowHead.size()) {
      for (int fd : slow) {
        if (::send(fd, &kSlowHead[next], 1, MSG_NOSIGNAL) == 1) ++bytes_sent;
      }
      ++next;
      ++passes;
      const auto wake = Clock::now() + kTrickleEvery;
      while (Clock::now() < wake && Clock::now() < until) std::this_thread::sleep_for(10ms);
    }
    attacking = false;
  });

  // Probe while the attack lasts, after its second pass over the slow connections.
  while (attacking && passes < 2) {
    std::this_thread::sleep_for(5ms);
  }
  int rounds = 0;
  while (attacking && rounds < 4) {
    for (const std::string path : {"/metrics", "/health", "/health/ready"}) {
      const Probe p = probe(port, path, kProbeDeadline);
      EXPECT_EQ(p.status, 200) << path << " under attack (round " << rounds << "): " << p.error
                               << " after " << p.took.count() << " ms";
      EXPECT_LT(p.took, kProbeDeadline) << path;
    }
    ++rounds;
  }
  attacker.join();
  EXPECT_GE(rounds, 1) << "the attack ended before any probe";
  EXPECT_GT(bytes_sent.load(), static_cast<size_t>(kAttackers)) << "the attack did not trickle";
  for (int fd : slow) ::close(fd);
  const auto stop_start = Clock::now();
  server.stop();
  EXPECT_LT(Clock::now() - stop_start, 2s) << "stop() waits for nothing";
}

}  // namespace
}  // namespace dbpulse
