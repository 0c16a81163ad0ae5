#include "integration/harness/dbpulse_process.h"

#include <unistd.h>

#include <filesystem>

#include "integration/harness/harness_error.h"
#include "integration/harness/net.h"
#include "integration/harness/poll.h"

#ifndef DBPULSE_BINARY
#error "DBPULSE_BINARY must be defined by the build (path of the dbpulse executable)"
#endif

namespace dbpulse::testing {

namespace {

constexpr std::size_t kScrapeQuoteBytes = 6000;

void requireBuiltBinary() {
  if (::access(dbpulseBinary().c_str(), X_OK) != 0) {
    throw HarnessError(dbpulseBinary().string() +
                       " is missing: build the `dbpulse` target before the integration tests");
  }
}

std::string truncated(const std::string& text) {
  if (text.size() <= kScrapeQuoteBytes) return text;
  return text.substr(0, kScrapeQuoteBytes) + "\n[... " +
         std::to_string(text.size() - kScrapeQuoteBytes) + " more bytes]";
}

}  // namespace

std::filesystem::path dbpulseBinary() { return DBPULSE_BINARY; }

CommandResult runDbpulse(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                         const RunOptions& options) {
  requireBuiltBinary();
  std::vector<std::string> argv = {dbpulseBinary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions run = options;
  run.env_remove_prefixes.push_back("DBPULSE_");
  return runCommand(argv, timeout, run);
}

DbpulseProcess::DbpulseProcess(int port)
    : dir_("dbpulse-agent-"), port_(port != 0 ? port : freeLoopbackPort()) {
  std::filesystem::create_directory(stateDir());
}

DbpulseProcess::~DbpulseProcess() {
  process_.reset();
  if (currentTestFailed()) dumpFileTail("dbpulse log", logPath());
}

std::string DbpulseProcess::listenAddress() const { return "127.0.0.1:" + std::to_string(port_); }

std::string DbpulseProcess::baseUrl() const { return "http://" + listenAddress(); }

std::filesystem::path DbpulseProcess::writeConfig(std::string_view toml, std::string_view name) {
  const std::filesystem::path path = dir_ / name;
  writeFile(path, toml);
  return path;
}

void DbpulseProcess::start(std::string_view toml, const std::vector<std::string>& extra_args,
                           const std::map<std::string, std::string>& env) {
  requireBuiltBinary();
  if (process_ && process_->alive()) throw HarnessError("dbpulse is already running");
  process_.reset();
  writeConfig(toml);
  ProcessOptions options;
  options.argv = {dbpulseBinary().string(), "run", "--config", configPath().string()};
  options.argv.insert(options.argv.end(), extra_args.begin(), extra_args.end());
  options.env = env;
  options.env_remove_prefixes = {"DBPULSE_"};
  options.log_file = logPath();
  options.working_dir = dir_.path();
  options.stop_grace = std::chrono::seconds(10);  // the contract's shutdown bound
  process_ = std::make_unique<ChildProcess>(options);
}

bool DbpulseProcess::running() { return process_ != nullptr && process_->alive(); }

ChildProcess& DbpulseProcess::process() {
  if (!process_) throw HarnessError("dbpulse was not started");
  return *process_;
}

::testing::AssertionResult DbpulseProcess::waitStatus200(std::string_view path,
                                                         std::chrono::milliseconds timeout) {
  HttpResponse last;
  const bool ok = pollUntil(
      [&] {
        if (!running()) return true;
        last = get(path, std::chrono::milliseconds(2000));
        return last.status == 200;
      },
      timeout);
  if (ok && last.status == 200) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  if (!running()) {
    failure << "dbpulse exited (code " << process_->exitCode().value_or(-1) << ") before GET "
            << path << " answered 200";
  } else {
    failure << "GET " << path << " did not answer 200 within " << timeout.count()
            << " ms; last: status " << last.status << " " << last.error << " " << last.body;
  }
  return failure << "\n--- dbpulse log ---\n" << logTail();
}

::testing::AssertionResult DbpulseProcess::waitHealthy(std::chrono::milliseconds timeout) {
  return waitStatus200("/health", timeout);
}

::testing::AssertionResult DbpulseProcess::waitReady(std::chrono::milliseconds timeout) {
  return waitStatus200("/health/ready", timeout);
}

HttpResponse DbpulseProcess::get(std::string_view path, std::chrono::milliseconds timeout) const {
  return httpGet(baseUrl() + std::string(path), timeout);
}

std::string DbpulseProcess::metrics() const {
  HttpResponse response = get("/metrics");
  return response.status == 200 ? std::move(response.body) : std::string();
}

::testing::AssertionResult DbpulseProcess::waitForMetrics(
    const std::function<bool(const std::string&)>& predicate, std::chrono::milliseconds timeout,
    std::string_view what, std::string* last) {
  std::string text;
  const bool ok = pollUntil(
      [&] {
        if (!running()) return true;
        text = metrics();
        return predicate(text);
      },
      timeout, std::chrono::milliseconds(100));
  if (last != nullptr) *last = text;
  if (ok && running()) return ::testing::AssertionSuccess();
  auto failure = ::testing::AssertionFailure();
  if (!running()) {
    failure << "dbpulse exited (code " << process_->exitCode().value_or(-1)
            << ") while waiting for: " << what;
  } else {
    failure << "within " << timeout.count() << " ms /metrics never showed: " << what
            << "\n--- last scrape ---\n"
            << truncated(text);
  }
  return failure << "\n--- dbpulse log ---\n" << logTail();
}

bool DbpulseProcess::signal(int signo) { return process_ != nullptr && process_->signal(signo); }

std::optional<int> DbpulseProcess::terminate(std::chrono::milliseconds timeout) {
  if (!process_) return std::nullopt;
  process_->signal(SIGTERM);
  return process_->waitExit(timeout);
}

std::string DbpulseProcess::logTail(std::size_t max_bytes) const {
  return readTail(logPath(), max_bytes);
}

}  // namespace dbpulse::testing
