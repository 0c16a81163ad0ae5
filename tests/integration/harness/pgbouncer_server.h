#pragma once
// A real, throwaway pgbouncer in front of a PgServer, for the pgbouncer collector's tests.
//
// Writes pgbouncer.ini and an auth file into a fresh temp dir and starts
// /usr/sbin/pgbouncer in the foreground on a free loopback port (no Unix socket), with
// auth_type=trust (the user names must still be in the auth file: every name in
// `users`, `admin_users` and `stats_users` is). Every database of the backend is reachable
// through it (a `*` entry). pgbouncer refuses to run as root: as root it runs as the
// `postgres` OS user, like PgServer. The constructor returns once pgbouncer listens on its
// port (it binds only after loading the config and auth file).
//
// The destructor stops it (SIGTERM: immediate shutdown) and prints its log when the test
// failed. Throws HarnessError (with the log tail) when it does not start (listen). Check
// requireBinary(kPgbouncerBinary, "pgbouncer") first. Not thread-safe.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

class ChildProcess;
class PgServer;

inline constexpr std::string_view kPgbouncerBinary = "/usr/sbin/pgbouncer";

struct PgbouncerOptions {
  std::filesystem::path binary{kPgbouncerBinary};
  std::string pool_mode = "session";
  int default_pool_size = 1;
  int max_client_conn = 50;
  std::vector<std::string> admin_users{"postgres"};
  std::vector<std::string> stats_users;
  std::vector<std::string> users{"postgres"};  // may log in (auth file)
  std::chrono::milliseconds start_timeout{10000};
};

class PgbouncerServer {
 public:
  PgbouncerServer(const PgServer& backend, PgbouncerOptions options = {});
  ~PgbouncerServer();
  PgbouncerServer(const PgbouncerServer&) = delete;
  PgbouncerServer& operator=(const PgbouncerServer&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // A libpq DSN to `dbname` through the pooler; dbname "pgbouncer" is the admin console.
  std::string dsn(std::string_view dbname, std::string_view user = "postgres") const;

  // Sends `signo` to pgbouncer (e.g. SIGSTOP/SIGCONT to play a stuck pooler). False when
  // it has exited.
  bool signal(int signo);

  std::filesystem::path iniPath() const { return dir_ / "pgbouncer.ini"; }
  std::filesystem::path logPath() const { return dir_ / "pgbouncer.log"; }
  std::string logTail(std::size_t max_bytes = 8192) const;

 private:
  void writeConfig(const PgServer& backend);
  bool tryStart();  // false when the port was taken

  PgbouncerOptions options_;
  std::string run_as_;
  TempDir dir_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace dbpulse::testing
