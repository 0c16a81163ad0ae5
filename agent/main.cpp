// dbpulse: parse the command line, load the config, hand over to the Agent.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "agent/agent.h"
#include "agent/cli.h"
#include "agent/config.h"
#include "agent/logging.h"

namespace {

constexpr int kExitConfigError = 2;
constexpr auto kShutdownGrace = dbpulse::Duration(8000);  // of the 10 s the design allows

std::optional<dbpulse::Config> loadOrReport(const std::string& path) {
  auto result = dbpulse::loadConfigFile(path, dbpulse::processEnvironment());
  for (const auto& e : result.errors) std::cerr << e.toString() << "\n";
  return std::move(result.config);
}

// SIGTERM/SIGINT/SIGHUP are blocked in every thread and taken here with sigwait,
// so no signal handler runs in the middle of library code.
int runDaemon(const std::string& path) {
  auto config = loadOrReport(path);
  if (!config) return kExitConfigError;
  dbpulse::setupLogging(config->agent.log_format, config->agent.log_level);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  spdlog::info("dbpulse {} starting, config {}", DBPULSE_VERSION, path);
  dbpulse::Agent agent(std::move(*config));
  if (auto s = agent.start(); !s.ok()) {
    spdlog::critical("{}", s.message());
    return 1;
  }

  int sig = 0;
  while (true) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    spdlog::info("SIGHUP: reloading {}", path);
    agent.reloadFromFile();
  }

  spdlog::info("{}: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // A second signal, or shutdown overrunning its 10 s, ends the process at once.
  std::thread([signals] {
    // Interruptions (EINTR: LeakSanitizer's stop-the-world at exit, a debugger) are neither
    // a second signal nor the end of the 10 s: wait on for what is left.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int second = -1;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      timespec limit{static_cast<time_t>(left.count() / 1'000'000'000),
                     static_cast<long>(left.count() % 1'000'000'000)};
      second = sigtimedwait(&signals, nullptr, &limit);
      if (second > 0 || errno != EINTR) break;
    }
    // Plain stderr: by now the loggers may be torn down with the rest of the process.
    const char* why = second > 0 ? "dbpulse: second signal: exiting now\n"
                                 : "dbpulse: shutdown took too long: exiting now\n";
    (void)!::write(STDERR_FILENO, why, std::strlen(why));
    _exit(1);
  }).detach();
  const bool clean = agent.stop(kShutdownGrace);
  spdlog::info("stopped");
  spdlog::default_logger()->flush();
  if (!clean) _exit(1);  // a collector thread is stuck: skip destructors
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives each thread that allocates its own arena (about 1 MiB resident each); a
  // sidecar with a dozen mostly idle threads is better off sharing two.
  mallopt(M_ARENA_MAX, 2);
  // A fixed mmap threshold: large buffers (a scrape body, a big result set) are mapped and
  // unmapped on free. glibc's default raises the threshold after the first such free, and
  // later large buffers then fragment the heap and stay resident for the process' life.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
  CLI::App app{
      "dbpulse: a database-health sidecar agent for PostgreSQL, Redis and the chat server"};
  app.set_version_flag("--version", std::string("dbpulse ") + DBPULSE_VERSION);
  app.require_subcommand(0, 1);

  std::string config_path;
  app.add_option("--config", config_path, "Config file (same as `dbpulse run --config FILE`)");

  auto* run = app.add_subcommand("run", "Run the agent (the default)");
  run->add_option("--config", config_path, "Config file")->required();

  std::string check_path;
  auto* check = app.add_subcommand(
      "check-config", "Validate a config file: exit 0, or 2 with FILE:LINE:COL errors");
  check->add_option("file", check_path, "Config file")->required();

  std::string once_format = "prometheus";
  auto* once =
      app.add_subcommand("once", "Run every enabled collector once, print the samples, exit");
  once->add_option("--config", config_path, "Config file")->required();
  once->add_option("--format", once_format, "Output format")
      ->check(CLI::IsMember({"prometheus", "json"}));

  std::string suggest_format = "table";
  auto* suggest = app.add_subcommand(
      "suggest-indexes", "Run the index advisor once (progress on stderr), print, exit");
  suggest->add_option("--config", config_path, "Config file")->required();
  suggest->add_option("--format", suggest_format, "Output format")
      ->check(CLI::IsMember({"table", "json"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (*check) {
    auto config = loadOrReport(check_path);
    if (!config) return kExitConfigError;
    std::cout << check_path << ": OK\n";
    return 0;
  }
  if (*once) {
    auto config = loadOrReport(config_path);
    if (!config) return kExitConfigError;
    dbpulse::setupLogging(dbpulse::LogFormat::kText, "warn");
    return dbpulse::runOnceCommand(
        *config,
        once_format == "json" ? dbpulse::OutputFormat::kJson : dbpulse::OutputFormat::kPrometheus,
        std::cout);
  }
  if (*suggest) {
    auto config = loadOrReport(config_path);
    if (!config) return kExitConfigError;
    dbpulse::setupLogging(dbpulse::LogFormat::kText, "warn");
    return dbpulse::suggestIndexesCommand(*config, suggest_format == "json", std::cout, std::cerr);
  }
  if (config_path.empty()) {
    std::cerr << "dbpulse: --config FILE is required (see --help)\n";
    return kExitConfigError;
  }
  return runDaemon(config_path);
}
