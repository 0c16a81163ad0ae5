// The real agent's HTTP side under attack (issue 11): probes answer within 1 s while 1,000
// connections trickle a request head (and RSS stays small), admin calls are rate-limited
// per client and each leaves one audit line that never holds the token.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "integration/harness/harness.h"
#include "test_util/sockets.h"

namespace dbpulse::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr int kAttackers = 1000;

std::string baseConfig(const DbpulseProcess& agent) {
  return "[agent]\nlisten = \"" + agent.listenAddress() + "\"\nstate_dir = \"" +
         agent.stateDir().string() + "\"\nlog_format = \"text\"\n";
}

// VmRSS of `pid` in KiB, or -1.
long rssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

int openSlow(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  return fd;
}

TEST(HttpLivenessTest, ProbesAnswerWithinOneSecondUnderAThousandSlowConnections) {
  ASSERT_TRUE(raiseFdLimit(kAttackers + 1024));
  DbpulseProcess agent;
  agent.start(baseConfig(agent));
  ASSERT_TRUE(agent.waitReady(15s));
  const pid_t pid = agent.process().pid();
  const long rss_before = rssKib(pid);

  std::vector<int> slow;
  for (int i = 0; i < kAttackers; ++i) {
    const int fd = openSlow(agent.port());
    ASSERT_GE(fd, 0) << std::strerror(errno);
    slow.push_back(fd);
  }
  const std::string head = "GET /metrics HTTP/1.1\r\nHost: victim\r\nX-Slow: ";
  std::atomic<bool> attacking{true};
  std::atomic<size_t> sent{0};
  std::atomic<int> passes{0};
  std::thread attacker([&] {  // one byte per connection every 200 ms, for at most 4 s
    const auto until = SteadyClock::now() + 4s;
    for (size_t next = 0; next < head.size() && SteadyClock::now() < until; ++next) {
      for (int fd : slow) {
        if (::send(fd, &head[next], 1, MSG_NOSIGNAL) == 1) ++sent;
      }
      ++passes;
      const auto wake = SteadyClock::now() + 200ms;
      while (SteadyClock::now() < wake) std::this_thread::sleep_for(10ms);
    }
    attacking = false;
  });
  ASSERT_TRUE(pollUntil([&] { return passes >= 2 || !attacking; }, 10s));

  int rounds = 0;
  while (attacking && rounds < 3) {
    for (const char* path : {"/metrics", "/health", "/health/ready"}) {
      const auto start = SteadyClock::now();
      const HttpResponse r = httpGet(agent.baseUrl() + path, 1000ms);
      const auto took = SteadyClock::now() - start;
      EXPECT_EQ(r.status, 200) << path << ": " << r.error;
      EXPECT_LT(took, 1s) << path;
    }
    ++rounds;
  }
  const long rss_attacked = rssKib(pid);
  attacker.join();
  EXPECT_GE(rounds, 1);
  EXPECT_GT(sent.load(), static_cast<size_t>(kAttackers)) << "the attack did not trickle";
  for (int fd : slow) ::close(fd);
  std::printf("dbpulse RSS: %ld KiB before, %ld KiB with %d slow connections open\n", rss_before,
              rss_attacked, kAttackers);
  RecordProperty("rss_kib_before", std::to_string(rss_before));
  RecordProperty("rss_kib_with_1000_connections", std::to_string(rss_attacked));
  EXPECT_LT(rss_attacked - rss_before, 16 * 1024) << "1,000 connections should cost a few MiB";
  EXPECT_EQ(agent.get("/health").status, 200);
}

TEST(HttpLivenessTest, AdminCallsAreRateLimitedPerClientAndAudited) {
  DbpulseProcess agent;
  const std::string token = "s3cret-token-value-never-logged";
  writeFile(agent.dir() / "token", token + "\n");
  agent.start(baseConfig(agent) + "admin_token_file = \"" + (agent.dir() / "token").string() +
              "\"\nadmin_rate_limit = 1\nadmin_rate_burst = 3\n");
  ASSERT_TRUE(agent.waitHealthy(15s));
  const HttpHeaders good{{"Authorization", "Bearer " + token}};
  const std::string url = agent.baseUrl() + "/admin/rules";
  // The burst (3) is spent by these calls (one with a wrong token: guesses count too).
  EXPECT_EQ(httpRequest("GET", url, "", good).status, 200);
  EXPECT_EQ(httpRequest("GET", url, "", good).status, 200);
  EXPECT_EQ(httpRequest("GET", url, "", {{"Authorization", "Bearer wrong"}}).status, 401);
  const HttpResponse limited = httpRequest("GET", url, "", good);
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_GE(std::atoi(limited.header("Retry-After").c_str()), 1) << limited.header("Retry-After");
  EXPECT_NE(limited.body.find("\"code\":\"rate_limited\""), std::string::npos) << limited.body;
  // Probes are never rate-limited.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(agent.get("/health").status, 200);

  const std::string expect_ok =
      "admin call: client=127.0.0.1 token=valid method=GET path=/admin/rules status=200";
  ASSERT_TRUE(
      pollUntil([&] { return agent.logTail(65536).find("status=429") != std::string::npos; }, 5s))
      << agent.logTail();
  const std::string log = agent.logTail(65536);
  EXPECT_NE(log.find(expect_ok), std::string::npos) << log;
  EXPECT_NE(log.find("token=invalid method=GET path=/admin/rules status=401"), std::string::npos)
      << log;
  EXPECT_NE(log.find("token=valid method=GET path=/admin/rules status=429"), std::string::npos)
      << log;
  EXPECT_EQ(log.find(token), std::string::npos) << "the token must never be logged";
  EXPECT_EQ(log.find("wrong"), std::string::npos) << "nor a wrong one";
}

}  // namespace
}  // namespace dbpulse::testing
