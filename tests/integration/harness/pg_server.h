#pragma once
// A real, throwaway PostgreSQL for integration tests, and a small client for it. The major
// version is Debian's 15 unless $DBPULSE_TEST_PG_MAJOR names another (13..18): ctest runs the
// PostgreSQL-facing tests once per major (tests/CMakeLists.txt) on the server trees that
// packaging/pg_versions.sh unpacks.
//
// PgServer runs initdb into a fresh temp dir and starts `postgres` in the foreground on a
// free loopback port (TCP on 127.0.0.1 plus a Unix socket in the temp dir), with
// pg_stat_statements preloaded and durability off (fsync, synchronous_commit,
// full_page_writes) for speed. When the tests run as root, initdb and postgres run as the
// `postgres` OS user (PostgreSQL refuses root) and the temp dir is chowned to it.
// stop() and start() keep the data directory and the port, so a test can take the
// database away under a running agent and bring it back.
//
// Logs (initdb.log, postgres.log) live in the temp dir; they are printed to stderr when the
// server is destroyed after a failure, and quoted in HarnessError messages.
//
// Check requirePostgres() before constructing one (see require.h). Not thread-safe.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

class ChildProcess;

// One libpq connection (via libpqxx), statements in autocommit mode. Move-only.
// Every failure throws HarnessError naming the statement and the server's message.
class PgClient {
 public:
  // `dsn` is a libpq key=value string; connect_timeout=5 is added when absent.
  explicit PgClient(const std::string& dsn);
  ~PgClient();
  PgClient(PgClient&&) noexcept;
  PgClient& operator=(PgClient&&) noexcept;
  PgClient(const PgClient&) = delete;
  PgClient& operator=(const PgClient&) = delete;

  void exec(std::string_view sql);
  // Every row, each column as text (nullopt for NULL).
  std::vector<std::vector<std::optional<std::string>>> query(std::string_view sql);
  // The first column of the first row; nullopt when there is no row or it is NULL.
  std::optional<std::string> queryValue(std::string_view sql);
  // pg_backend_pid() of this connection.
  int backendPid();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The majors the tests know how to run, and the one selected for this process:
// $DBPULSE_TEST_PG_MAJOR, 15 when unset. Throws HarnessError for any other value.
inline constexpr int kOldestPgMajor = 13;
inline constexpr int kNewestPgMajor = 18;
inline constexpr int kDebianPgMajor = 15;
int testedPgMajor();
// Server binaries (initdb, postgres) of a major: /usr/lib/postgresql/15/bin for Debian's 15,
// <cache>/<major>/bin for the others, <cache> being $DBPULSE_PG_CACHE or /var/cache/dbpulse-pg
// (packaging/pg_versions.sh fills it).
std::filesystem::path pgBinDir(int major);
// The pg_stat_statements module of that installation.
std::filesystem::path pgStatStatementsModule(int major);

struct PgServerOptions {
  std::filesystem::path bin_dir = pgBinDir(testedPgMajor());
  // Extra "name=value" settings passed as -c to postgres.
  std::vector<std::string> settings;
  std::chrono::milliseconds start_timeout{30000};
  std::chrono::milliseconds stop_timeout{30000};
};

class PgServer {
 public:
  // initdb + start. Throws HarnessError (with the log tail) when either fails.
  explicit PgServer(PgServerOptions options = {});
  // Stops the server (fast shutdown) and removes the temp dir.
  ~PgServer();

  PgServer(const PgServer&) = delete;
  PgServer& operator=(const PgServer&) = delete;

  // Starts the server again on the same port and data dir; returns once it accepts
  // connections. No-op when it is running. Throws HarnessError on failure.
  void start();
  // Fast shutdown (what `pg_ctl stop -m fast` does: SIGINT to the postmaster, which
  // disconnects clients) and waits for the postmaster to exit. No-op when stopped.
  void stop();
  bool running();
  // The postmaster's pid first, then its children's (backends, background processes);
  // empty when it is not running.
  std::vector<int> processIds();

  // server_version_num / 10000 of the running server (13..18), read once after the start.
  int major() const { return major_; }

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // A libpq key=value DSN: "host=127.0.0.1 port=N dbname=D user=U".
  std::string dsn(std::string_view dbname = "postgres", std::string_view user = "postgres") const;

  // One-off statements on a fresh connection (as the superuser `postgres`).
  void exec(std::string_view sql, std::string_view dbname = "postgres");
  std::optional<std::string> queryValue(std::string_view sql, std::string_view dbname = "postgres");
  // A connection the caller keeps open (e.g. to show up in pg_stat_activity).
  PgClient connect(std::string_view dbname = "postgres", std::string_view user = "postgres");

  // CREATE DATABASE unless it exists already (the shared server outlives single tests).
  void createDatabase(std::string_view name);

  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path dataDir() const { return dir_ / "data"; }
  std::filesystem::path logPath() const { return dir_ / "postgres.log"; }
  std::string logTail(std::size_t max_bytes = 8192) const;

 private:
  void initdb();
  // Starts postmaster; false when it failed because the port was taken.
  bool tryStart();

  PgServerOptions options_;
  std::string run_as_;  // "postgres" when we are root
  TempDir dir_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  int major_ = 0;
  std::unique_ptr<ChildProcess> postmaster_;
};

// SIGSTOPs processes (a hung server: sockets stay open, nothing answers) and SIGCONTs them
// when resumed or destroyed, so a failing test never leaves a server frozen. Not
// thread-safe.
class PausedProcesses {
 public:
  explicit PausedProcesses(std::vector<int> pids);
  ~PausedProcesses() { resume(); }
  PausedProcesses(const PausedProcesses&) = delete;
  PausedProcesses& operator=(const PausedProcesses&) = delete;

  void resume();
  const std::vector<int>& pids() const { return pids_; }

 private:
  std::vector<int> pids_;
  bool paused_ = false;
};

}  // namespace dbpulse::testing
