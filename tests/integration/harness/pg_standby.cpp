#include "integration/harness/pg_standby.h"

#include <csignal>
#include <iostream>
#include <optional>
#include <pqxx/pqxx>
#include <vector>

#include "integration/harness/child_process.h"
#include "integration/harness/harness_error.h"
#include "integration/harness/net.h"
#include "integration/harness/os_user.h"
#include "integration/harness/pg_server.h"
#include "integration/harness/poll.h"

namespace dbpulse::testing {

PgStandby::PgStandby(const PgServer& primary, PgStandbyOptions options)
    : options_(std::move(options)),
      run_as_(runningAsRoot() ? "postgres" : ""),
      dir_("dbpulse-standby-", run_as_) {
  const std::filesystem::path data = dir_ / "data";
  std::vector<std::string> backup = {(options_.bin_dir / "pg_basebackup").string(),
                                     "-h",
                                     primary.host(),
                                     "-p",
                                     std::to_string(primary.port()),
                                     "-U",
                                     "postgres",
                                     "-D",
                                     data.string(),
                                     "-R",
                                     "-X",
                                     "stream",
                                     "-c",
                                     "fast",
                                     "--no-sync"};
  if (!options_.slot_name.empty()) {
    backup.push_back("-S");
    backup.push_back(options_.slot_name);
  }
  ProcessOptions basebackup;
  basebackup.argv = backup;
  basebackup.log_file = dir_ / "basebackup.log";
  basebackup.run_as_user = run_as_;
  {
    ChildProcess child(basebackup);
    const std::optional<int> code = child.waitExit(std::chrono::seconds(60));
    if (code != 0) {
      throw HarnessError("pg_basebackup failed (" +
                         (code ? "exit " + std::to_string(*code) : std::string("timed out")) +
                         "); log:\n" + child.logTail());
    }
  }

  port_ = freeLoopbackPort();
  ProcessOptions process;
  process.argv = {(options_.bin_dir / "postgres").string(), "-D", data.string(), "-c",
                  "listen_addresses=127.0.0.1", "-c", "port=" + std::to_string(port_), "-c",
                  "unix_socket_directories=" + dir_.path().string(),
                  // The walreceiver's application_name defaults to cluster_name.
                  "-c", "cluster_name=" + options_.application_name, "-c", "hot_standby=on", "-c",
                  "fsync=off", "-c", "shared_buffers=16MB", "-c", "max_connections=50", "-c",
                  "logging_collector=off"};
  process.log_file = logPath();
  process.run_as_user = run_as_;
  process.stop_signal = SIGINT;
  postmaster_ = std::make_unique<ChildProcess>(process);
  const std::string probe_dsn = dsn() + " connect_timeout=2";
  const bool ready = pollUntil(
      [&] {
        if (!postmaster_->alive()) return true;
        try {
          pqxx::connection probe(probe_dsn);
          return true;
        } catch (const std::exception&) {
          return false;
        }
      },
      options_.start_timeout);
  if (!ready || !postmaster_->alive()) {
    const std::string log = readTail(logPath());
    postmaster_.reset();
    throw HarnessError("standby on port " + std::to_string(port_) + " did not start; log:\n" + log);
  }
}

PgStandby::~PgStandby() {
  if (postmaster_) {
    postmaster_->signal(SIGINT);
    if (!postmaster_->waitExit(std::chrono::seconds(30))) {
      std::cerr << "PgStandby: fast shutdown timed out; killing\n";
    }
    postmaster_.reset();
  }
  if (currentTestFailed()) dumpFileTail("standby log", logPath());
}

std::string PgStandby::dsn(std::string_view dbname, std::string_view user) const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " dbname=" + std::string(dbname) +
         " user=" + std::string(user);
}

}  // namespace dbpulse::testing
