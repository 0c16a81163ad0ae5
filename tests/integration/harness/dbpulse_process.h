#pragma once
// The real dbpulse binary (DBPULSE_BINARY, built by CMake) under test.
//
//   DbpulseProcess agent;                       // temp dir + a free loopback port
//   agent.start(R"([agent]
//   listen = ")" + agent.listenAddress() + R"("
//   state_dir = ")" + agent.stateDir().string() + "\"\n");
//   ASSERT_TRUE(agent.waitHealthy(15s));
//   std::string text = agent.metrics();
//
// The destructor stops the daemon (SIGTERM, then SIGKILL after 10 s) and prints its log
// when the test failed. DBPULSE_* variables of the test's own environment are never
// passed on, so only the test's config counts. Not thread-safe.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "integration/harness/child_process.h"
#include "integration/harness/http_client.h"
#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

// The dbpulse executable this test binary was built with.
std::filesystem::path dbpulseBinary();

// Runs `dbpulse ARGS...` to completion (check-config, once, --help, ...).
// Throws HarnessError when the binary is missing.
CommandResult runDbpulse(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(30000),
                         const RunOptions& options = {});

class DbpulseProcess {
 public:
  // `port` is the one the test's config must listen on; 0 picks a free one.
  explicit DbpulseProcess(int port = 0);
  ~DbpulseProcess();

  DbpulseProcess(const DbpulseProcess&) = delete;
  DbpulseProcess& operator=(const DbpulseProcess&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:PORT", for [agent] listen.
  std::string listenAddress() const;
  // "http://127.0.0.1:PORT"
  std::string baseUrl() const;
  const TempDir& dir() const { return dir_; }
  // An existing empty directory for [agent] state_dir.
  std::filesystem::path stateDir() const { return dir_ / "state"; }
  std::filesystem::path configPath() const { return dir_ / "dbpulse.toml"; }

  // Writes `toml` to a file in the temp dir (default: configPath()) and returns its path.
  std::filesystem::path writeConfig(std::string_view toml, std::string_view name = "dbpulse.toml");

  // Writes `toml` to configPath() and starts `dbpulse run --config <it> EXTRA_ARGS...`.
  // Throws HarnessError when it cannot be started (or is already running).
  void start(std::string_view toml, const std::vector<std::string>& extra_args = {},
             const std::map<std::string, std::string>& env = {});

  bool running();
  ChildProcess& process();

  // Polls GET /health until 200. On failure the message carries the last answer and the log.
  ::testing::AssertionResult waitHealthy(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(15000));
  // Polls GET /health/ready until 200.
  ::testing::AssertionResult waitReady(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(15000));

  HttpResponse get(std::string_view path,
                   std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;
  // The body of GET /metrics, or "" when there was no 200 answer.
  std::string metrics() const;

  // Scrapes /metrics until `predicate(text)` holds. `last` (optional) receives the last
  // scrape. On failure the message shows `what`, the last scrape and the log tail.
  ::testing::AssertionResult waitForMetrics(
      const std::function<bool(const std::string&)>& predicate, std::chrono::milliseconds timeout,
      std::string_view what, std::string* last = nullptr);

  bool signal(int signo);
  // SIGTERM, then waits up to `timeout`; the exit code, or nullopt if still running.
  std::optional<int> terminate(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

  std::filesystem::path logPath() const { return dir_ / "dbpulse.log"; }
  std::string logTail(std::size_t max_bytes = 8192) const;

 private:
  ::testing::AssertionResult waitStatus200(std::string_view path,
                                           std::chrono::milliseconds timeout);

  TempDir dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace dbpulse::testing
