#pragma once
// A real streaming standby of a PgServer, for replication tests.
//
// The constructor takes a base backup of `primary` with pg_basebackup (-R writes
// standby.signal and primary_conninfo; -X stream; optionally on a physical replication
// slot) or, where the server tree has no pg_basebackup (the npm trees of
// packaging/pg_versions.sh; Debian's 15 client refuses newer servers), with the low-level
// API: pg_backup_start/pg_start_backup, a file copy, pg_backup_stop/pg_stop_backup and its
// backup_label, the standby then streaming its WAL from the primary. Then it starts `postgres` on
// the copy on a free loopback port and waits until it accepts connections. As root, both run as the
// `postgres` OS user, like PgServer. With fsync off and a small database this takes well under a
// second or two.
//
// The standby's walreceiver reports `application_name` to the primary (pg_stat_replication).
// The destructor stops the standby (fast shutdown) and removes its directory.
// Throws HarnessError (with the log tail) when the backup or the start fails. Not
// thread-safe.

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "integration/harness/pg_server.h"
#include "integration/harness/temp_dir.h"

namespace dbpulse::testing {

class ChildProcess;

struct PgStandbyOptions {
  std::filesystem::path bin_dir = pgBinDir(testedPgMajor());  // the primary's major
  std::string application_name = "standby";
  std::string slot_name;  // "" = no slot; otherwise it must exist on the primary
  std::chrono::milliseconds start_timeout{30000};
};

class PgStandby {
 public:
  PgStandby(const PgServer& primary, PgStandbyOptions options = {});
  ~PgStandby();
  PgStandby(const PgStandby&) = delete;
  PgStandby& operator=(const PgStandby&) = delete;

  const std::string& host() const { return host_; }
  int port() const { return port_; }
  std::string dsn(std::string_view dbname = "postgres", std::string_view user = "postgres") const;
  std::filesystem::path logPath() const { return dir_ / "standby.log"; }

 private:
  void baseBackup(const PgServer& primary, const std::filesystem::path& data);
  void lowLevelBackup(const PgServer& primary, const std::filesystem::path& data);

  PgStandbyOptions options_;
  std::string run_as_;
  TempDir dir_;
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  std::unique_ptr<ChildProcess> postmaster_;
};

}  // namespace dbpulse::testing
