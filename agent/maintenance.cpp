#include "agent/maintenance.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "agent/core/atomic_file.h"
#include "agent/core/duration.h"
#include "collectors/clients/postgres/result_reader.h"

namespace dbpulse {
namespace {

using collectors::PgRows;
using nlohmann::json;

constexpr size_t kHistoryRuns = 100;
constexpr size_t kMaxTablesPerRun = 50;
constexpr double kDeadRatio = 0.2, kAnalyzeRatio = 0.1, kMinTuples = 1000;

constexpr const char* kPlanSql =
    "SELECT quote_ident(schemaname) || '.' || quote_ident(relname) AS qualified, "
    "schemaname || '.' || relname AS name, n_live_tup::float8 AS live, "
    "n_dead_tup::float8 AS dead, n_mod_since_analyze::float8 AS modified "
    "FROM pg_stat_user_tables";

constexpr const char* kBusySql =
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND backend_type = "
    "'client backend' AND pid <> pg_backend_pid()";

// The session's statement_timeout (milliseconds, $1) from now on; SET takes no parameters.
constexpr const char* kSetTimeoutSql = "SELECT set_config('statement_timeout', $1, false)";

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string normalizedName(const std::string& t) {
  return t.find('.') == std::string::npos ? "public." + t : t;
}

json outcomeJson(const TableOutcome& t) {
  json j{{"table", t.table},
         {"operation", t.operation},
         {"statement", t.statement},
         {"result", t.result},
         {"seconds", std::round(t.seconds * 1000) / 1000},
         {"dead_tuples", t.dead_tuples},
         {"modified_since_analyze", t.modified_since_analyze},
         {"live_tuples", t.live_tuples}};
  if (!t.error.empty()) j["error"] = t.error;
  return j;
}

json runJson(const MaintenanceRun& r) {
  json tables = json::array();
  for (const auto& t : r.tables) tables.push_back(outcomeJson(t));
  json j{{"id", r.id},
         {"trigger", r.trigger},
         {"dry_run", r.dry_run},
         {"started_ms", r.started_ms},
         {"finished_ms", r.finished_ms},
         {"requested", r.requested},
         {"tables", tables}};
  if (!r.error.empty()) j["error"] = r.error;
  return j;
}

MaintenanceRun runFrom(const json& j) {
  MaintenanceRun r;
  r.id = j.value("id", "");
  r.trigger = j.value("trigger", "");
  r.dry_run = j.value("dry_run", false);
  r.started_ms = j.value("started_ms", int64_t{0});
  r.finished_ms = j.value("finished_ms", int64_t{0});
  r.error = j.value("error", "");
  if (j.contains("requested")) r.requested = j["requested"].get<std::vector<std::string>>();
  for (const auto& t : j.value("tables", json::array())) {
    TableOutcome o;
    o.table = t.value("table", "");
    o.operation = t.value("operation", "");
    o.statement = t.value("statement", "");
    o.result = t.value("result", "");
    o.error = t.value("error", "");
    o.seconds = t.value("seconds", 0.0);
    o.dead_tuples = t.value("dead_tuples", 0.0);
    o.modified_since_analyze = t.value("modified_since_analyze", 0.0);
    o.live_tuples = t.value("live_tuples", 0.0);
    r.tables.push_back(std::move(o));
  }
  return r;
}

}  // namespace

std::vector<PlannedTable> planMaintenance(const PgRows& rows,
                                          const std::vector<std::string>& vacuum_full,
                                          const std::vector<std::string>& only) {
  std::vector<PlannedTable> vacuum, analyze;
  for (const auto& row : rows.rows) {
    if (row.size() < 5 || !row[0] || !row[1]) continue;
    PlannedTable t;
    t.table = *row[0];
    t.name = *row[1];
    t.live_tuples = collectors::pgutil::toDoubleOr(row[2]);
    t.dead_tuples = collectors::pgutil::toDoubleOr(row[3]);
    t.modified_since_analyze = collectors::pgutil::toDoubleOr(row[4]);
    const bool named = contains(only, t.name);
    if (!only.empty() && !named) continue;
    const bool needs_vacuum =
        t.dead_tuples >= kMinTuples &&
        t.dead_tuples / std::max(1.0, t.live_tuples + t.dead_tuples) >= kDeadRatio;
    const bool needs_analyze =
        t.modified_since_analyze >= kMinTuples &&
        t.modified_since_analyze / std::max(1.0, t.live_tuples) >= kAnalyzeRatio;
    // A table asked for by name gets VACUUM (ANALYZE): that is what "optimize it" means.
    if (needs_vacuum || named) {
      t.operation = contains(vacuum_full, t.name) ? "vacuum_full" : "vacuum";
      vacuum.push_back(std::move(t));
    } else if (needs_analyze) {
      t.operation = "analyze";
      analyze.push_back(std::move(t));
    }
  }
  std::sort(vacuum.begin(), vacuum.end(),
            [](const auto& a, const auto& b) { return a.dead_tuples > b.dead_tuples; });
  std::sort(analyze.begin(), analyze.end(), [](const auto& a, const auto& b) {
    return a.modified_since_analyze > b.modified_since_analyze;
  });
  for (auto& a : analyze) vacuum.push_back(std::move(a));
  if (vacuum.size() > kMaxTablesPerRun) vacuum.resize(kMaxTablesPerRun);
  return vacuum;
}

std::string maintenanceStatement(const PlannedTable& t) {
  if (t.operation == "vacuum_full") return "VACUUM (FULL, ANALYZE, SKIP_LOCKED) " + t.table;
  if (t.operation == "vacuum") return "VACUUM (ANALYZE, SKIP_LOCKED) " + t.table;
  return "ANALYZE (SKIP_LOCKED) " + t.table;
}

namespace {

collectors::PgSessionOptions engineSession(const MaintenanceOptions& o) {
  collectors::PgSessionOptions s = o.session;
  s.application_name = "dbpulse-maintenance";
  s.lock_timeout = o.lock_timeout;
  s.statement_timeout = std::min(s.statement_timeout, Duration(5000));  // planning queries
  return s;
}

}  // namespace

MaintenanceEngine::MaintenanceEngine(MaintenanceOptions options, SampleStore& store,
                                     const Clock& clock, std::function<bool()> is_leader)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      is_leader_(std::move(is_leader)),
      session_(openSession()) {
  for (const char* op : {"vacuum", "analyze"}) {
    for (const char* result : {"ok", "skipped_locked", "failed"}) counts_[{op, result}] = 0;
  }
  loadHistory();
}

MaintenanceEngine::~MaintenanceEngine() { stop(); }

std::unique_ptr<collectors::SqlSession> MaintenanceEngine::openSession() const {
  if (options_.session_factory) return options_.session_factory(engineSession(options_));
  return std::make_unique<collectors::PgSession>(engineSession(options_));
}

void MaintenanceEngine::start() {
  publish();
  thread_ = std::jthread([this](std::stop_token st) { run(st); });
}

void MaintenanceEngine::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  cv_.notify_all();
  session_->cancel();
  thread_.join();
  session_->disconnect();
}

std::string MaintenanceEngine::historyFile() const {
  return options_.state_dir.empty() ? "" : options_.state_dir + "/maintenance_history.json";
}

void MaintenanceEngine::loadHistory() {
  const std::string path = historyFile();
  if (path.empty()) return;
  auto text = readSmallFile(path);
  if (!text.ok()) return;  // first start
  const json doc = json::parse(*text, nullptr, false);
  auto corrupt = [&](const std::string& why) {
    const auto aside = moveAside(path);
    spdlog::warn("maintenance: history {} is corrupt ({}); moved to {}, starting a new one", path,
                 why, aside.ok() ? aside.value() : "(not moved: " + aside.status().message() + ")");
  };
  if (doc.is_discarded() || !doc.contains("runs") || !doc["runs"].is_array()) {
    corrupt("not a history document");
    return;
  }
  MutexLock lock(mu_);
  try {
    for (const auto& r : doc["runs"]) history_.push_back(runFrom(r));
  } catch (const std::exception& e) {
    corrupt(e.what());
    history_.clear();
  }
  for (const auto& r : history_) {
    next_id_ = std::max<uint64_t>(
        next_id_, std::strtoull(r.id.c_str() + std::min<size_t>(r.id.size(), 2), nullptr, 10) + 1);
  }
}

void MaintenanceEngine::record(const MaintenanceRun& run) {
  json runs = json::array();
  {
    MutexLock lock(mu_);
    for (const auto& r : history_) runs.push_back(runJson(r));
    if (running_ && running_->id == run.id) runs.push_back(runJson(run));
  }
  publish();
  const std::string path = historyFile();
  if (path.empty()) return;
  Status s = ensureDirectory(options_.state_dir);
  if (s.ok())
    s = writeFileAtomic(path, json{{"version", 1}, {"runs", runs}}.dump(
                                  1, ' ', false, json::error_handler_t::replace) +
                                  "\n");
  if (!s.ok()) spdlog::error("maintenance: cannot write {}: {}", path, s.message());
}

void MaintenanceEngine::publish() {
  SampleBatch b;
  MutexLock lock(mu_);
  for (const auto& [key, n] : counts_) {
    b.counter("dbpulse_maintenance_runs_total",
              "VACUUM/ANALYZE of one table by the maintenance engine, by operation and result",
              {{"operation", key.first}, {"result", key.second}}, static_cast<double>(n));
  }
  b.gauge("dbpulse_maintenance_running", "1 while a maintenance run is going", {},
          running_ ? 1 : 0);
  int64_t last = 0;
  for (const auto& r : history_) last = std::max(last, r.finished_ms);
  if (last > 0) {
    b.gauge("dbpulse_maintenance_last_run_timestamp_seconds", "When the last run finished", {},
            static_cast<double>(last) / 1000);
  }
  store_.write("maintenance", b, std::chrono::hours(24 * 365));
}

bool MaintenanceEngine::inWindow() const {
  return windowStart(options_.window, clock_.now(), options_.window_duration).has_value();
}

Result<std::string> MaintenanceEngine::requestRun(const std::vector<std::string>& tables,
                                                  bool dry_run) {
  std::vector<std::string> names;
  for (const auto& t : tables) names.push_back(normalizedName(t));
  if (!names.empty()) {
    // Checked on a fresh short session so the engine's own may be busy with a VACUUM.
    const auto check = openSession();
    auto rows = check->query(kPlanSql);
    if (!rows.ok()) return rows.status();
    std::vector<std::string> unknown;
    for (const auto& n : names) {
      bool found = false;
      for (const auto& row : rows->rows) found = found || (row.size() > 1 && row[1] == n);
      if (!found) unknown.push_back(n);
    }
    if (!unknown.empty()) {
      std::string list;
      for (const auto& u : unknown) list += (list.empty() ? "" : ", ") + u;
      return invalidArgument("unknown tables (schema.table of a user table): " + list);
    }
  }
  MutexLock lock(mu_);
  if (queued_ || running_) return unavailable("busy", "a maintenance run is queued or running");
  MaintenanceRun r;
  r.id = "m-" + std::to_string(next_id_++);
  r.trigger = "manual";
  r.dry_run = dry_run || options_.dry_run;
  r.requested = names;
  queued_ = r;
  queued_tables_ = names;
  cv_.notify_all();
  return r.id;
}

void MaintenanceEngine::run(std::stop_token stop) {
  bool first = true;  // the window is checked at once at start, then every tick
  while (!stop.stop_requested()) {
    std::optional<MaintenanceRun> job;
    std::vector<std::string> only;
    bool window_bound = false;
    {
      MutexLock lock(mu_);
      if (!first) {
        cv_.wait_for(lock, stop, options_.tick,
                     [this]() REQUIRES(mu_) { return queued_.has_value(); });
      }
      first = false;
      if (stop.stop_requested()) break;
      if (queued_) {
        job = std::move(queued_);
        queued_.reset();
        only = std::move(queued_tables_);
      } else if (options_.enabled && is_leader_()) {
        const auto ws = windowStart(options_.window, clock_.now(), options_.window_duration);
        const int64_t ws_ms = ws ? toMillis(*ws) : 0;
        bool served = false;
        for (const auto& r : history_)
          served = served || (r.trigger == "window" && r.started_ms >= ws_ms);
        if (ws && !served && ws_ms != last_window_start_ms_) {
          last_window_start_ms_ = ws_ms;
          MaintenanceRun r;
          r.id = "m-" + std::to_string(next_id_++);
          r.trigger = "window";
          r.dry_run = options_.dry_run;
          job = std::move(r);
          window_bound = true;
        }
      }
      if (!job) continue;
      job->started_ms = toMillis(clock_.now());
      running_ = *job;
    }
    spdlog::info("maintenance: run {} ({}{}) starting", job->id, job->trigger,
                 job->dry_run ? ", dry run" : "");
    execute(*job, only, window_bound, stop);
    // Short-lived: the next run connects afresh, no idle session is held between runs.
    session_->disconnect();
    job->finished_ms = toMillis(clock_.now());
    {
      MutexLock lock(mu_);
      running_.reset();
      history_.push_back(*job);
      while (history_.size() > kHistoryRuns) history_.pop_front();
    }
    record(*job);
    size_t ok = 0;
    for (const auto& t : job->tables) ok += t.result == "ok" ? 1 : 0;
    spdlog::info("maintenance: run {} finished: {} of {} tables done{}{}", job->id, ok,
                 job->tables.size(), job->error.empty() ? "" : "; ", job->error);
  }
}

void MaintenanceEngine::execute(MaintenanceRun& run, const std::vector<std::string>& only,
                                bool window_bound, std::stop_token stop) {
  auto rows = session_->query(kPlanSql);
  if (!rows.ok()) {
    run.error = "planning failed: " + rows.status().message();
    return;
  }
  const auto plan = planMaintenance(*rows, options_.vacuum_full, only);
  const std::string planning_timeout =
      std::to_string(engineSession(options_).statement_timeout.count());
  for (const auto& t : plan) {
    if (stop.stop_requested()) {
      run.error = "stopped";
      break;
    }
    TableOutcome o;
    o.table = t.name;
    o.operation = t.operation;
    o.statement = maintenanceStatement(t);
    o.dead_tuples = t.dead_tuples;
    o.modified_since_analyze = t.modified_since_analyze;
    o.live_tuples = t.live_tuples;
    // Guards: still inside the window, the database not busy. A manual run has no window
    // to close, so its waiting is bounded by window_duration from the run's start.
    bool closed = false;
    std::string skipped;  // why the table is not run: the busy check failed or never cleared
    while (!stop.stop_requested()) {
      if (window_bound && !inWindow()) {
        closed = true;
        break;
      }
      auto busy = session_->query(kBusySql);
      if (!busy.ok() || busy->rows.empty()) {
        if (!busy.ok() && busy.status().code() == StatusCode::kUnavailable) break;  // below
        skipped = "busy check failed: " +
                  (busy.ok() ? std::string("no answer") : busy.status().message());
        break;
      }
      const double active = collectors::pgutil::toDoubleOr(busy->rows[0][0]);
      if (active <= static_cast<double>(options_.max_active_sessions)) break;
      if (!window_bound &&
          toMillis(clock_.now()) - run.started_ms >= options_.window_duration.count()) {
        skipped = "database still busy after " + formatDuration(options_.window_duration);
        break;
      }
      spdlog::info("maintenance: database busy ({} active sessions > {}); waiting", active,
                   options_.max_active_sessions);
      MutexLock lock(mu_);
      cv_.wait_for(lock, stop, options_.busy_wait, [] { return false; });
    }
    if (closed) {
      o.result = "window_closed";
      run.tables.push_back(o);
      continue;
    }
    if (!skipped.empty()) {
      o.result = "skipped_busy";
      o.error = skipped;
      spdlog::warn("maintenance: {} -> skipped_busy: {}", o.statement, skipped);
      run.tables.push_back(o);
      continue;
    }
    if (run.dry_run) {
      o.result = "dry_run";
    } else {
      const auto t0 = std::chrono::steady_clock::now();
      auto set =
          session_->queryParams(kSetTimeoutSql, {std::to_string(options_.table_timeout.count())});
      auto done = set.ok() ? session_->query(o.statement, options_.table_timeout) : set;
      const auto notices = session_->takeNotices();  // before the next query clears them
      (void)session_->queryParams(kSetTimeoutSql, {planning_timeout});
      o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!done.ok()) {
        o.result = done.status().code() == StatusCode::kDeadlineExceeded ? "timeout" : "failed";
        o.error = done.status().message();
      } else {
        o.result = "ok";
        // SKIP_LOCKED and missing ownership both turn into a WARNING, not an error. The
        // message is in the server's lc_messages; severity and SQLSTATE are not.
        for (const auto& n : notices) {
          if (n.severity != "WARNING") continue;
          if (n.sqlstate == "55P03") {  // lock_not_available
            o.result = "skipped_locked";
          } else if (n.sqlstate.rfind("01", 0) == 0) {
            // A plain warning (01000) for a table named in the statement: VACUUM's and
            // ANALYZE's "skipping ... only the owner / permission denied" (PG 13-18).
            o.result = "skipped_privilege";
            o.error = n.message;
          }
        }
      }
      const std::string op = t.operation == "vacuum_full" ? "vacuum" : t.operation;
      const std::string result = o.result == "timeout" ? "failed" : o.result;
      {
        MutexLock lock(mu_);
        ++counts_[{op, result}];
      }
      spdlog::info("maintenance: {} -> {}{}{} ({:.1f} s)", o.statement, o.result,
                   o.error.empty() ? "" : ": ", o.error, o.seconds);
      if (!done.ok() && done.status().code() == StatusCode::kUnavailable) {
        run.tables.push_back(o);
        run.error = "PostgreSQL unavailable: " + done.status().message();
        break;
      }
    }
    run.tables.push_back(o);
    {
      MutexLock lock(mu_);
      if (running_) running_->tables = run.tables;
    }
    record(run);
  }
}

std::string MaintenanceEngine::statusJson() const {
  json history = json::array();
  json running = nullptr;
  bool queued = false;
  {
    MutexLock lock(mu_);
    for (auto it = history_.rbegin(); it != history_.rend() && history.size() < 20; ++it) {
      history.push_back(runJson(*it));
    }
    if (running_) running = runJson(*running_);
    queued = queued_.has_value();
  }
  const auto now = clock_.now();
  const auto ws = windowStart(options_.window, now, options_.window_duration);
  const auto next = options_.window.next(now);
  json j{{"enabled", options_.enabled},
         {"window", options_.window.text()},
         {"window_duration_seconds", options_.window_duration.count() / 1000},
         {"next_window_ms", next ? json(toMillis(*next)) : json(nullptr)},
         {"dry_run", options_.dry_run},
         {"in_window", ws.has_value()},
         {"leader", is_leader_()},
         {"vacuum_full", options_.vacuum_full},
         {"running", running},
         {"queued", queued},
         {"history", history}};
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace dbpulse
