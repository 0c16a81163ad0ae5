#pragma once
// `locks`: who waits for whom?
//
// One query per run over pg_locks (read once, materialised), pg_database and the
// lock-waiting rows of pg_stat_activity. Cost is linear in the number of held locks and backends;
// pg_blocking_pids(), which briefly takes the lock manager's partition locks, is called only for
// sessions that wait on a lock.
//
// Series:
//   pg_locks_count{datname,mode}           locks held or awaited, zero-filled for the nine
//                                          modes in every database (postgres_exporter's name
//                                          and label values; a gauge, as there)
//   dbpulse_pg_lock_waiting_sessions       sessions waiting on a heavyweight lock
//   dbpulse_pg_lock_blocked_sessions       ... of which pg_blocking_pids() names a blocker
//   dbpulse_pg_lock_blocking_sessions      distinct sessions that block at least one other
//   dbpulse_pg_lock_root_blockers          blockers that do not wait themselves (the heads
//                                          of the chains: what an operator would cancel)
//   dbpulse_pg_lock_chain_max_depth        longest waits-for chain (1 = A waits for B)
//   dbpulse_pg_lock_longest_wait_seconds   longest current lock wait (0 when none)
// Details (pid, blockers, wait, truncated query text) never become labels: they are kept
// in memory for the admin API, see LocksCollector::latestBlocked().

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/core/mutex.h"
#include "collectors/clients/postgres/pg_rows.h"
#include "collectors/clients/postgres/sql_session.h"
#include "collectors/collector.h"

namespace dbpulse::collectors {

// The query for a server version (server_version_num). PostgreSQL 14 added
// pg_locks.waitstart; before it a wait is timed from the start of the waiting statement.
std::string locksQuery(int server_version_num);

// Default number of blocked sessions kept with details ([collectors.locks] top_n).
inline constexpr int kDefaultBlockedDetails = 20;
// Query text kept per blocked session, in characters (truncated in SQL).
inline constexpr int kLockQueryTextChars = 200;

// One session waiting on a lock, for the admin API.
struct BlockedSession {
  int pid = 0;
  std::vector<int> blocking_pids;  // pg_blocking_pids(pid); empty: waits, nobody named
  double wait_seconds = 0;
  std::string datname;
  std::string usename;
  std::string lock_mode;  // the awaited lock's mode, lower case ("rowexclusivelock")
  std::string query;      // first kLockQueryTextChars characters of the waiting statement
};

// Rows of locksQuery() -> samples, plus the waiting sessions (longest wait first, at most
// `max_details`). Pure; Internal on an unexpected result shape.
Status parseLockRows(const PgRows& rows, int max_details, SampleBatch& out,
                     std::vector<BlockedSession>& waiting);

class LocksCollector final : public Collector, public DetailsProvider {
 public:
  // `max_details` <= 0 means kDefaultBlockedDetails.
  LocksCollector(SqlSession& session, int max_details);
  const std::string& name() const override { return name_; }
  Status collect(const CollectContext& ctx, SampleBatch& out) override;
  void cancel() override;
  // Its details are latestBlocked(): a std::vector<BlockedSession>.
  const DetailsProvider* detailsProvider() const override { return this; }
  std::any details() const override;

  // The sessions waiting on a lock as of the last successful run, longest wait first.
  // Thread-safe; a copy.
  std::vector<BlockedSession> latestBlocked() const;

 private:
  const std::string name_ = "locks";
  std::unique_ptr<SqlSession> session_;  // this collector's handle on the group's session
  const int max_details_;
  mutable Mutex mu_;
  std::vector<BlockedSession> latest_ GUARDED_BY(mu_);
};

}  // namespace dbpulse::collectors
