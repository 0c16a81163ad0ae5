#pragma once
// A real, throwaway redis-server for integration tests: a free loopback port, no
// persistence (--save "" --appendonly no), its working dir and log in a temp dir.
// stop()/start() keep the port. Check requireRedis() before constructing one.
// Not thread-safe.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

class ChildProcess;

struct RedisServerOptions {
  std::string binary = "/usr/bin/redis-server";
  // Extra command-line arguments, e.g. {"--requirepass", "secret"}.
  std::vector<std::string> extra_args;
  std::chrono::milliseconds start_timeout{15000};
};

class RedisServer {
 public:
  // Starts the server and waits for PING. Throws HarnessError (with the log) on failure.
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts again on the same port; no-op when running. Throws HarnessError.
  void start();
  // SIGTERM and wait for exit; no-op when stopped.
  void stop();
  bool running();

  int port() const { return port_; }
  // "127.0.0.1:PORT", the form of dbpulse's [redis] address.
  std::string address() const;

  // True when PING answers +PONG within `timeout`.
  bool ping(std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) const;

  // Sends one command (RESP) on a fresh connection and returns the reply: a simple or bulk
  // string as is, an integer as digits, nil as "", an array as its elements joined by '\n'.
  // An error reply or I/O failure throws HarnessError.
  std::string command(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) const;

  std::filesystem::path logPath() const { return dir_ / "redis.log"; }

 private:
  bool tryStart();

  RedisServerOptions options_;
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> server_;
};

}  // namespace dbpulse::testing
