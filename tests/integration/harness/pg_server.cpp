#include "integration/harness/pg_server.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <pqxx/pqxx>
#include <sstream>

#include "integration/harness/child_process.h"
#include "integration/harness/harness_error.h"
#include "integration/harness/net.h"
#include "integration/harness/os_user.h"
#include "integration/harness/poll.h"

namespace dbpulse::testing {

namespace {

constexpr int kPortAttempts = 3;

std::string withConnectTimeout(const std::string& dsn) {
  if (dsn.find("connect_timeout") != std::string::npos) return dsn;
  return dsn + " connect_timeout=5";
}

// Identifiers from tests are simple names; quote them anyway.
std::string quoteIdent(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quoteLiteral(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::filesystem::path pgCacheDir() {
  const char* cache = std::getenv("DBPULSE_PG_CACHE");
  return (cache != nullptr && *cache != '\0') ? cache : "/var/cache/dbpulse-pg";
}

}  // namespace

int testedPgMajor() {
  const char* env = std::getenv("DBPULSE_TEST_PG_MAJOR");
  if (env == nullptr || *env == '\0') return kDebianPgMajor;
  const std::string value(env);
  for (int major = kOldestPgMajor; major <= kNewestPgMajor; ++major) {
    if (value == std::to_string(major)) return major;
  }
  throw HarnessError("DBPULSE_TEST_PG_MAJOR='" + value + "': expected a PostgreSQL major from " +
                     std::to_string(kOldestPgMajor) + " to " + std::to_string(kNewestPgMajor));
}

std::filesystem::path pgBinDir(int major) {
  if (major == kDebianPgMajor) return "/usr/lib/postgresql/15/bin";
  return pgCacheDir() / std::to_string(major) / "bin";
}

std::filesystem::path pgStatStatementsModule(int major) {
  if (major == kDebianPgMajor) return "/usr/lib/postgresql/15/lib/pg_stat_statements.so";
  return pgCacheDir() / std::to_string(major) / "lib" / "postgresql" / "pg_stat_statements.so";
}

// ---- PgClient ----

struct PgClient::Impl {
  explicit Impl(const std::string& dsn) : connection(dsn) {}
  pqxx::connection connection;
};

PgClient::PgClient(const std::string& dsn) {
  try {
    impl_ = std::make_unique<Impl>(withConnectTimeout(dsn));
  } catch (const std::exception& e) {
    throw HarnessError("connect '" + dsn + "': " + e.what());
  }
}

PgClient::~PgClient() = default;
PgClient::PgClient(PgClient&&) noexcept = default;
PgClient& PgClient::operator=(PgClient&&) noexcept = default;

std::vector<std::vector<std::optional<std::string>>> PgClient::query(std::string_view sql) {
  try {
    pqxx::nontransaction tx(impl_->connection);
    const pqxx::result result = tx.exec(std::string(sql));
    std::vector<std::vector<std::optional<std::string>>> rows;
    rows.reserve(result.size());
    for (const pqxx::row& row : result) {
      std::vector<std::optional<std::string>> values;
      values.reserve(row.size());
      for (const pqxx::field& field : row) {
        values.push_back(field.is_null() ? std::nullopt
                                         : std::optional<std::string>(field.c_str()));
      }
      rows.push_back(std::move(values));
    }
    return rows;
  } catch (const std::exception& e) {
    throw HarnessError("query '" + std::string(sql) + "': " + e.what());
  }
}

void PgClient::exec(std::string_view sql) { query(sql); }

std::optional<std::string> PgClient::queryValue(std::string_view sql) {
  auto rows = query(sql);
  if (rows.empty() || rows.front().empty()) return std::nullopt;
  return rows.front().front();
}

int PgClient::backendPid() { return impl_->connection.backendpid(); }

// ---- PgServer ----

PgServer::PgServer(PgServerOptions options)
    : options_(std::move(options)),
      run_as_(runningAsRoot() ? "postgres" : ""),
      dir_("dbpulse-pg-", run_as_) {
  initdb();
  for (int attempt = 1;; ++attempt) {
    port_ = freeLoopbackPort();
    if (tryStart()) {
      major_ = std::stoi(queryValue("SELECT current_setting('server_version_num')").value_or("0")) /
               10000;
      return;
    }
    if (attempt == kPortAttempts) {
      throw HarnessError("postgres: port taken " + std::to_string(kPortAttempts) +
                         " times in a row; log:\n" + logTail());
    }
  }
}

PgServer::~PgServer() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::cerr << "PgServer: stop failed: " << e.what() << "\n";
  }
  postmaster_.reset();  // SIGKILLs and reaps if stop() could not
  if (currentTestFailed()) {
    dumpFileTail("postgres log", logPath());
  }
}

void PgServer::initdb() {
  ProcessOptions process;
  process.argv = {(options_.bin_dir / "initdb").string(),
                  "-D",
                  dataDir().string(),
                  "-U",
                  "postgres",
                  "--auth=trust",
                  "--encoding=UTF8",
                  "--locale=C",
                  "--no-sync"};  // not --no-instructions: PG 14+ only
  process.log_file = dir_ / "initdb.log";
  process.run_as_user = run_as_;
  ChildProcess child(process);
  const std::optional<int> code = child.waitExit(std::chrono::seconds(120));
  if (code != 0) {
    throw HarnessError("initdb failed (" +
                       (code ? "exit " + std::to_string(*code) : std::string("timed out")) +
                       "); log:\n" + child.logTail());
  }
}

bool PgServer::tryStart() {
  ProcessOptions process;
  process.argv = {(options_.bin_dir / "postgres").string(), "-D", dataDir().string()};
  std::vector<std::string> settings = {
      "listen_addresses=127.0.0.1",
      "port=" + std::to_string(port_),
      "unix_socket_directories=" + dir_.path().string(),
      "shared_preload_libraries=pg_stat_statements",
      "fsync=off",
      "synchronous_commit=off",
      "full_page_writes=off",
      "shared_buffers=16MB",
      "max_connections=50",
      "logging_collector=off",
  };
  settings.insert(settings.end(), options_.settings.begin(), options_.settings.end());
  for (const std::string& setting : settings) {
    process.argv.push_back("-c");
    process.argv.push_back(setting);
  }
  process.log_file = logPath();
  process.run_as_user = run_as_;
  process.stop_signal = SIGINT;  // fast shutdown
  process.stop_grace = options_.stop_timeout;

  const std::size_t log_offset = readFile(logPath()).size();
  postmaster_ = std::make_unique<ChildProcess>(process);
  const std::string dsn = this->dsn("postgres", "postgres") + " connect_timeout=2";
  const bool ready = pollUntil(
      [&] {
        if (!postmaster_->alive()) return true;
        try {
          pqxx::connection probe(dsn);
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      options_.start_timeout);
  if (ready && postmaster_->alive()) return true;

  const std::string this_start = readFile(logPath()).substr(log_offset);
  const std::string status = postmaster_->alive()
                                 ? "did not accept connections within " +
                                       std::to_string(options_.start_timeout.count()) + " ms"
                                 : "exited with code " + std::to_string(*postmaster_->exitCode());
  postmaster_.reset();
  if (this_start.find("could not bind") != std::string::npos ||
      this_start.find("Address already in use") != std::string::npos) {
    return false;
  }
  throw HarnessError("postgres on port " + std::to_string(port_) + " " + status + "; log:\n" +
                     readTail(logPath()));
}

void PgServer::start() {
  if (running()) return;
  if (!tryStart()) {
    throw HarnessError("postgres: port " + std::to_string(port_) +
                       " was taken while the server was stopped; log:\n" + logTail());
  }
}

void PgServer::stop() {
  if (!postmaster_) return;
  postmaster_->signal(SIGINT);
  const std::optional<int> code = postmaster_->waitExit(options_.stop_timeout);
  postmaster_.reset();
  if (!code) {
    throw HarnessError("postgres did not stop within " +
                       std::to_string(options_.stop_timeout.count()) + " ms (killed); log:\n" +
                       logTail());
  }
}

bool PgServer::running() { return postmaster_ != nullptr && postmaster_->alive(); }

std::vector<int> PgServer::processIds() {
  if (!running()) return {};
  const int postmaster = postmaster_->pid();
  std::vector<int> out{postmaster};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    int ppid = 0;
    if (rest >> state >> ppid && ppid == postmaster) out.push_back(std::stoi(name));
  }
  return out;
}

PausedProcesses::PausedProcesses(std::vector<int> pids) : pids_(std::move(pids)) {
  if (pids_.empty()) throw HarnessError("PausedProcesses: no process to pause");
  paused_ = true;
  for (int pid : pids_) ::kill(pid, SIGSTOP);
}

void PausedProcesses::resume() {
  if (!paused_) return;
  paused_ = false;
  for (int pid : pids_) ::kill(pid, SIGCONT);
}

std::string PgServer::dsn(std::string_view dbname, std::string_view user) const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " dbname=" + std::string(dbname) +
         " user=" + std::string(user);
}

void PgServer::exec(std::string_view sql, std::string_view dbname) {
  PgClient(dsn(dbname)).exec(sql);
}

std::optional<std::string> PgServer::queryValue(std::string_view sql, std::string_view dbname) {
  return PgClient(dsn(dbname)).queryValue(sql);
}

PgClient PgServer::connect(std::string_view dbname, std::string_view user) {
  return PgClient(dsn(dbname, user));
}

void PgServer::createDatabase(std::string_view name) {
  PgClient client(dsn("postgres"));
  if (client.queryValue("SELECT 1 FROM pg_database WHERE datname = " + quoteLiteral(name))) {
    return;
  }
  client.exec("CREATE DATABASE " + quoteIdent(name));
}

std::string PgServer::logTail(std::size_t max_bytes) const {
  return readTail(logPath(), max_bytes);
}

}  // namespace dbpulse::testing
