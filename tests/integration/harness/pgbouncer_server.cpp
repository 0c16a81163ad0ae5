#include "integration/harness/pgbouncer_server.h"

#include <optional>
#include <set>

#include "integration/harness/child_process.h"
#include "integration/harness/harness_error.h"
#include "integration/harness/net.h"
#include "integration/harness/os_user.h"
#include "integration/harness/pg_server.h"
#include "integration/harness/poll.h"

namespace dbpulse::testing {

namespace {

constexpr int kPortAttempts = 3;

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

}  // namespace

PgbouncerServer::PgbouncerServer(const PgServer& backend, PgbouncerOptions options)
    : options_(std::move(options)),
      run_as_(runningAsRoot() ? "postgres" : ""),
      dir_("dbpulse-pgbouncer-", run_as_) {
  for (int attempt = 1;; ++attempt) {
    port_ = freeLoopbackPort();
    writeConfig(backend);
    if (tryStart()) return;
    if (attempt == kPortAttempts) {
      throw HarnessError("pgbouncer: port taken " + std::to_string(kPortAttempts) +
                         " times in a row; log:\n" + logTail());
    }
  }
}

PgbouncerServer::~PgbouncerServer() {
  process_.reset();  // SIGTERM (immediate shutdown), SIGKILL after the grace period
  if (currentTestFailed()) dumpFileTail("pgbouncer log", logPath());
}

void PgbouncerServer::writeConfig(const PgServer& backend) {
  std::set<std::string> users(options_.users.begin(), options_.users.end());
  users.insert(options_.admin_users.begin(), options_.admin_users.end());
  users.insert(options_.stats_users.begin(), options_.stats_users.end());
  std::string auth;
  for (const std::string& u : users) auth += "\"" + u + "\" \"\"\n";
  writeFile(dir_ / "userlist.txt", auth);

  const std::string ini =
      "[databases]\n"
      "* = host=" +
      backend.host() + " port=" + std::to_string(backend.port()) +
      "\n"
      "\n[pgbouncer]\n"
      "listen_addr = " +
      host_ +
      "\n"
      "listen_port = " +
      std::to_string(port_) +
      "\n"
      "unix_socket_dir =\n"
      "auth_type = trust\n"
      "auth_file = " +
      (dir_ / "userlist.txt").string() +
      "\n"
      "admin_users = " +
      joined(options_.admin_users) +
      "\n"
      "stats_users = " +
      joined(options_.stats_users) +
      "\n"
      "pool_mode = " +
      options_.pool_mode +
      "\n"
      "default_pool_size = " +
      std::to_string(options_.default_pool_size) +
      "\n"
      "max_client_conn = " +
      std::to_string(options_.max_client_conn) +
      "\n"
      // libpq and PgSession send these startup parameters; pgbouncer rejects unknown ones.
      "ignore_startup_parameters = extra_float_digits,options\n"
      "logfile =\n"
      "pidfile =\n";
  writeFile(iniPath(), ini);
}

bool PgbouncerServer::tryStart() {
  ProcessOptions process;
  process.argv = {options_.binary.string(), iniPath().string()};
  process.log_file = logPath();
  process.run_as_user = run_as_;
  const std::size_t log_offset = readFile(logPath()).size();
  process_ = std::make_unique<ChildProcess>(process);
  // Listening means ready: pgbouncer binds its port after loading the config and auth
  // file. (A libpqxx probe of the console cannot work: libpqxx rejects its server_version.)
  const bool ready =
      pollUntil([&] { return !process_->alive() || canConnect(port_); }, options_.start_timeout);
  if (ready && process_->alive()) return true;
  const std::string this_start = readFile(logPath()).substr(log_offset);
  process_.reset();
  if (this_start.find("Address already in use") != std::string::npos) return false;
  throw HarnessError("pgbouncer on port " + std::to_string(port_) + " did not start; log:\n" +
                     readTail(logPath()));
}

std::string PgbouncerServer::dsn(std::string_view dbname, std::string_view user) const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " dbname=" + std::string(dbname) +
         " user=" + std::string(user);
}

bool PgbouncerServer::signal(int signo) { return process_ != nullptr && process_->signal(signo); }

std::string PgbouncerServer::logTail(std::size_t max_bytes) const {
  return readTail(logPath(), max_bytes);
}

}  // namespace dbpulse::testing
