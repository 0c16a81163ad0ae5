#pragma once
// Guarded VACUUM/ANALYZE: keeps the chat database's tables tidy inside a window.
//
// - Plans from pg_stat_user_tables: tables whose dead tuples are >= 20 % of their rows (and
//   at least 1,000) get `VACUUM (ANALYZE, SKIP_LOCKED)`; tables with rows modified since
//   the last analyze >= 10 % of their rows (and at least 1,000) get `ANALYZE (SKIP_LOCKED)`;
//   worst first, at most 50 per run. `VACUUM (FULL, ANALYZE, SKIP_LOCKED)` only for tables
//   named in `[maintenance] vacuum_full`.
// - One table at a time on a session of its own, with lock_timeout (5 s) and a per-table
//   statement_timeout (`table_timeout`); SKIP_LOCKED makes a table someone holds a
//   conflicting lock on a "skipped_locked" result instead of a wait.
// - Runs only inside the window (cron `window` + `window_duration`, agent's local time),
//   once per window, and only on the elected leader; a table is not started after the
//   window closes. While the database is busy (more than `max_active_sessions` active
//   client sessions) it waits, re-checking every 10 s, before the next table.
// - `POST /admin/database/optimize` queues a run now (window ignored, guards kept).
// - Every run is recorded: `<state_dir>/maintenance_history.json` (last 100 runs, written
//   atomically after each table), `dbpulse_maintenance_runs_total{operation,result}`,
//   GET /admin/maintenance. dry_run plans and records without running anything.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/duration.h"
#include "agent/core/mutex.h"
#include "agent/core/sample_store.h"
#include "agent/core/status.h"
#include "agent/cron.h"
#include "collectors/clients/postgres/pg_session.h"
#include "collectors/clients/postgres/sql_session.h"

namespace dbpulse {

struct MaintenanceOptions {
  collectors::PgSessionOptions session;  // DSN etc.; timeouts are set per table
  bool enabled = true;
  CronSchedule window;
  Duration window_duration{2 * 3'600'000};
  bool dry_run = false;
  std::vector<std::string> vacuum_full;  // "schema.table"
  Duration table_timeout{30 * 60'000};
  Duration lock_timeout{5000};
  int max_active_sessions = 20;
  std::string state_dir;  // "" = history in memory only
  Duration tick{15'000};  // how often the window is checked
  Duration busy_wait{10'000};
  // Opens the engine's sessions (its own, and a short one for requestRun's table check);
  // null = PgSession. Tests pass a fake.
  std::function<std::unique_ptr<collectors::SqlSession>(const collectors::PgSessionOptions&)>
      session_factory;
};

// One table's outcome. result: ok, skipped_locked, skipped_privilege (the role may not
// vacuum it), failed, timeout, dry_run, window_closed, skipped_busy (the busy check failed,
// or a manual run found the database busy for longer than window_duration).
struct TableOutcome {
  std::string table, operation, statement, result, error;
  double seconds = 0;
  double dead_tuples = 0, modified_since_analyze = 0, live_tuples = 0;
};

struct MaintenanceRun {
  std::string id, trigger;  // trigger: "window" or "manual"
  bool dry_run = false;
  int64_t started_ms = 0, finished_ms = 0;  // finished_ms 0 while running
  std::vector<std::string> requested;       // manual runs: the tables asked for
  std::vector<TableOutcome> tables;
  std::string error;  // why a run ended early (server down, ...)
};

// The plan for the rows of the planning query (pure; unit-tested). `only` restricts it
// to these tables ("schema.table"), planning ANALYZE for a named table that needs neither.
struct PlannedTable {
  std::string table;      // quote_ident'ed "schema.table"
  std::string name;       // plain "schema.table"
  std::string operation;  // "vacuum", "vacuum_full" or "analyze"
  double dead_tuples = 0, modified_since_analyze = 0, live_tuples = 0;
};
std::vector<PlannedTable> planMaintenance(const collectors::PgRows& rows,
                                          const std::vector<std::string>& vacuum_full,
                                          const std::vector<std::string>& only);
// The SQL for a planned table.
std::string maintenanceStatement(const PlannedTable& t);

class MaintenanceEngine {
 public:
  MaintenanceEngine(MaintenanceOptions options, SampleStore& store, const Clock& clock,
                    std::function<bool()> is_leader);
  ~MaintenanceEngine();
  MaintenanceEngine(const MaintenanceEngine&) = delete;
  MaintenanceEngine& operator=(const MaintenanceEngine&) = delete;

  void start();
  // Cancels the statement running now and waits for the thread.
  void stop();

  // Queues a run now. Tables are "schema.table" or "table" (schema public); unknown ones
  // are InvalidArgument naming them; a run already queued or running is Unavailable
  // ("busy"). Returns the run id.
  Result<std::string> requestRun(const std::vector<std::string>& tables, bool dry_run);

  // GET /admin/maintenance.
  std::string statusJson() const;

 private:
  void run(std::stop_token stop);
  void execute(MaintenanceRun& run, const std::vector<std::string>& only, bool window_bound,
               std::stop_token stop);
  bool inWindow() const;
  void record(const MaintenanceRun& run);
  void publish();
  void loadHistory();
  std::string historyFile() const;
  std::unique_ptr<collectors::SqlSession> openSession() const;

  const MaintenanceOptions options_;
  SampleStore& store_;
  const Clock& clock_;
  const std::function<bool()> is_leader_;
  // The engine's own; used only by its thread (+ cancel).
  const std::unique_ptr<collectors::SqlSession> session_;

  mutable Mutex mu_;
  std::condition_variable_any cv_;
  std::deque<MaintenanceRun> history_ GUARDED_BY(mu_);  // newest last
  std::optional<MaintenanceRun> running_ GUARDED_BY(mu_);
  std::optional<MaintenanceRun> queued_ GUARDED_BY(mu_);  // a manual request
  std::vector<std::string> queued_tables_ GUARDED_BY(mu_);
  int64_t last_window_start_ms_ GUARDED_BY(mu_) = 0;  // the window already served
  std::map<std::pair<std::string, std::string>, uint64_t> counts_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::jthread thread_;
};

}  // namespace dbpulse
