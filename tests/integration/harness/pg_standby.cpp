#include "integration/harness/pg_standby.h"

#include <unistd.h>

#include <csignal>
#include <filesystem>
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
  if (::access((options_.bin_dir / "pg_basebackup").c_str(), X_OK) == 0) {
    baseBackup(primary, data);
  } else {
    lowLevelBackup(primary, data);
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

void PgStandby::baseBackup(const PgServer& primary, const std::filesystem::path& data) {
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
}

namespace {

// Copies a running cluster's data directory file by file (what the low-level backup API
// expects): files that vanish while it copies (temporary ones) are skipped, the primary's
// lock file, WAL and replication slots are left out (the standby streams its WAL).
void copyDataDirectory(const std::filesystem::path& from, const std::filesystem::path& to,
                       const std::optional<OsUser>& owner) {
  namespace fs = std::filesystem;
  auto own = [&](const fs::path& p) {
    if (owner && ::lchown(p.c_str(), owner->uid, owner->gid) != 0) {
      throw HarnessError("chown " + p.string() + " failed");
    }
  };
  fs::create_directories(to);
  fs::permissions(to, fs::perms::owner_all);
  own(to);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), from);
    const std::string top = rel.begin()->string();
    const fs::path target = to / rel;
    if (it->is_directory()) {
      fs::create_directories(target);
      fs::permissions(target, fs::perms::owner_all);
      own(target);
      if (top == "pg_wal" || top == "pg_replslot") it.disable_recursion_pending();
      continue;
    }
    if (top == "postmaster.pid" || top == "postmaster.opts") continue;
    std::error_code copy_error;
    fs::copy_file(it->path(), target, copy_error);
    if (!copy_error) own(target);
  }
  fs::create_directories(to / "pg_wal" / "archive_status");
  own(to / "pg_wal" / "archive_status");
}

}  // namespace

void PgStandby::lowLevelBackup(const PgServer& primary, const std::filesystem::path& data) {
  // Non-exclusive backups end on the session that started them. Renamed in PG 15
  // (pg_start_backup/pg_stop_backup before).
  PgClient session(primary.dsn());
  const bool v15 = primary.major() >= 15;
  session.exec(v15 ? "SELECT pg_backup_start('dbpulse-standby', true)"
                   : "SELECT pg_start_backup('dbpulse-standby', true, false)");
  const std::optional<OsUser> owner = run_as_.empty() ? std::nullopt : lookupOsUser(run_as_);
  copyDataDirectory(primary.dataDir(), data, owner);
  const std::optional<std::string> label =
      session.queryValue(v15 ? "SELECT labelfile FROM pg_backup_stop(false)"
                             : "SELECT labelfile FROM pg_stop_backup(false, false)");
  if (!label) throw HarnessError("low-level backup: no backup_label from the primary");
  std::string conf = "primary_conninfo = 'host=" + primary.host() +
                     " port=" + std::to_string(primary.port()) + " user=postgres'\n";
  if (!options_.slot_name.empty()) conf += "primary_slot_name = '" + options_.slot_name + "'\n";
  for (const auto& [name, content] :
       {std::pair<std::string, std::string>{"backup_label", *label},
        {"standby.signal", ""},
        {"postgresql.auto.conf", readFile(data / "postgresql.auto.conf") + conf}}) {
    writeFile(data / name, content);
    if (owner && ::chown((data / name).c_str(), owner->uid, owner->gid) != 0) {
      throw HarnessError("chown " + (data / name).string() + " failed");
    }
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
